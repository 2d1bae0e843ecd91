"""The sandbox's state dir: where its parts are (:class:`SandboxInfo`, ``state.json``), the lock
that serialises ``up``/``down``/``seed`` across processes, the environment that points
standard clients at it, and the background processes scenarios spawn (stopped by ``down``).

Kept apart from :mod:`opslib.sandbox.stack` (which starts and stops the servers) so that the
scenario context can use it without importing the stack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from opslib.core.errors import SandboxError
from opslib.sandbox import procs

DEFAULT_DIR = ".sandbox"
#: how long up/down/seed wait for another process's up (which includes seeding) to finish
LOCK_TIMEOUT = 300


@dataclasses.dataclass(frozen=True)
class SandboxInfo:
    """Where the running sandbox's parts are. Persisted as ``info`` in ``state.json``."""

    state_dir: str
    aws_endpoint: str
    region: str
    pg_host: str
    pg_port: int
    pg_user: str
    pg_database: str
    pg_data_dir: str
    pg_wal_archive: str
    pg_bin_dir: str
    pg_os_user: str
    kube_url: str
    kubeconfig: str
    #: scenario name -> "ExcType: message" for seeds that failed (the rest of the sandbox works)
    scenario_errors: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)
    #: components whose process is not running (status() reports; up() restarts them)
    stopped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_state_dir(state_dir: str | os.PathLike | None = None) -> Path:
    """Argument, else ``$OPSLIB_SANDBOX_DIR``, else ``./.sandbox``; absolute."""
    raw = state_dir or os.environ.get("OPSLIB_SANDBOX_DIR") or DEFAULT_DIR
    return Path(raw).expanduser().resolve()


_held: dict[str, int] = {}
_held_guard = threading.RLock()
# serialises read-modify-write of state.json between threads of one process (parallel seeds)
_state_guard = threading.RLock()


@contextlib.contextmanager
def _locked(sd: Path):
    """An exclusive lock on the state dir across processes.

    Re-entrant within this process, threads included: while ``up`` holds it, the seeds (in
    worker threads) record the processes they spawn; ``_state_guard`` orders their writes.
    """
    key = str(sd)
    with _held_guard:
        nested = _held.get(key, 0) > 0
        if nested:
            _held[key] += 1
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    sd.mkdir(parents=True, exist_ok=True)
    fd = os.open(sd / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"Another process holds the sandbox lock {sd / '.lock'} for more than "
                        f"{LOCK_TIMEOUT}s; is an `up` or `down` stuck?"
                    ) from None
                time.sleep(0.1)
        with _held_guard:
            _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_state(sd: Path) -> dict:
    try:
        return json.loads((sd / "state.json").read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise SandboxError(
            f"{sd / 'state.json'} is not valid JSON ({exc}); run `opslib sandbox down` "
            "to stop what it recorded and start afresh."
        ) from exc


def _write_state(sd: Path, state: dict) -> None:
    tmp = sd / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, sd / "state.json")


def env_vars(info: SandboxInfo) -> dict[str, str]:
    """The environment that points standard clients (boto3, libpq, kubernetes) at the sandbox."""
    return {
        "AWS_ENDPOINT_URL": info.aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": info.region,
        "AWS_REGION": info.region,
        "PGHOST": info.pg_host,
        "PGPORT": str(info.pg_port),
        "PGUSER": info.pg_user,
        "PGDATABASE": info.pg_database,
        "KUBECONFIG": info.kubeconfig,
        "OPSLIB_SANDBOX_DIR": info.state_dir,
    }


def spawn_tracked(
    state_dir: str | os.PathLike, name: str, argv: list[str], *, env: dict[str, str] | None = None
) -> int:
    """Start a background process recorded under ``spawned.<name>`` (an earlier one with that
    name is stopped first); ``down`` stops it by pid."""
    sd = resolve_state_dir(state_dir)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    with _locked(sd), _state_guard:
        state = _read_state(sd)
        spawned = state.setdefault("spawned", {})
        procs.stop(spawned.get(name))
        rec = procs.spawn(argv, log=sd / "logs" / f"spawn-{safe}.log", env=env)
        spawned[name] = rec
        _write_state(sd, state)
    return rec["pid"]


def stop_spawned(state_dir: str | os.PathLike, name: str) -> bool:
    """Stop the background process spawned as ``name``; True if it was running."""
    sd = resolve_state_dir(state_dir)
    with _locked(sd), _state_guard:
        state = _read_state(sd)
        rec = state.get("spawned", {}).pop(name, None)
        _write_state(sd, state)
    return procs.stop(rec)
