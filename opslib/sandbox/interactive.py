"""Point a JupyterLab kernel at the running local sandbox (a first cell's one call)."""

from __future__ import annotations

import os

from opslib.core.errors import SandboxError
from opslib.sandbox.stack import status
from opslib.sandbox.state import env_vars

#: Environment variables whose values are never printed.
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD")


def use_sandbox(enabled: bool = True, *, state_dir: str | None = None) -> dict[str, str]:
    """Point this kernel at the running local sandbox (AWS API server, PostgreSQL, Kubernetes).

    For a first cell in JupyterLab: sets ``os.environ`` from :func:`opslib.sandbox.env_vars` of
    the sandbox in ``state_dir`` (default ``$OPSLIB_SANDBOX_DIR`` or ``./.sandbox``). Does nothing
    when ``enabled`` is False, so a runbook can pass a ``use_sandbox: bool`` parameter straight
    through. Raises :class:`SandboxError` when none is running: start it with
    ``opslib sandbox up`` (or ``make sandbox-up``).
    """
    if not enabled:
        return {}
    info = status(state_dir)
    if info is None:
        raise SandboxError(
            "No sandbox is running"
            + (f" in {state_dir}" if state_dir else "")
            + ": start it with `opslib sandbox up` (or `make sandbox-up`), then run this cell again."
        )
    env = {k: str(v) for k, v in env_vars(info).items()}
    os.environ.update(env)
    shown = ", ".join(f"{k}={'***' if k in _SECRET_ENV else v}" for k, v in sorted(env.items()))
    print(f"Using the local sandbox: {shown}")
    return env
