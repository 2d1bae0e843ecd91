"""Application Auto Scaling for ECS services: the scalable target's min/max and its cooldowns.

The scaling procedure raises an ECS service's floor before an expected peak
(``register-scalable-target --min-capacity``) and warns that a manual scale-in below the
minimum is undone by the scaler at its next evaluation. So the scale runbook reads the target
(and its policies' cooldowns, which say how soon the scaler acts) before planning any ECS
change, and plans ``RegisterScalableTarget`` when the floor or ceiling has to move.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from opslib.clients import aws_error_code, translate_aws_error
from opslib.core import executors
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus

__all__ = [
    "REGISTER_ACTION",
    "ScalableTarget",
    "plan_register",
    "read_target",
    "register_target",
    "resource_id",
]

REGISTER_ACTION = "application-autoscaling:RegisterScalableTarget"
NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"


def resource_id(cluster: str, service: str) -> str:
    """``service/<cluster>/<service>``, the ResourceId Application Auto Scaling uses for ECS."""
    return f"service/{cluster}/{service}"


@dataclass(frozen=True)
class ScalableTarget:
    """An ECS service's scalable target: the floor and ceiling the scaler keeps it within."""

    cluster: str
    service: str
    min_capacity: int
    max_capacity: int
    suspended: bool
    cooldowns: tuple[str, ...]  # "policy: scale-out 60 s, scale-in 300 s"

    @property
    def target(self) -> str:
        return f"{self.cluster}/{self.service}"


def read_target(*, autoscaling, cluster: str, service: str) -> ScalableTarget | None:
    """The service's scalable target, or None when it has none (the count is manual only)."""
    rid = resource_id(cluster, service)
    what = f"application-autoscaling:DescribeScalableTargets {rid}"
    try:
        found = autoscaling.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[rid], ScalableDimension=DIMENSION
        ).get("ScalableTargets", [])
    except ClientError as exc:
        raise translate_aws_error(exc, what) from exc
    if not found:
        return None
    t = found[0]
    cooldowns: list[str] = []
    try:
        pols = autoscaling.describe_scaling_policies(
            ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION
        ).get("ScalingPolicies", [])
    except ClientError as exc:  # context for the plan, not needed to change capacity: say so
        pols = []
        cooldowns.append(f"cooldowns unreadable ({aws_error_code(exc)})")
    for p in pols:
        tt = p.get("TargetTrackingScalingPolicyConfiguration") or {}
        step = p.get("StepScalingPolicyConfiguration") or {}
        if tt:
            cooldowns.append(
                f"{p['PolicyName']}: target {tt.get('TargetValue')}, scale-out cooldown "
                f"{tt.get('ScaleOutCooldown', 0)} s, scale-in cooldown {tt.get('ScaleInCooldown', 0)} s"
            )
        elif step:
            cooldowns.append(
                f"{p['PolicyName']}: step scaling, cooldown {step.get('Cooldown', 0)} s"
            )
    sus = t.get("SuspendedState") or {}
    return ScalableTarget(
        cluster=cluster,
        service=service,
        min_capacity=int(t["MinCapacity"]),
        max_capacity=int(t["MaxCapacity"]),
        suspended=bool(
            sus.get("DynamicScalingInSuspended") or sus.get("DynamicScalingOutSuspended")
        ),
        cooldowns=tuple(cooldowns),
    )


def plan_register(t: ScalableTarget, *, min_capacity: int, max_capacity: int) -> Change:
    """The RegisterScalableTarget call that moves the floor/ceiling (read only)."""
    return Change(
        action=REGISTER_ACTION,
        target=t.target,
        effect=(f"min {t.min_capacity} -> {min_capacity}, max {t.max_capacity} -> {max_capacity}"),
        params={
            "cluster": t.cluster,
            "service": t.service,
            "from": {"min_capacity": t.min_capacity, "max_capacity": t.max_capacity},
            "min_capacity": int(min_capacity),
            "max_capacity": int(max_capacity),
        },
    )


@executors.register(REGISTER_ACTION)
def register_target(change: Change, *, autoscaling) -> ChangeOutcome:
    """Apply one planned RegisterScalableTarget, only if min/max are still what the plan saw."""
    p = change.params
    now = read_target(autoscaling=autoscaling, cluster=p["cluster"], service=p["service"])
    seen = {"min_capacity": now.min_capacity, "max_capacity": now.max_capacity} if now else None
    planned = dict(p["from"]) if p["from"] else None  # None: the plan registers a new target
    if seen != planned:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"the scalable target changed since the plan ({planned} -> {seen}); plan again",
        )
    rid = resource_id(p["cluster"], p["service"])
    try:
        autoscaling.register_scalable_target(
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            MinCapacity=int(p["min_capacity"]),
            MaxCapacity=int(p["max_capacity"]),
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"{REGISTER_ACTION} {rid}") from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        change.effect,
        {"min_capacity": int(p["min_capacity"]), "max_capacity": int(p["max_capacity"])},
    )
