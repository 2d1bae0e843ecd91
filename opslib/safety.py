"""Plan, then apply: the safety model every mutating runbook goes through.

``plan_*`` functions in the domain modules read only and return a :class:`Plan`. The notebook
shows the plan, then its apply cell calls :func:`gate`, which applies only when ``dry_run`` is
False AND an approval exists: headless, a non-empty ``approved_by``; interactive (JupyterLab),
a click on "Approve and apply". The approval is bound to the plan's hash, so a plan that
changed after it was shown cannot be applied with the old approval.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opslib.errors import ApprovalError, BadInputError
from opslib.evidence.recorder import emit_approval, emit_change, to_jsonable

HEADLESS_ENV = "OPSLIB_HEADLESS"


class ChangeStatus(StrEnum):
    """What happened to one planned change."""

    PLANNED = "planned"
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Change:
    """One change to the world: the exact API call, its target, the expected effect, its arguments."""

    action: str  # the exact call, e.g. "sqs:SendMessageBatch+DeleteMessageBatch", "pg_terminate_backend"
    target: str  # what it acts on, e.g. "orders-dlq -> orders", "pid 4242 (app@payments)"
    effect: str  # what the operator should expect, e.g. "move 500 messages"
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "effect": self.effect,
            "params": to_jsonable(dict(self.params)),
        }


@dataclass(frozen=True)
class Plan:
    """A read-only proposal: the changes, warnings and blast-radius limits that shaped it."""

    title: str
    changes: tuple[Change, ...] = ()
    warnings: tuple[str, ...] = ()
    limits: Mapping[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes

    def digest(self) -> str:
        """SHA-256 of the canonical plan; an approval names this hash."""
        canon = json.dumps(
            {"title": self.title, "changes": [c.to_dict() for c in self.changes]},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(canon.encode()).hexdigest()

    def to_frame(self):
        import pandas as pd

        rows = [
            {"#": i + 1, "action": c.action, "target": c.target, "effect": c.effect}
            for i, c in enumerate(self.changes)
        ]
        return pd.DataFrame(rows, columns=["#", "action", "target", "effect"])

    def __str__(self) -> str:
        lines = [f"Plan: {self.title} ({len(self.changes)} change(s), hash {self.digest()[:12]})"]
        lines += [
            f"  {i + 1}. {c.action} {c.target}: {c.effect}" for i, c in enumerate(self.changes)
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.limits:
            lines.append("  limits: " + ", ".join(f"{k}={v}" for k, v in self.limits.items()))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        head = (
            f"<p><b>Plan: {escape(self.title)}</b> &mdash; {len(self.changes)} change(s), "
            f"hash <code>{self.digest()[:12]}</code></p>"
        )
        body = self.to_frame().to_html(index=False) if self.changes else "<p><i>No changes.</i></p>"
        warns = "".join(f"<li>&#9888; {escape(w)}</li>" for w in self.warnings)
        limits = ", ".join(f"{escape(str(k))}={escape(str(v))}" for k, v in self.limits.items())
        return (
            head
            + body
            + (f"<ul>{warns}</ul>" if warns else "")
            + (f"<p>limits: {limits}</p>" if limits else "")
        )


@dataclass(frozen=True)
class Approval:
    """Who approved which plan, when, through which channel, under which ticket."""

    approver: str
    plan_hash: str
    approved_at: str
    change_ticket: str = ""
    via: str = "parameter"  # "parameter" (headless approved_by) or "button" (JupyterLab)


@dataclass(frozen=True)
class ChangeOutcome:
    """The result of applying one change."""

    action: str
    target: str
    status: ChangeStatus
    detail: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    finished_at: str = ""


@dataclass(frozen=True)
class ApplyResult:
    """Everything an apply did, in order; shown as a table and kept in the evidence."""

    plan_hash: str
    approval: Approval
    outcomes: tuple[ChangeOutcome, ...]

    @property
    def applied(self) -> int:
        return sum(o.status is ChangeStatus.APPLIED for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.status is ChangeStatus.FAILED for o in self.outcomes)

    def to_frame(self):
        import pandas as pd

        rows = [
            {"action": o.action, "target": o.target, "status": o.status.value, "detail": o.detail}
            for o in self.outcomes
        ]
        return pd.DataFrame(rows, columns=["action", "target", "status", "detail"])


def utcnow_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def is_headless() -> bool:
    """True under ``opslib run``/papermill/nbval (the runner and test harness set OPSLIB_HEADLESS)."""
    if os.environ.get(HEADLESS_ENV):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    ip = get_ipython()
    return ip is None or "IPKernelApp" not in getattr(ip, "config", {})


def interactive_user() -> str:
    """The approver for a button click: the JupyterHub user where present, else the OS user."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def approve(
    plan: Plan, *, dry_run: bool, approved_by: str, change_ticket: str = "", via: str = "parameter"
) -> Approval | None:
    """Headless approval: an :class:`Approval` for exactly this plan, or None (and say why)."""
    if plan.empty:
        print("Nothing to apply: the plan is empty.")
        return None
    if dry_run:
        print(
            f"DRY RUN: nothing changed. {len(plan.changes)} change(s) planned (hash {plan.digest()[:12]})."
        )
        print(
            "To apply: run again with dry_run=False and approved_by=<your name> (and change_ticket)."
        )
        return None
    if not approved_by.strip():
        print("NOT APPLIED: dry_run is False but approved_by is empty; an approval is required.")
        return None
    approval = Approval(
        approver=approved_by.strip(),
        plan_hash=plan.digest(),
        approved_at=utcnow_iso(),
        change_ticket=change_ticket.strip(),
        via=via,
    )
    emit_approval(approval)
    return approval


