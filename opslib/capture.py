"""Evidence from an interactive JupyterLab session: the same bundle a headless run writes.

``opslib.capture_evidence()`` in the last cell shows a "Write evidence bundle" button (or, with
``button=False``, captures at once). Capturing:

1. asks the JupyterLab front end to save the notebook (so its current outputs are on disk,
   without the engineer saving by hand) and waits, bounded, until the file changes;
2. reads the saved notebook (found through the kernel's ``JPY_SESSION_NAME``) and replaces each
   widget output (approval panels, choices, progress bars: only a model id on disk) with a
   static snapshot taken from the live widgets in this kernel, so the notebook and its HTML
   read the same as what the engineer saw;
3. adds what this kernel recorded (:data:`opslib.core.recorder.SESSION`: approvals, applied
   changes, results) but the saved outputs lack, e.g. records made inside a button callback;
4. hands the notebook to :func:`opslib.evidence.bundle.write_bundle`, the platform's one bundle
   writer: redaction, HTML, record.json, attachments, manifest chained to the previous bundle.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from opslib import catalog, interactive
from opslib.core import redact, runtime
from opslib.core.errors import EvidenceError
from opslib.core.recorder import MIMES, SESSION, harvest, run_dir
from opslib.core.runtime import interactive_user
from opslib.evidence import bundle as bundle_mod
from opslib.runner import bad_input_names

#: Environment variable naming the evidence dir for interactive captures (`scripts/lab.sh` sets it).
EVIDENCE_DIR_ENV = "OPSLIB_EVIDENCE_DIR"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
#: Output metadata key marking the save request in the capture cell (replaced in the bundle).
MARKER = "opslib_capture"
#: Seconds to wait for the front end to save the notebook.
SAVE_TIMEOUT = 20.0

_TAGS = re.compile(r"<[^>]+>")


# --------------------------------------------------------------------------- locating and saving


def find_notebook() -> Path:
    """The notebook this kernel belongs to, from ``JPY_SESSION_NAME`` (set by Jupyter Server)."""
    candidates = [os.environ.get("JPY_SESSION_NAME", "")]
    try:
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None:
            candidates.append(str(ip.user_ns.get("__session__", "")))
    except ImportError:
        pass
    for c in candidates:
        if c and c.endswith(".ipynb"):
            p = Path(c)
            if not p.is_absolute():
                p = Path.cwd() / p
            if p.is_file():
                return p
    raise EvidenceError(
        "Cannot tell which notebook this kernel belongs to (no JPY_SESSION_NAME from Jupyter "
        "Server); pass notebook_path='path/to/runbook.ipynb' to capture_evidence()."
    )


def default_evidence_dir(nb_path: Path) -> str:
    """``$OPSLIB_EVIDENCE_DIR``; else ``evidence/`` beside ``notebooks/`` (where `opslib run` writes)."""
    env = os.environ.get(EVIDENCE_DIR_ENV)
    if env:
        return env
    parent = nb_path.resolve().parent
    if parent.name == "notebooks":
        return str(parent.parent / "evidence")
    return str(parent / "evidence")


def _save_script(token: str) -> str:
    """JavaScript for the front end: save the current notebook once, only right after the request.

    Uses ``window.jupyterapp`` when JupyterLab exposes it, else the save shortcut (Lumino reads
    ``keyCode``, which a synthetic event must be given explicitly). The age check and the token
    stop a re-opened notebook from saving again when the output is rendered later.
    """
    now_ms = int(time.time() * 1000)
    return f"""
