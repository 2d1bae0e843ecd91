"""The scale runbook: change capacity (ECS, Kubernetes, EKS, DynamoDB, RDS, ElastiCache) with
the evidence for it, a blast-radius limit, a bounded wait until it is live, and pre-warm/revert.

The notebook steps through :func:`inputs` (exit 2 on bad parameters, a revert bundle verified)
-> :func:`connect` -> :func:`current` (the target must exist) -> :func:`metrics.evidence` ->
:func:`propose` (the plan with its API calls, costs and downtime in words) ->
``opslib.safety.gate(plan, ..., execute=executor(conns))`` -> :func:`settle` (bounded wait) ->
:func:`metrics.watch` -> :func:`result` (the record, the revert plan of a pre-warm).
Kinds are looked up in :mod:`.kinds`; the flow never branches on them.
"""

from __future__ import annotations

from opslib.runbooks.scale import metrics
from opslib.runbooks.scale.flow import (
    ACTIONS,
    Result,
    Settled,
    connect,
    current,
    executor,
    inputs,
    propose,
    result,
    settle,
    watch,
)
from opslib.runbooks.scale.kinds import KINDS, Connections
from opslib.runbooks.scale.model import Current, Inputs, Proposal, Request, TargetKind

__all__ = [
    "ACTIONS",
    "KINDS",
    "Connections",
    "Current",
    "Inputs",
    "Proposal",
    "Request",
    "Result",
    "Settled",
    "TargetKind",
    "connect",
    "current",
    "executor",
    "inputs",
    "metrics",
    "propose",
    "result",
    "settle",
    "watch",
]
