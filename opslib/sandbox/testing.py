"""One sandbox per test session, shared by the pytest fixture and nbval notebook runs.

``tests/conftest.py`` (fixture ``sandbox``) and the root ``conftest.py`` (nbval, started in
``pytest_collection_modifyitems`` before any kernel starts) both call :func:`session_sandbox`,
so a session that runs unit tests and ``--nbval-lax notebooks/`` starts exactly one.

The session's state dir is chosen when pytest starts (:func:`session_state_dir`) and put in
``OPSLIB_SANDBOX_DIR``, so anything in the session that calls ``opslib.sandbox.up()`` on its
own (``opslib run --sandbox`` in a subprocess, a test without the fixture) lands in that
same sandbox, which is stopped at the end, instead of leaving a ``./.sandbox`` running.

Set ``OPSLIB_TEST_SANDBOX=/tmp/mysandbox`` to reuse a sandbox you keep running while
iterating (it is brought up if needed and left running at the end).
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading

from opslib.sandbox.stack import down, up
from opslib.sandbox.state import SandboxInfo, env_vars

_lock = threading.RLock()
_state_dir: str | None = None
_info: SandboxInfo | None = None
_owned = False


def session_state_dir() -> str:
    """The session's sandbox dir (created empty, not started), exported as OPSLIB_SANDBOX_DIR."""
    global _state_dir, _owned
    with _lock:
        if _state_dir is None:
            keep = os.environ.get("OPSLIB_TEST_SANDBOX", "")
            if keep:
                _state_dir, _owned = keep, False
            else:
                # not under pytest's 0700 tmp dirs: the PostgreSQL OS user must reach it
                _state_dir = tempfile.mkdtemp(prefix="opslib-test-sandbox-", dir="/tmp")
                os.chmod(_state_dir, 0o755)
                _owned = True
                atexit.register(stop_session_sandbox)
            os.environ["OPSLIB_SANDBOX_DIR"] = _state_dir
        return _state_dir


def session_sandbox() -> SandboxInfo:
    """Start (once) the session's sandbox and export its variables into ``os.environ``."""
    global _info
    with _lock:
        if _info is None:
            state_dir = session_state_dir()
            _info = up(state_dir)
            os.environ.update(env_vars(_info))
        return _info


def stop_session_sandbox() -> None:
    """Stop the session's sandbox, whoever started it in this dir, if the session owns the
    dir (idempotent; safe when nothing was started)."""
    global _info, _state_dir
    with _lock:
        if _state_dir is not None and _owned:
            down(_state_dir)
            _state_dir = None
        _info = None


def ecs_service_back_on_the_failing_release(timeout_s: float = 60.0) -> None:
    """Put fintech-api-service back in the incident: 0 of 4 running on the failing release.

    Other modules' approved runs (a rollback, a scale-out) leave it 4 of 4 running, and test
    files run in any order (one sandbox per xdist worker); the deploy scenario puts the bad
    release back, whose deployment the sandbox's AWS server fails. Waits (bounded) for that.
    """
    import time

    from opslib.clients import aws_client
    from opslib.sandbox import stack
    from opslib.sandbox.scenarios import latency

    errors = stack.seed(["deploy"])
    if errors != {"deploy": ""}:
        raise AssertionError(f"reseeding the deploy scenario failed: {errors}")
    ecs = aws_client("ecs")
    deadline = time.monotonic() + timeout_s
    s: dict = {}
    while time.monotonic() < deadline:
        svc = ecs.describe_services(cluster=latency.ECS_CLUSTER, services=[latency.ECS_SERVICE])
        s = svc["services"][0]
        primary = next(d for d in s["deployments"] if d["status"] == "PRIMARY")
        if primary.get("rolloutState") != "IN_PROGRESS" and s["runningCount"] == 0:
            return
        time.sleep(1)
    raise AssertionError(f"{latency.ECS_SERVICE} did not come back to 0 running: {s}")
