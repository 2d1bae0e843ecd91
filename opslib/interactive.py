"""Interactive (JupyterLab) pieces: approval buttons, choice widgets, progress.

The on-call engineer steps through a runbook in JupyterLab; these helpers give that path the
same safety as a headless run. Under papermill/nbval (headless) nothing here ever waits on a
widget: progress (opslib.core.progress) renders as plain text lines, choices take their preselection from the
parameters, and approvals come from the ``approved_by`` parameter (see :func:`opslib.safety.gate`).

Widget callbacks print into ipywidgets ``Output`` areas, which are not cell outputs; what the
evidence needs from them is kept in the kernel (:data:`opslib.core.recorder.SESSION`) and
snapshotted by :func:`opslib.capture.capture_evidence`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opslib.core import runtime
from opslib.core.errors import BadInputError
from opslib.core.plans import Approval, apply
from opslib.core.recorder import emit_approval
from opslib.core.runtime import interactive_user, utcnow_iso

#: At most this many options are shown as a column of checkboxes; more use a scrolling list.
CHECKBOX_LIMIT = 20


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


# --------------------------------------------------------------------------- approval buttons

#: Every approval panel shown in this kernel, oldest first (for :func:`applied`).
_PANELS: list[ApprovalPanel] = []
#: Panels still waiting for a click. A newer panel from the same cell supersedes them, so
#: re-running an apply cell never leaves two live "Approve and apply" buttons for one change.
_PENDING: list[ApprovalPanel] = []


def _origin(plan: Any) -> str:
    """Which apply step a panel belongs to: the JupyterLab cell id, else the plan's title.

    A runbook with two gated steps shows two panels in one "Run All"; only a re-run of the
    same cell may supersede a waiting panel.
    """
    try:
        from IPython import get_ipython

        ip = get_ipython()
        parent = ip.get_parent() if ip is not None and hasattr(ip, "get_parent") else None
        cell_id = ((parent or {}).get("metadata") or {}).get("cellId")
    except (AttributeError, TypeError):
        cell_id = None
    return f"cell:{cell_id}" if cell_id else f"plan:{getattr(plan, 'title', '')}"


class ApprovalPanel:
    """The plan's "Approve and apply" / "Cancel" buttons, their status line and their output.

    One click decides: both buttons are disabled at once and a second click (queued before the
    browser saw the disable) is ignored, so a plan is never applied twice from one panel.
    """

    def __init__(
        self,
        plan: Any,
        *,
        change_ticket: str = "",
        execute: Callable[[Any], Any],
        stop_on_error: bool = True,
        on_applied: Callable[[Any], Any] | None = None,
    ) -> None:
        import ipywidgets as w

        self.plan = plan
        self.change_ticket = change_ticket.strip()
        self.execute = execute
        self.stop_on_error = stop_on_error
        self.on_applied = on_applied
        self.approver = interactive_user()
        #: "pending", "applying", "applied", "failed", "cancelled" or "superseded"
        self.state = "pending"
        self.approval: Any = None
        self.result: Any = None
        self.origin = ""  # set by approval_buttons (see _origin)

        self.approve_button = w.Button(
            description="Approve and apply",
            button_style="danger",
            icon="check",
            tooltip=f"Apply the plan above now, recorded as approved by {self.approver}",
            layout=w.Layout(width="auto"),
        )
        self.cancel_button = w.Button(
            description="Cancel", icon="times", layout=w.Layout(width="auto")
        )
        self.status = w.HTML()
        self.output = w.Output()
        self.widget = w.VBox(
            [w.HBox([self.approve_button, self.cancel_button]), self.status, self.output]
        )
        self.approve_button.on_click(lambda _b: self.approve())
        self.cancel_button.on_click(lambda _b: self.cancel())
        ticket = (
            f" under change ticket <code>{html.escape(self.change_ticket)}</code>"
            if self.change_ticket
            else ""
        )
        self._set_status(
            f"Waiting for approval: {len(plan.changes)} change(s), plan hash "
            f"<code>{plan.digest()[:12]}</code>. &ldquo;Approve and apply&rdquo; applies it now as "
            f"<b>{html.escape(self.approver)}</b>{ticket}; &ldquo;Cancel&rdquo; changes nothing."
        )

    def _set_status(self, text_html: str) -> None:
        self.status.value = f"<p>{text_html}</p>"

    def _close(self, state: str) -> bool:
        """Move out of "pending" exactly once; False when another click got there first."""
        if self.state != "pending":
            return False
        self.state = state
        self.approve_button.disabled = True
        self.cancel_button.disabled = True
        if self in _PENDING:
            _PENDING.remove(self)
        return True

    def approve(self) -> Any:
        """What the "Approve and apply" click does: record the approval, apply, show the result."""
        if not self._close("applying"):
            return None
        self._set_status(f"Approved by <b>{html.escape(self.approver)}</b>: applying&hellip;")
        with self.output:
            try:
                self.approval = Approval(
                    approver=self.approver,
                    plan_hash=self.plan.digest(),
                    approved_at=utcnow_iso(),
                    change_ticket=self.change_ticket,
                    via="button",
                    plan_title=self.plan.title,
                )
                emit_approval(self.approval)
                self.result = apply(
                    self.plan,
                    approval=self.approval,
                    execute=self.execute,
                    stop_on_error=self.stop_on_error,
                )
                _display(self.result.to_frame())
                summary = f"Applied {self.result.applied} change(s), {self.result.failed} failed."
                print(summary)
                self.state = "failed" if self.result.failed else "applied"
                self._set_status(
                    f"Approved by <b>{html.escape(self.approver)}</b> at {self.approval.approved_at} "
                    f"(plan <code>{self.plan.digest()[:12]}</code>). {summary}"
                )
                if self.on_applied is not None:
                    self.on_applied(self.result)
            except Exception as exc:
                # Shown in the panel by the Output context (traceback) and in the status line;
                # the approval and every change outcome are already in the evidence.
                self.state = "failed"
                self._set_status(
                    f"<b>Error while applying</b>: {html.escape(type(exc).__name__)}: "
                    f"{html.escape(str(exc))}. See the traceback below; changes already applied "
                    "are listed in the evidence."
                )
                raise
        return self.result

    def cancel(self) -> None:
        """What the "Cancel" click does: nothing is applied and no approval is recorded."""
        if not self._close("cancelled"):
            return
        text = (
            f"Cancelled by {self.approver} at {utcnow_iso()}: nothing applied, no approval recorded. "
            "Re-run this cell to review the plan again."
        )
        self._set_status(html.escape(text))
        with self.output:
            print(text)

    def supersede(self) -> None:
        """A newer approval panel was shown: this one can no longer apply anything."""
        if self._close("superseded"):
            self._set_status("Superseded by a newer approval panel below: nothing applied here.")


def approval_buttons(
    plan: Any,
    *,
    change_ticket: str = "",
    execute: Callable[[Any], Any],
    stop_on_error: bool = True,
    on_applied: Callable[[Any], Any] | None = None,
) -> ApprovalPanel | None:
    """Show the plan with "Approve and apply" / "Cancel"; the plan is applied only on a click.

    Called by :func:`opslib.safety.gate` when ``dry_run`` is False and ``approved_by`` is empty
    in JupyterLab. Returns at once (a cell never blocks on a click). The click records an
    :class:`opslib.core.plans.Approval` (approver = JupyterHub user or OS user, time, plan hash,
    ticket, ``via="button"``), applies through :func:`opslib.core.plans.apply`, shows the result
    table and calls ``on_applied``. Headless it refuses to show buttons nobody can click.
    """
    if runtime.is_headless():
        print(
            "NOT APPLIED: no approval in a headless run; set approved_by=<your name> "
            "(and dry_run=False) in the parameters."
        )
        return None
    origin = _origin(plan)
    for older in list(_PENDING):
        if older.origin == origin:
            older.supersede()
    panel = ApprovalPanel(
        plan,
        change_ticket=change_ticket,
        execute=execute,
        stop_on_error=stop_on_error,
        on_applied=on_applied,
    )
    panel.origin = origin
    _PENDING.append(panel)
    _PANELS.append(panel)
    _display(plan)
    _display(panel.widget)
    return panel


def applied(plan: Any) -> Any:
    """The :class:`~opslib.core.plans.ApplyResult` of the click that applied exactly ``plan``, or None.

    In JupyterLab :func:`opslib.safety.gate` returns None at once and the click applies later,
    so a verification cell re-run after the click reads the result here::

        verification = verify(..., result or interactive.applied(plan))

    None when the plan was not approved by a click in this kernel (dry run, cancelled, headless).
    """
    digest = plan.digest()
    for panel in reversed(_PANELS):
        if panel.result is not None and panel.result.plan_hash == digest:
            return panel.result
    return None


# --------------------------------------------------------------------------- choices


class Choice:
    """A selection preselected from the parameters; ``.value`` is read when the plan is built.

    Interactive, the engineer can change the widget and re-run the plan cell; headless, the
    value is the preselection. Call :meth:`final` in the cell that uses the choice: it returns
    the value and prints it, so the evidence shows what was actually chosen.
    """

    def __init__(
        self,
        *,
        description: str,
        options: Sequence[tuple[str, Any]],
        preselected: tuple[Any, ...],
        multiple: bool,
        widgets: Any = None,
    ) -> None:
        self.description = description
        self.options = tuple(options)
        self.preselected = preselected
        self.multiple = multiple
        self._widgets = widgets  # None headless; else (kind, widget_or_checkboxes)
        self.widget: Any = None

    def _selected(self) -> tuple[Any, ...]:
        if self._widgets is None:
            return self.preselected
        kind, w = self._widgets
        if kind == "checkboxes":
            return tuple(
                value for (_label, value), box in zip(self.options, w, strict=True) if box.value
            )
        if kind == "multi":
            return tuple(w.value)
        return () if w.value is None else (w.value,)

    @property
    def value(self) -> Any:
        """The current selection: a tuple of values when multiple, else one value (or None)."""
        sel = self._selected()
        if self.multiple:
            return sel
        return sel[0] if sel else None

    def text(self) -> str:
        labels = {value: label for label, value in self.options}
        sel = self._selected()
        shown = ", ".join(labels.get(v, str(v)) for v in sel) if sel else "(none)"
        count = f" ({len(sel)} of {len(self.options)})" if self.multiple else ""
        return f"{self.description}: {shown}{count}"

    def final(self) -> Any:
        """Return the current value and print it as text, so the evidence shows the final choice."""
        print("Chosen " + self.text())
        return self.value

    def __repr__(self) -> str:
        return f"Choice({self.text()})"


def _normalise_options(options: Iterable[Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for opt in options:
        if isinstance(opt, tuple) and len(opt) == 2:
            out.append((str(opt[0]), opt[1]))
        else:
            out.append((str(opt), opt))
    return out


def choose(
    options: Iterable[Any],
    *,
    selected: Any = None,
    description: str = "Selection",
    multiple: bool | None = None,
) -> Choice:
    """A selection widget preselected from the parameters (interactive) or the preselection (headless).

    ``options`` are values or ``(label, value)`` pairs. ``selected`` is a list (multiple choice;
    the default when it is None, which selects nothing: the safe default for "what to act on")
    or a single value (single choice). A preselection that is not among the options raises
    :class:`BadInputError` before anything changes.
    """
    opts = _normalise_options(options)
    values = [v for _l, v in opts]
    if multiple is None:
        multiple = selected is None or isinstance(selected, list | tuple | set | frozenset)
    if multiple:
        pre = tuple(selected or ())
    elif selected is None:
        pre = (values[0],) if values else ()
    else:
        pre = (selected,)
    missing = [v for v in pre if v not in values]
    if missing:
        shown = ", ".join(map(str, values)) or "(none)"
        raise BadInputError(
            f"{description}: {', '.join(map(str, missing))} is not among the options ({shown}); "
            "fix the parameter (or leave it empty to choose in the widget)."
        )
    # keep the options' order, drop duplicates
    pre = tuple(v for v in values if v in pre)
    if runtime.is_headless():
        choice = Choice(description=description, options=opts, preselected=pre, multiple=multiple)
        print(f"{choice.text()} (preselected from the parameters)")
        return choice

    import ipywidgets as w

    if multiple and len(opts) <= CHECKBOX_LIMIT:
        boxes = [
            w.Checkbox(
                value=v in pre, description=label, indent=False, layout=w.Layout(width="auto")
            )
            for label, v in opts
        ]
        inner: Any = boxes
        kind, body = "checkboxes", w.VBox(boxes)
        sources = boxes
    elif multiple:
        body = w.SelectMultiple(options=opts, value=pre, rows=min(12, max(len(opts), 2)))
        kind, inner, sources = "multi", body, [body]
    else:
        body = w.Dropdown(options=opts, value=pre[0] if pre else None)
        kind, inner, sources = "single", body, [body]
    choice = Choice(
        description=description,
        options=opts,
        preselected=pre,
        multiple=multiple,
        widgets=(kind, inner),
    )
    current = w.HTML()

    def _refresh(_change: Any = None) -> None:
        current.value = f"<i>{html.escape(choice.text())}</i> &mdash; re-run the next cells to use a new choice."

    for src in sources:
        src.observe(_refresh, names="value")
    _refresh()
    hint = " (preselected from the parameters)" if pre else ""
    choice.widget = w.VBox([w.HTML(f"<b>{html.escape(description)}</b>{hint}"), body, current])
    _display(choice.widget)
    return choice
