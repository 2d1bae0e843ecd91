"""Recovery of killed runs: a staging dir whose process is gone becomes a bundle with status ``killed``.

The runner stages every run in a private directory under :func:`staging_root` and writes
``run.json`` there first (runbook, run id, start, parameters, evidence dir, its own pid and the
kernel's). SIGKILL, an OOM kill or a machine that died leaves that directory behind, holding
the notebook as far as papermill saved it and the attachments written so far (a redrive
journal). :func:`recover` turns it into a bundle, redacted and chained like any other, with
what is known (``status: killed``, the last save time); every ``opslib run`` start recovers
stale dirs first, and ``opslib evidence recover`` does it on demand.

The staging root is under the user's state dir (``$XDG_STATE_HOME/opslib/staging``, else
``~/.local/state/opslib/staging``), not /tmp, so it survives the reboot of a machine that died;
``OPSLIB_STAGING_DIR`` overrides it. It holds unredacted output, so it is private (0700).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opslib.core.errors import BadInputError, EvidenceError
from opslib.core.redact import Redactor, registered_secrets
from opslib.evidence import bundle as bundle_mod
from opslib.evidence.record import EXIT_CODES, RunStatus
from opslib.evidence.store import open_store

STAGING_ENV = "OPSLIB_STAGING_DIR"
RUN_FILE = "run.json"
KERNEL_PID_FILE = "kernel.pid"
_RECOVERING = ".recovering"


def staging_root() -> Path:
    """Where runs are staged (created 0700 on first use)."""
    env = os.environ.get(STAGING_ENV, "").strip()
    if env:
        root = Path(env)
    else:
        state = os.environ.get("XDG_STATE_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "state"
        )
        root = Path(state) / "opslib" / "staging"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def process_start(pid: int) -> float | None:
    """The start time of process ``pid`` (None if there is none), to tell a reused pid apart."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def _alive(pid: Any, started: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    now = process_start(pid)
    if now is None:
        return False
    return not isinstance(started, int | float) or abs(now - started) < 1.0


def write_run_file(staging: Path, info: dict[str, Any]) -> None:
    """Write ``run.json`` (what recovery needs to know) into a new staging dir."""
    pid = os.getpid()
    data = {
        **info,
        "pid": pid,
        "pid_started": process_start(pid),
        "host": socket.gethostname(),
    }
    (staging / RUN_FILE).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def write_kernel_pid(staging: Path, pid: int) -> None:
    """Note the kernel's pid: a staging dir is stale only when the kernel is gone too."""
    data = {"pid": pid, "pid_started": process_start(pid)}
    (staging / KERNEL_PID_FILE).write_text(json.dumps(data), encoding="utf-8")


@dataclass(frozen=True)
class StagedRun:
    """One staging dir and what its run.json says."""

    path: Path
    info: dict[str, Any]

    @property
    def runbook(self) -> str:
        return str(self.info.get("runbook", "") or self.path.name)

    def owners_alive(self) -> list[str]:
        """The processes of this run still alive (runner, kernel), as 'runner pid N'."""
        out = []
        if self.info.get("host") not in (None, socket.gethostname()):
            return [f"runner on host {self.info.get('host')}"]  # cannot tell: not ours to take
        if _alive(self.info.get("pid"), self.info.get("pid_started")):
            out.append(f"runner pid {self.info.get('pid')}")
        kp = self.path / KERNEL_PID_FILE
        if kp.exists():
            with contextlib.suppress(ValueError, OSError):
                k = json.loads(kp.read_text())
                if _alive(k.get("pid"), k.get("pid_started")):
                    out.append(f"kernel pid {k.get('pid')}")
        return out