(function() {{
  const token = {json.dumps(token)};
  window.__opslibSaved = window.__opslibSaved || {{}};
  if (window.__opslibSaved[token] || Date.now() - {now_ms} > 60000) {{ return; }}
  window.__opslibSaved[token] = true;
  const app = window.jupyterapp;
  if (app && app.commands && app.commands.hasCommand('docmanager:save')) {{
    app.commands.execute('docmanager:save');
    return;
  }}
  const mac = /Mac/.test(navigator.platform);
  const ev = new KeyboardEvent('keydown', {{key: 's', code: 'KeyS', ctrlKey: !mac, metaKey: mac,
                                           bubbles: true, cancelable: true}});
  Object.defineProperty(ev, 'keyCode', {{get: () => 83}});
  Object.defineProperty(ev, 'which', {{get: () => 83}});
  setTimeout(() => (element && element.isConnected ? element : document.body).dispatchEvent(ev), 50);
}})();
"""


def request_save(path: Path, *, timeout: float = SAVE_TIMEOUT) -> float:
    """Ask JupyterLab to save the notebook, then wait (bounded) until the file on disk changes.

    Returns the seconds waited. Raises :class:`EvidenceError` when nothing was saved in time.
    """
    from IPython.display import Javascript, display

    before = path.stat().st_mtime_ns
    token = uuid.uuid4().hex
    display(Javascript(_save_script(token)), metadata={MARKER: token})
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        time.sleep(0.2)
        try:
            if path.stat().st_mtime_ns != before:
                time.sleep(0.3)  # let the server finish writing
                return time.monotonic() - t0
        except FileNotFoundError:
            continue
    raise EvidenceError(
        f"JupyterLab did not save {path.name} within {timeout:g} s. Save it (Ctrl+S), then run "
        "opslib.capture_evidence(button=False, save=False) to write the bundle."
    )


# --------------------------------------------------------------------------- widget snapshots


def _live_widget(model_id: str) -> Any:
    try:
        from ipywidgets.widgets.widget import _instances
    except ImportError:
        return None
    return _instances.get(model_id)


def _inline(w: Any) -> tuple[str, str] | None:
    """(html, text) for a simple widget shown inline, or None for containers/outputs."""
    import ipywidgets as iw

    if isinstance(w, iw.Box | iw.Output):
        return None
    desc = getattr(w, "description", "") or ""
    if isinstance(w, iw.HTML | iw.HTMLMath):
        text = html.unescape(_TAGS.sub("", w.value)).strip()
        return w.value, text
    if isinstance(w, iw.Label):
        return html.escape(w.value), w.value
    if isinstance(w, iw.Button):
        state = " (disabled)" if w.disabled else ""
        return f"<button disabled>{html.escape(desc)}</button>{state}", f"[{desc}]{state}"
    if isinstance(w, iw.Checkbox):
        mark = "&#9745;" if w.value else "&#9744;"
        return f"{mark} {html.escape(desc)}", f"[{'x' if w.value else ' '}] {desc}"
    if isinstance(w, iw.FloatProgress | iw.IntProgress):
        return f'<progress value="{w.value}" max="{w.max}"></progress>', ""
    if hasattr(w, "label") and hasattr(w, "options"):  # selection widgets
        label = w.label
        shown = ", ".join(map(str, label)) if isinstance(label, tuple) else str(label)
        text = f"{desc}: {shown}" if desc else shown
        return html.escape(text), text
    if hasattr(w, "value"):
        text = f"{desc}: {w.value}" if desc else str(w.value)
        return html.escape(text), text
    return html.escape(repr(w)), repr(w)


def _display_output(html_text: str, text: str) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "data": {"text/html": html_text, "text/plain": text},
        "metadata": {},
    }


def widget_outputs(w: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Static nbformat outputs that show a live widget as it is now (recursively)."""
    import ipywidgets as iw

    if depth > 20:
        return []
    if isinstance(w, iw.Output):
        return static_outputs(list(w.outputs), depth + 1)
    if isinstance(w, iw.Box):
        children = list(w.children)
        parts = [_inline(c) for c in children]
        if children and all(p is not None for p in parts):
            htmls = " ".join(p[0] for p in parts if p[0])
            texts = " ".join(p[1] for p in parts if p[1])
            return [_display_output(f"<div>{htmls}</div>", texts)]
        out: list[dict[str, Any]] = []
        for c in children:
            out.extend(widget_outputs(c, depth + 1))
        return out
    part = _inline(w)
    return [_display_output(f"<div>{part[0]}</div>", part[1])] if part else []


def static_outputs(outputs: list[dict[str, Any]], depth: int = 0) -> list[dict[str, Any]]:
    """Replace widget views in ``outputs`` with snapshots of the live widgets; drop save requests."""
    out: list[dict[str, Any]] = []
    for o in outputs:
        if MARKER in (o.get("metadata") or {}):
            continue
        data = o.get("data") or {}
        if WIDGET_VIEW_MIME in data:
            w = _live_widget(str(data[WIDGET_VIEW_MIME].get("model_id", "")))
            if w is not None:
                out.extend(widget_outputs(w, depth))
                continue
            # widget from an earlier kernel: keep its text fallback only
            rest = {k: v for k, v in data.items() if k != WIDGET_VIEW_MIME}
            if rest:
                out.append({**o, "data": rest})
            continue
        out.append(o)
    return out


# --------------------------------------------------------------------------- the capture


