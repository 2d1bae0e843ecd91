"""Point-in-time restore to a NEW target, validated, with DR-drill timing (runbook pitr-restore).

Restores an Aurora cluster, an RDS instance, a DynamoDB table or a self-hosted PostgreSQL
cluster to a point in time, never over the source, validates the target against the source
and times approval -> validated target. The flow is in :mod:`.flow` (re-exported here, the
only domain module the notebook imports); each engine is one module in :mod:`.engines`,
registered by its :class:`Engine` value.
"""

from __future__ import annotations

from opslib.runbooks.pitr_restore import engines
from opslib.runbooks.pitr_restore.flow import (
    RestoreExecutor,
    cleanup_outcome,
    connect,
    cutover_outcome,
    endpoint,
    executor,
    final_status,
    inputs,
    next_steps,
    outcome,
    parse_restore_time,
    plan,
    plan_cutover,
    plan_drill_cleanup,
    preflight,
    resolved_restore_time,
    validate,
)
from opslib.runbooks.pitr_restore.model import (
    RUNBOOK,
    Check,
    CheckResult,
    Engine,
    Preflight,
    RestoreClients,
    RestoreOutcome,
    RestoreRequest,
    RestoreStatus,
    StepOutcome,
    StepStatus,
    Validation,
    ValidationRow,
)

__all__ = [
    "RUNBOOK",
    "Check",
    "CheckResult",
    "Engine",
    "Preflight",
    "RestoreClients",
    "RestoreExecutor",
    "RestoreOutcome",
    "RestoreRequest",
    "RestoreStatus",
    "StepOutcome",
    "StepStatus",
    "Validation",
    "ValidationRow",
    "cleanup_outcome",
    "connect",
    "cutover_outcome",
    "endpoint",
    "engines",
    "executor",
    "final_status",
    "inputs",
    "next_steps",
    "outcome",
    "parse_restore_time",
    "plan",
    "plan_cutover",
    "plan_drill_cleanup",
    "preflight",
    "resolved_restore_time",
    "validate",
]
