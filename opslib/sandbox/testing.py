"""One sandbox per test session, shared by the pytest fixture and nbval notebook runs.

``tests/conftest.py`` (fixture ``sandbox``) and the root ``conftest.py`` (nbval, started in
``pytest_collection_modifyitems`` before any kernel starts) both call :func:`session_sandbox`,
so a session that runs unit tests and ``--nbval-lax notebooks/`` starts exactly one.

Set ``OPSLIB_TEST_SANDBOX=/tmp/mysandbox`` to reuse a sandbox you keep running while
iterating (it is brought up if needed and left running at the end).
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading

from opslib.sandbox.stack import SandboxInfo, down, env_vars, up

_lock = threading.Lock()
_info: SandboxInfo | None = None
_owned = False


def session_sandbox() -> SandboxInfo:
    """Start (once) the session's sandbox and export its variables into ``os.environ``."""
    global _info, _owned
    with _lock:
        if _info is None:
            keep = os.environ.get("OPSLIB_TEST_SANDBOX", "")
            if keep:
                state_dir, _owned = keep, False
            else:
                # not under pytest's 0700 tmp dirs: the PostgreSQL OS user must reach it
                state_dir = tempfile.mkdtemp(prefix="opslib-test-sandbox-", dir="/tmp")
                os.chmod(state_dir, 0o755)
                _owned = True
                atexit.register(stop_session_sandbox)
            try:
                _info = up(state_dir)
            except BaseException:
                if _owned:
                    down(state_dir)
                raise
            os.environ.update(env_vars(_info))
        return _info


def stop_session_sandbox() -> None:
    """Stop the session's sandbox if this process started it (idempotent)."""
    global _info
    with _lock:
        if _info is not None and _owned:
            down(_info.state_dir)
        _info = None
