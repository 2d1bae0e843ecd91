"""A headless run composed with the local sandbox: its environment and its scenario presets.

The runner knows nothing of the sandbox; it takes an ``env`` and ``defaults``. This is the one
place that fills them from a running sandbox (started if needed), used by
``opslib run --sandbox``, ``opslib.run(..., sandbox=True)`` and the demo.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opslib import catalog, runner
from opslib.sandbox.stack import presets, up
from opslib.sandbox.state import env_vars


def run_on_sandbox(
    runbook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    state_dir: str | None = None,
    use_presets: bool = True,
    **run_kw: Any,
) -> runner.RunResult:
    """:func:`opslib.runner.run` against the sandbox in ``state_dir`` (started if needed).

    Parameters the caller did not give come from the runbook's scenario presets unless
    ``use_presets`` is False (a run whose parameters are already complete).
    """
    info = catalog.resolve(runbook)
    sandbox = up(state_dir)
    given = tuple(parameters or {})
    defaults = (presets(info.name, state_dir, given=given) or {}) if use_presets else {}
    return runner.run(
        runbook,
        parameters,
        env=env_vars(sandbox),
        defaults=defaults,
        **run_kw,
    )
