"""The Python API a person or a scheduler calls: ``opslib.run(...)``.

A thin wrapper that composes the runner with the sandbox when asked (``sandbox=True``), so the
runner itself stays free of sandbox code and a production install needs no sandbox extra.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opslib.runner import RunResult
from opslib.runner import run as run_headless


def run(
    runbook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    sandbox: bool = False,
    evidence_dir: str | os.PathLike[str] = "evidence",
    timeout: float | None = None,
    param_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """Run a runbook headless and write its evidence bundle (see :func:`opslib.runner.run`).

    ``sandbox=True`` starts the local sandbox if needed (the ``[sandbox]`` extra), runs against
    it, and fills the parameters not given from its scenario presets. ``options`` are the
    runner's further keywords (``object_lock_mode``, ``retention_days``, ``max_output_mb``,
    ``approval``, ``require_approvers``, ``recover_stale``), passed through unchanged.
    """
    kw: dict[str, Any] = {
        "evidence_dir": evidence_dir,
        "timeout": timeout,
        "param_file": param_file,
        **options,
    }
    if not sandbox:
        return run_headless(runbook, parameters, env=env, defaults=defaults, **kw)
    from opslib.sandbox.extra import require_extra

    require_extra()
    from opslib.sandbox.runs import run_on_sandbox

    return run_on_sandbox(runbook, parameters, **kw)
