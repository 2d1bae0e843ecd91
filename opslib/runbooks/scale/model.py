"""The scale runbook's types: target kinds, checked inputs, what was found, what is proposed.

Kept apart from the logic so the kinds (:mod:`.kinds`), the evidence (:mod:`.metrics`) and the
revert path (:mod:`.revert`) speak the same frozen types without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opslib.core.findings import Finding
from opslib.core.plans import Plan

UNCHANGED = -1  # desired/min_capacity/max_capacity: leave as is


class TargetKind(StrEnum):
    ECS_SERVICE = "ecs-service"
    K8S_DEPLOYMENT = "k8s-deployment"
    K8S_HPA = "k8s-hpa"
    ECS_AUTOSCALING = "ecs-autoscaling"
    EKS_NODEGROUP = "eks-nodegroup"
    DYNAMODB_TABLE = "dynamodb-table"
    RDS_INSTANCE = "rds-instance"
    ELASTICACHE_CLUSTER = "elasticache-cluster"


#: how each kind's ``target`` is written (also the message when it is not)
TARGET_SHAPE: Mapping[TargetKind, str] = {
    TargetKind.ECS_SERVICE: "cluster/service",
    TargetKind.ECS_AUTOSCALING: "cluster/service",
    TargetKind.K8S_DEPLOYMENT: "namespace/name",
    TargetKind.K8S_HPA: "namespace/name",
    TargetKind.EKS_NODEGROUP: "cluster/nodegroup",
    TargetKind.DYNAMODB_TABLE: "table name",
    TargetKind.RDS_INSTANCE: "DB instance id",
    TargetKind.ELASTICACHE_CLUSTER: "replication group or cache cluster id",
}


@dataclass(frozen=True)
class Request:
    """What the operator asked to change (``-1``/``0``/``""``: unchanged)."""

    desired: int = UNCHANGED
    delta: int = 0
    min_capacity: int = UNCHANGED
    max_capacity: int = UNCHANGED
    billing_mode: str = ""
    read_capacity: int = 0
    write_capacity: int = 0
    instance_class: str = ""

    @property
    def count(self) -> bool:
        return self.desired != UNCHANGED or self.delta != 0

    @property
    def bounds(self) -> bool:
        return self.min_capacity != UNCHANGED or self.max_capacity != UNCHANGED

    @property
    def empty(self) -> bool:
        return not (
            self.count
            or self.bounds
            or self.billing_mode
            or self.read_capacity
            or self.write_capacity
            or self.instance_class
        )


@dataclass(frozen=True)
class RevertSource:
    """An earlier run's bundle whose recorded revert plan this run applies, verified."""

    bundle: str
    run_id: str
    target_kind: str
    target: str
    plan: Plan  # exactly the recorded changes
    set_back: Mapping[str, Any]  # the numbers the revert restores
    revert_at: str
    verified: str  # what the verification said


@dataclass(frozen=True)
class Inputs:
    """The runbook's parameters, checked."""

    kind: TargetKind
    target: str
    request: Request
    revert_after_hours: float
    revert: RevertSource | None
    load_balancer: str
    watch_minutes: int
    max_step: int
    region: str


@dataclass(frozen=True)
class Current:
    """A target's capacity now: the numbers a change may set, whether it is live, its context."""

    kind: TargetKind
    target: str
    numbers: Mapping[str, Any]  # e.g. {"desired": 2, "running": 2} or {"billing_mode": ...}
    live: bool  # the capacity is what it says (running == desired, ACTIVE, available)
    status: str
    bounds: Mapping[str, int] = field(default_factory=dict)  # the autoscaler's min/max, if any
    facts: Mapping[str, Any] = field(default_factory=dict)  # multi_az, cooldowns, ...
    state: Any = None  # the adapter's own typed state

    def to_frame(self):
        import pandas as pd

        rows = [{"what": k, "value": v} for k, v in self.numbers.items()]
        rows += [{"what": f"autoscaler {k}", "value": v} for k, v in self.bounds.items()]
        rows += [{"what": k, "value": v} for k, v in self.facts.items()]
        rows.append(
            {"what": "status", "value": f"{self.status} ({'live' if self.live else 'settling'})"}
        )
        return pd.DataFrame(rows, columns=["what", "value"]).astype({"value": str})


@dataclass(frozen=True)
class Proposal:
    """The plan, what the numbers will be after it, and what it costs in words and money."""

    plan: Plan
    expected: Mapping[str, Any]  # numbers after the change (the keys of Current.numbers it sets)
    costs: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()

    def to_frame(self):
        return self.plan.to_frame()
