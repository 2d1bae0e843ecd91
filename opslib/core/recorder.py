"""What a running notebook tells its evidence bundle: recorded results, approvals, applied changes.

Everything goes through one channel: a display output with an opslib MIME type. It works the
same in papermill (the runner harvests the executed notebook) and in JupyterLab (the notebook's
own outputs carry it, and :data:`SESSION` keeps a copy in the kernel for interactive capture).
A text/plain twin makes each record readable in the notebook and the HTML.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

RESULT_MIME = "application/vnd.opslib.result+json"
APPROVAL_MIME = "application/vnd.opslib.approval+json"
CHANGE_MIME = "application/vnd.opslib.change+json"
PLAN_MIME = "application/vnd.opslib.plan+json"
MIMES = {
    "result": RESULT_MIME,
    "approval": APPROVAL_MIME,
    "change": CHANGE_MIME,
    "plan": PLAN_MIME,
}

#: Environment variable the runner sets to the run's staging directory (attachments land there).
RUN_DIR_ENV = "OPSLIB_RUN_DIR"


def to_jsonable(value: Any) -> Any:
    """Make dataclasses, enums, datetimes, numpy/pandas scalars and sets JSON-serialisable."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class Session:
    """In-kernel copy of everything emitted, for capturing evidence from an interactive session."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.approvals: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []
        self.plans: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.__init__()


SESSION = Session()


def _display(kind: str, payload: dict[str, Any], text: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: keep the in-process copy only
        return
    if get_ipython() is None:
        return
    display({MIMES[kind]: payload, "text/plain": text}, raw=True)


def record(name: str, value: Any) -> Any:
    """Record a machine-readable result of this run (a count, verdict, id list).

    It lands in the executed notebook's outputs, then in ``record.json`` under ``results``
    and in the notebook metadata. Returns ``value`` so a cell can record and show at once.
    """
    if not name or not isinstance(name, str):
        raise ValueError("record(name, value): name must be a non-empty string")
    jv = to_jsonable(value)
    SESSION.results[name] = jv
    shown = json.dumps(jv, default=str)
    if len(shown) > 200:
        shown = shown[:197] + "..."
    _display("result", {"name": name, "value": jv}, f"recorded {name} = {shown}")
    return value


def emit_approval(approval: Any) -> None:
    """Put an approval (who, when, which plan hash, ticket) into the evidence."""
    payload = to_jsonable(approval)
    SESSION.approvals.append(payload)
    who = payload.get("approver", "?")
    _display("approval", payload, f"approved by {who} for plan {payload.get('plan_hash', '')[:12]}")


def emit_change(change_outcome: Any) -> None:
    """Put one applied (or failed) change into the evidence."""
    payload = to_jsonable(change_outcome)
    SESSION.changes.append(payload)
    _display(
        "change",
        payload,
        f"change {payload.get('status', '')}: {payload.get('action', '')} {payload.get('target', '')}",
    )


def emit_plan(plan_payload: dict[str, Any]) -> None:
    """Put a plan the gate was shown (title, digest, changes, whether it was applied) into the evidence.

    A dry run's bundle must hold the plan and its digest: ``opslib approve`` approves exactly
    that digest later, and the approved run applies only a plan that hashes the same.
    """
    payload = to_jsonable(plan_payload)
    SESSION.plans.append(payload)
    _display(
        "plan",
        payload,
        f"plan {payload.get('digest', '')[:12]}: {payload.get('title', '')} "
        f"({len(payload.get('changes') or [])} change(s), {payload.get('decision', '')})",
    )


def harvest(nb: Any) -> dict[str, Any]:
    """Collect results, approvals, changes and plans from an executed notebook's outputs (dict or NotebookNode)."""
    results: dict[str, Any] = {}
    approvals: list[Any] = []
    changes: list[Any] = []
    plans: list[Any] = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if RESULT_MIME in data:
                item = data[RESULT_MIME]
                results[item["name"]] = item["value"]
            if APPROVAL_MIME in data:
                approvals.append(data[APPROVAL_MIME])
            if CHANGE_MIME in data:
                changes.append(data[CHANGE_MIME])
            if PLAN_MIME in data:
                plans.append(data[PLAN_MIME])
    return {"results": results, "approvals": approvals, "changes": changes, "plans": plans}


def run_dir() -> Path:
    """The run's staging directory: set by the runner, else a per-kernel temporary directory."""
    d = os.environ.get(RUN_DIR_ENV)
    if not d:
        d = tempfile.mkdtemp(prefix="opslib-run-")
        os.environ[RUN_DIR_ENV] = d
    p = Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


def attachment_path(name: str) -> Path:
    """Path for an extra evidence file (e.g. a redrive journal) that the runner adds to the bundle.

    Write to it incrementally: it survives an interrupted run and is hashed into the manifest.
    """
    safe = Path(name).name
    if not safe or safe != name:
        raise ValueError(f"attachment name must be a plain file name, got {name!r}")
    d = run_dir() / "attachments"
    d.mkdir(parents=True, exist_ok=True)
    return d / safe