def _records_missing(nb: dict[str, Any]) -> list[dict[str, Any]]:
    """SESSION records (approvals, changes, results) that the saved outputs do not already hold."""
    have = harvest(nb)

    def norm(x: Any) -> Any:
        # the front end syncs widget outputs back through JavaScript, where 17.0 becomes 17
        if isinstance(x, float) and x.is_integer():
            return int(x)
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [norm(v) for v in x]
        return x

    def key(x: Any) -> str:
        return json.dumps(norm(x), sort_keys=True, default=str)

    out = []

    def add(kind: str, payload: dict[str, Any], text: str) -> None:
        out.append(
            {
                "output_type": "display_data",
                "data": {MIMES[kind]: payload, "text/plain": text},
                "metadata": {},
            }
        )

    seen = {key(a) for a in have["approvals"]}
    for a in SESSION.approvals:
        if key(a) not in seen:
            add(
                "approval",
                a,
                f"approved by {a.get('approver', '?')} for plan {a.get('plan_hash', '')[:12]}",
            )
    seen = {key(c) for c in have["changes"]}
    for c in SESSION.changes:
        if key(c) not in seen:
            add(
                "change",
                c,
                f"change {c.get('status', '')}: {c.get('action', '')} {c.get('target', '')}",
            )
    for name, value in SESSION.results.items():
        if name not in have["results"] or key(have["results"][name]) != key(value):
            add(
                "result",
                {"name": name, "value": value},
                f"recorded {name} = {json.dumps(value, default=str)[:200]}",
            )
    return out


def _session_started() -> _dt.datetime:
    """When this kernel's IPython session started (UTC); now if unknown."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
        start = ip.history_manager.get_session_info()[1] if ip is not None else None
        if isinstance(start, _dt.datetime):
            return (
                start.astimezone(_dt.UTC)
                if start.tzinfo
                else start.astimezone().astimezone(_dt.UTC)
            )
    except (AttributeError, TypeError, IndexError, ValueError):
        pass
    return _dt.datetime.now(_dt.UTC)


def prepare_notebook(nb: dict[str, Any], *, note: str, panel_model_id: str = "") -> dict[str, Any]:
    """The saved notebook made static, with missing session records in the capture cell."""
    marker_cell = None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        outs = cell.get("outputs") or []
        hit = any(MARKER in (o.get("metadata") or {}) for o in outs) or any(
            panel_model_id
            and (o.get("data") or {}).get(WIDGET_VIEW_MIME, {}).get("model_id") == panel_model_id
            for o in outs
        )
        if hit and marker_cell is None:
            marker_cell = cell
        cell["outputs"] = static_outputs(outs)
    nb.get("metadata", {}).pop("widgets", None)  # the widget state is now static outputs
    extra = [
        {"output_type": "stream", "name": "stdout", "text": note + "\n"},
        *_records_missing(nb),
    ]
    if marker_cell is None:
        import nbformat

        marker_cell = nbformat.v4.new_code_cell(
            "# added by opslib.capture_evidence: the session's records"
        )
        nb.setdefault("cells", []).append(marker_cell)
    marker_cell["outputs"] = list(marker_cell.get("outputs") or []) + extra
    return nb


def capture_now(
    evidence_dir: str | os.PathLike[str] | None = None,
    *,
    notebook_path: str | os.PathLike[str] | None = None,
    save: bool = True,
    save_timeout: float = SAVE_TIMEOUT,
    panel_model_id: str = "",
):
    """Save the open notebook, then write its evidence bundle; returns the written Bundle."""
    import nbformat

    path = Path(notebook_path) if notebook_path else find_notebook()
    if not path.is_file():
        raise EvidenceError(f"No notebook at {path}; pass notebook_path= to capture_evidence().")
    if save:
        request_save(path, timeout=save_timeout)
    nb = nbformat.read(str(path), as_version=4)  # multi-line strings joined, v4 shape
    user = interactive_user()
    finished = _dt.datetime.now(_dt.UTC)
    note = f"Evidence captured from the interactive JupyterLab session by {user} at {bundle_mod.utc_iso(finished)}."
    nb = prepare_notebook(nb, note=note, panel_model_id=panel_model_id)
    nbformat.validate(nbformat.from_dict(nb))

    error = bundle_mod.find_error(nb)
    if error is None:
        status = "succeeded"
    else:
        status = "refused" if error.get("ename") in bad_input_names() else "failed"
    try:
        params = {p.name: p.default for p in catalog.read_parameters(path)}
    except Exception as exc:  # noqa: BLE001 - no parameters cell is allowed here; say so in the record
        params = {"_unreadable": f"{type(exc).__name__}: {exc}"}
    operator = bundle_mod.operator_info()
    if os.environ.get("JUPYTERHUB_USER"):
        operator["jupyterhub_user"] = os.environ["JUPYTERHUB_USER"]

    written = bundle_mod.write_bundle(
        nb,
        runbook=catalog.runbook_name(path),
        run_id=os.environ.get("OPSLIB_RUN_ID") or uuid.uuid4().hex[:10],
        started=_session_started(),
        finished=finished,
        status=status,
        evidence_dir=str(evidence_dir) if evidence_dir else default_evidence_dir(path),
        parameters=params,
        error=error,
        operator=operator,
        notebook_path=str(path),
        git=bundle_mod.git_commit(path),
        attachments_dir=run_dir() / "attachments",
        redactor=_redactor(),
        extra={
            "mode": "interactive",
            "exit_code": {"succeeded": 0, "refused": 2}.get(status, 1),
            "captured_by": user,
            "pending_approvals": len(interactive._PENDING),
            "sandbox": bool(os.environ.get("OPSLIB_SANDBOX_DIR")),
        },
    )
    return written


def _redactor():
    """This kernel's secrets: its environment and values registered at run time (register_secret)."""
    return redact.Redactor([os.environ], extra_values=getattr(redact, "_REGISTERED", ()))