def staged_run(path: str | os.PathLike[str]) -> StagedRun:
    """The staged run in ``path``; BadInputError when it is not a staging dir."""
    p = Path(path)
    try:
        info = json.loads((p / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"{p} is not an opslib staging dir (no readable {RUN_FILE}); staging dirs are under "
            f"{staging_root()}. List them with `opslib evidence recover --all --list`."
        ) from exc
    return StagedRun(p, info)


def stale_runs(root: str | os.PathLike[str] | None = None) -> list[StagedRun]:
    """Staging dirs whose runner and kernel are both gone, oldest first."""
    base = Path(root) if root else staging_root()
    out = []
    for p in sorted(base.iterdir()) if base.is_dir() else []:
        if not p.is_dir() or p.name.endswith(_RECOVERING) or not (p / RUN_FILE).exists():
            continue
        with contextlib.suppress(BadInputError):
            run = staged_run(p)
            if not run.owners_alive():
                out.append(run)
    return out


def _parse_time(text: Any) -> _dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _last_saved(path: Path) -> _dt.datetime:
    newest = max((f.stat().st_mtime for f in path.rglob("*") if f.is_file()), default=None)
    if newest is None:
        return _dt.datetime.now(_dt.UTC)
    return _dt.datetime.fromtimestamp(newest, _dt.UTC)


def partial_notebook(staging: Path, runbook: str, source: str) -> Any:
    """The notebook as papermill last saved it in ``staging``, else the unexecuted source."""
    import nbformat

    for p in (staging / f"{runbook}.ipynb", Path(source) if source else None):
        if p is None:
            continue
        try:
            return nbformat.read(str(p), as_version=4)
        except (OSError, ValueError):
            continue
    return nbformat.v4.new_notebook()


def running_cell(nb: Any) -> dict[str, Any] | None:
    """The cell papermill marked as running when the run stopped (or was killed)."""
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            src = cell.get("source", "")
            return {
                "cell_index": index,
                "cell_source": src if isinstance(src, str) else "".join(src),
            }
    return None


def recover(
    path: str | os.PathLike[str],
    *,
    evidence_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> bundle_mod.Bundle:
    """Write the bundle of the killed run staged in ``path`` and remove the staging dir.

    Refuses (BadInputError) while the run's runner or kernel is still alive, unless ``force``.
    The bundle goes to the evidence dir the run was started with (``evidence_dir`` overrides).
    The staging dir is claimed by an atomic rename, so two recoveries never write two bundles;
    it is left in place (renamed back) when the bundle cannot be written.
    """
    run = staged_run(path)
    alive = run.owners_alive()
    if alive and not force:
        raise BadInputError(
            f"{run.path} belongs to a run that is still going ({', '.join(alive)}); wait for it, "
            "or stop it first."
        )
    claimed = run.path.with_name(run.path.name + _RECOVERING)
    try:
        os.rename(run.path, claimed)
    except FileNotFoundError as exc:
        raise EvidenceError(f"{run.path} was recovered by another process meanwhile.") from exc
    try:
        written = _write_killed(claimed, run.info, evidence_dir)
    except BaseException:
        os.rename(claimed, run.path)
        raise
    shutil.rmtree(claimed, ignore_errors=True)
    return written


def _write_killed(
    staging: Path, info: dict[str, Any], evidence_dir: str | os.PathLike[str] | None
) -> bundle_mod.Bundle:
    runbook = str(info.get("runbook") or "unknown")
    nb = partial_notebook(staging, runbook, str(info.get("notebook") or ""))
    if "papermill" in nb.get("metadata", {}):
        nb["metadata"]["papermill"]["output_path"] = f"{runbook}.ipynb"
    last = _last_saved(staging)
    now = _dt.datetime.now(_dt.UTC)
    started = _parse_time(info.get("started")) or last
    error: dict[str, Any] = {
        "ename": "Killed",
        "evalue": (
            f"the run's process (pid {info.get('pid')} on {info.get('host')}) died without "
            f"writing its bundle; recovered from its staging dir at {bundle_mod.utc_iso(now)}; "
            f"the notebook is as papermill last saved it ({bundle_mod.utc_iso(last)})"
        ),
    }
    cell = bundle_mod.find_error(nb) or running_cell(nb)
    if cell:
        error = {**cell, **error}
    target = evidence_dir or info.get("evidence_dir") or "evidence"
    store = open_store(
        target,
        lock_mode=info.get("object_lock_mode") or None,
        retention_days=info.get("retention_days"),
    )
    extra = {
        **(info.get("extra") or {}),  # the caller's fields (an alert's trigger) first
        "exit_code": EXIT_CODES[RunStatus.KILLED],
        "parameters_given": info.get("parameters_given", []),
        "sandbox": bool(info.get("sandbox")),
        "recovered": {
            "by": bundle_mod.os_user(),
            "at": bundle_mod.utc_iso(now),
            "staging_dir": str(staging).removesuffix(_RECOVERING),
            "last_saved": bundle_mod.utc_iso(last),
        },
        **({"approves_bundle": info["approves_bundle"]} if info.get("approves_bundle") else {}),
    }
    return bundle_mod.write_bundle(
        nb,
        runbook=runbook,
        run_id=str(info.get("run_id") or staging.name),
        started=started,
        finished=last,
        status=RunStatus.KILLED,
        evidence_dir=store,
        parameters=info.get("parameters") or {},
        error=error,
        operator=info.get("operator"),
        notebook_path=str(info.get("notebook") or ""),
        git=info.get("git"),
        attachments_dir=staging / "attachments",
        redactor=Redactor([os.environ], extra_values=registered_secrets(staging)),
        extra=extra,
        max_output_mb=info.get("max_output_mb"),
    )


def recover_all(
    root: str | os.PathLike[str] | None = None,
) -> tuple[list[bundle_mod.Bundle], list[str]]:
    """Recover every stale staging dir; (bundles written, problems as text). Never raises."""
    written, problems = [], []
    for run in stale_runs(root):
        try:
            written.append(recover(run.path))
        except Exception as exc:  # noqa: BLE001  one bad dir must not stop the others
            problems.append(f"{run.path}: {type(exc).__name__}: {exc}")
    return written, problems