def apply(
    plan: Plan,
    *,
    approval: Approval | None,
    execute: Callable[[Change], ChangeOutcome],
    stop_on_error: bool = True,
) -> ApplyResult:
    """Apply ``plan`` change by change through ``execute``; each outcome goes into the evidence.

    Refuses (ApprovalError) without an approval naming this plan's hash. When ``execute`` raises,
    the change is recorded as failed and, with ``stop_on_error``, the remaining ones are skipped.
    """
    if approval is None:
        raise ApprovalError(
            "No approval: set dry_run=False and approved_by=<name> (or click Approve)."
        )
    if approval.plan_hash != plan.digest():
        raise ApprovalError(
            "The approval is for a different plan (the plan changed after it was approved); "
            "review the new plan and approve it again."
        )
    outcomes: list[ChangeOutcome] = []
    failed = False
    for change in plan.changes:
        if failed and stop_on_error:
            outcome = ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.SKIPPED,
                "skipped after an earlier failure",
                finished_at=utcnow_iso(),
            )
        else:
            try:
                outcome = execute(change)
            except Exception as exc:  # noqa: BLE001 - recorded as a failed change and shown
                outcome = ChangeOutcome(
                    change.action,
                    change.target,
                    ChangeStatus.FAILED,
                    f"{type(exc).__name__}: {exc}",
                    finished_at=utcnow_iso(),
                )
            if not outcome.finished_at:
                outcome = ChangeOutcome(
                    outcome.action,
                    outcome.target,
                    outcome.status,
                    outcome.detail,
                    outcome.data,
                    utcnow_iso(),
                )
            failed = failed or outcome.status is ChangeStatus.FAILED
        emit_change(outcome)
        outcomes.append(outcome)
    return ApplyResult(plan_hash=plan.digest(), approval=approval, outcomes=tuple(outcomes))


def gate(
    plan: Plan,
    *,
    dry_run: bool,
    approved_by: str,
    change_ticket: str = "",
    execute: Callable[[Change], ChangeOutcome],
    stop_on_error: bool = True,
    on_applied: Callable[[ApplyResult], Any] | None = None,
) -> ApplyResult | None:
    """The one call a notebook's apply cell makes.

    - ``dry_run=True``: shows that nothing changed, returns None.
    - ``dry_run=False`` and ``approved_by`` given: applies now (headless or interactive).
    - ``dry_run=False``, no ``approved_by``, in JupyterLab: shows "Approve and apply" / "Cancel"
      buttons; the click applies (see :mod:`opslib.interactive`) and calls ``on_applied``.
      Returns None at once: a cell never blocks waiting for a click.
    - ``dry_run=False``, no ``approved_by``, headless: not applied, says why, returns None.
    """
    if not dry_run and not approved_by.strip() and not plan.empty and not is_headless():
        from opslib import interactive

        interactive.approval_buttons(
            plan,
            change_ticket=change_ticket,
            execute=execute,
            stop_on_error=stop_on_error,
            on_applied=on_applied,
        )
        return None
    approval = approve(plan, dry_run=dry_run, approved_by=approved_by, change_ticket=change_ticket)
    if approval is None:
        return None
    result = apply(plan, approval=approval, execute=execute, stop_on_error=stop_on_error)
    print(f"Applied {result.applied} change(s), {result.failed} failed.")
    if on_applied is not None:
        on_applied(result)
    return result


def check_limit(name: str, requested: int, limit: int) -> None:
    """Blast-radius guard: refuse (BadInputError) when a plan would exceed its limit parameter."""
    if limit >= 0 and requested > limit:
        raise BadInputError(
            f"{requested} exceeds the blast-radius limit {name}={limit}; raise {name} deliberately "
            "if this is really intended, or narrow the selection."
        )


def parse_csv(value: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c'] for comma-separated parameters."""
    return [v.strip() for v in value.split(",") if v.strip()]


def unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return list(seen)