class CapturePanel:
    """The "Write evidence bundle" button; each click writes a new bundle (chained after the last)."""

    def __init__(self, **capture_kwargs: Any) -> None:
        import ipywidgets as w

        self.kwargs = capture_kwargs
        self.bundle: Any = None
        self.button = w.Button(
            description="Write evidence bundle",
            icon="save",
            button_style="primary",
            layout=w.Layout(width="auto"),
        )
        self.status = w.HTML(
            "<p>Click after the last step (and after any approval) to write the bundle.</p>"
        )
        self.output = w.Output()
        self.widget = w.VBox([w.HBox([self.button]), self.status, self.output])
        self.button.on_click(lambda _b: self.capture())

    def capture(self) -> Any:
        self.button.disabled = True
        self.status.value = "<p>Saving the notebook and writing the evidence bundle&hellip;</p>"
        self.output.clear_output()
        self.bundle = None
        try:
            with self.output:
                try:
                    self.bundle = capture_now(panel_model_id=self.widget.model_id, **self.kwargs)
                except Exception as exc:
                    # shown here and, with its traceback, in the panel (the Output context)
                    self.status.value = (
                        f"<p><b>Evidence NOT written</b>: {html.escape(type(exc).__name__)}: "
                        f"{html.escape(str(exc))}</p>"
                    )
                    raise
            if self.bundle is None:
                return None
            self.output.clear_output()
            with self.output:
                _announce(self.bundle)
            self.status.value = (
                f"<p>Evidence written: <code>{html.escape(self.bundle.location)}</code></p>"
            )
            return self.bundle
        finally:
            self.button.disabled = False


def _announce(bundle: Any) -> None:
    rec = bundle.record
    print(f"Evidence written: {bundle.location}")
    print(
        f"status {rec['status']}, {len(rec.get('approvals') or [])} approval(s), "
        f"{len(rec.get('changes') or [])} change(s), {len(rec.get('results') or {})} result(s)."
    )
    print(f"Check it with: opslib evidence verify {bundle.location}")


def capture_evidence(
    evidence_dir: str | os.PathLike[str] | None = None,
    *,
    button: bool = True,
    notebook_path: str | os.PathLike[str] | None = None,
    save: bool = True,
    save_timeout: float = SAVE_TIMEOUT,
) -> None:
    """Write this interactive session's evidence bundle, the same as a headless run's.

    In JupyterLab: shows a "Write evidence bundle" button (``button=True``, so "Run All" does not
    capture before the engineer has clicked "Approve and apply"), or captures at once
    (``button=False``). The open notebook is saved from the front end first (``save``), bounded by
    ``save_timeout`` seconds. The bundle goes to ``evidence_dir``, else ``$OPSLIB_EVIDENCE_DIR``,
    else ``evidence/`` beside the ``notebooks/`` folder. Headless (``opslib run``, nbval) it does
    nothing: the runner writes the bundle.
    """
    from IPython.display import display

    if runtime.is_headless():
        print("Headless run: `opslib run` writes the evidence bundle; nothing to capture here.")
        return None
    kwargs = {
        "evidence_dir": evidence_dir,
        "notebook_path": notebook_path,
        "save": save,
        "save_timeout": save_timeout,
    }
    if button:
        display(CapturePanel(**kwargs).widget)
        return None
    _announce(capture_now(**kwargs))
    return None
