"""Scheduler integrations: run a runbook from the scheduler a team already has.

``opslib schedule kubernetes`` prints a CronJob/Job, ``opslib schedule argo`` a
WorkflowTemplate/CronWorkflow; :mod:`opslib.schedule.exits` is the exit-code contract they all
act on (0 ok, 1 failed, 2 refused, 3 findings at or above ``--fail-on``, 4 infrastructure).
Parameters are validated (and secrets refused) exactly as ``opslib run`` does, before anything
is printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opslib import runner


def parameters(
    runbook: str, given: Mapping[str, Any] | None = None, *, param_file: str | Path | None = None
) -> tuple[str, dict[str, Any]]:
    """(runbook name, validated parameters) as ``opslib run`` would take them; exit 2 otherwise."""
    info, params = runner.prepare(runbook, given, param_file=param_file)
    return info.name, params
