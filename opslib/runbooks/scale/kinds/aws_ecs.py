"""ECS targets: a service's desired count (inside its scalable target's bounds), and the
scalable target itself (Application Auto Scaling min/max)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from opslib.aws import autoscaling, ecs
from opslib.clients import translate_aws_error
from opslib.core.errors import BadInputError
from opslib.core.plans import Change, Plan
from opslib.runbooks.scale.kinds.base import (
    Connections,
    Kind,
    check_step,
    new_bounds,
    new_count,
    register,
    split,
    title,
    within_scaler,
)
from opslib.runbooks.scale.model import UNCHANGED, Current, Inputs, Proposal, TargetKind

# --- ECS service -----------------------------------------------------------------------------


def _read_ecs_service(c: Connections, target: str) -> Current:
    cluster, service = split(target)
    try:
        h = ecs.service_health(ecs=c.ecs, cluster=cluster, service=service, max_stopped=0)
    except ClientError as exc:
        raise translate_aws_error(exc, f"ecs:DescribeServices {target}") from exc
    t = autoscaling.read_target(autoscaling=c.autoscaling, cluster=cluster, service=service)
    bounds = {"min": t.min_capacity, "max": t.max_capacity} if t else {}
    facts = {"cooldowns": "; ".join(t.cooldowns)} if t and t.cooldowns else {}
    return Current(
        TargetKind.ECS_SERVICE,
        target,
        {"desired": h.desired, "running": h.running},
        h.running == h.desired and h.pending == 0,
        h.status,
        bounds,
        facts,
        state=t,
    )


def _propose_ecs_service(inp: Inputs, cur: Current) -> Proposal:
    cluster, service = split(cur.target)
    old = int(cur.numbers["desired"])
    want = new_count(inp.request, old, what=cur.target) if inp.request.count else old
    check_step("desiredCount", old, want, inp.max_step)
    changes: list[Change] = []
    warnings: list[str] = []
    expected: dict[str, Any] = {"desired": want, "running": want}
    t: autoscaling.ScalableTarget | None = cur.state
    if t is not None:
        lo, hi, notes = within_scaler(
            want,
            t.min_capacity,
            t.max_capacity,
            req=inp.request,
            scaler=f"the scalable target of {cur.target}",
            count_name="desired",
        )
        warnings += notes
        if (lo, hi) != (t.min_capacity, t.max_capacity):
            check_step("min_capacity", t.min_capacity, lo, inp.max_step)
            changes.append(autoscaling.plan_register(t, min_capacity=lo, max_capacity=hi))
            expected.update({"autoscaling_min": lo, "autoscaling_max": hi})
    elif inp.request.bounds:
        raise BadInputError(
            f"min_capacity/max_capacity: {cur.target} has no scalable target; register one with "
            "target_kind=ecs-autoscaling first, or leave them at -1"
        )
    if want != old:
        changes.append(
            Change(
                action=ecs.SCALE_ACTION,
                target=cur.target,
                effect=f"desiredCount {old} -> {want}",
                params={"cluster": cluster, "service": service, "from": old, "desiredCount": want},
            )
        )
    if want == 0 and old:
        warnings.append(f"desiredCount 0: {cur.target} will serve nothing")
    plan = Plan(
        title(cur.kind, cur.target, f"desiredCount {old} -> {want}"),
        tuple(changes),
        tuple(warnings),
        {"max_step": inp.max_step},
    )
    return Proposal(
        plan, expected, ("ECS task prices are not in the price table: see the task size x count",)
    )


register(
    Kind(
        TargetKind.ECS_SERVICE,
        ("ecs", "autoscaling", "cloudwatch", "elbv2"),
        frozenset({"desired", "delta", "min_capacity", "max_capacity"}),
        _read_ecs_service,
        _propose_ecs_service,
        "runningCount == desiredCount",
    )
)


# --- ECS autoscaling (scalable target) -------------------------------------------------------


def _read_ecs_autoscaling(c: Connections, target: str) -> Current:
    cluster, service = split(target)
    try:
        h = ecs.service_health(ecs=c.ecs, cluster=cluster, service=service, max_stopped=0)
    except ClientError as exc:
        raise translate_aws_error(exc, f"ecs:DescribeServices {target}") from exc
    t = autoscaling.read_target(autoscaling=c.autoscaling, cluster=cluster, service=service)
    numbers = {"min": t.min_capacity if t else None, "max": t.max_capacity if t else None}
    facts: dict[str, Any] = {"service desired": h.desired, "service running": h.running}
    if t and t.cooldowns:
        facts["cooldowns"] = "; ".join(t.cooldowns)
    return Current(
        TargetKind.ECS_AUTOSCALING,
        target,
        numbers,
        True,
        "registered" if t else "no scalable target",
        {},
        facts,
        state=(t, h),
    )


def _propose_ecs_autoscaling(inp: Inputs, cur: Current) -> Proposal:
    t, h = cur.state
    cluster, service = split(cur.target)
    if t is None:
        if inp.request.min_capacity == UNCHANGED or inp.request.max_capacity == UNCHANGED:
            raise BadInputError(
                f"min_capacity and max_capacity: {cur.target} has no scalable target yet; give both to register one"
            )
        if inp.revert_after_hours > 0:
            raise BadInputError(
                f"revert_after_hours: {cur.target} has no scalable target, so a pre-warm has no "
                "bounds to set back (a revert would have to deregister it); register the target "
                "in a run without revert_after_hours, then pre-warm it"
            )
        t = autoscaling.ScalableTarget(cluster, service, h.desired, h.desired, False, ())
    lo, hi = new_bounds(inp.request, t.min_capacity, t.max_capacity)
    check_step("min_capacity", t.min_capacity, lo, inp.max_step)
    warnings = []
    if h.desired < lo:
        warnings.append(
            f"the service runs {h.desired} desired: the scaler raises it to {lo} at its next evaluation"
        )
    if h.desired > hi:
        warnings.append(
            f"the service runs {h.desired} desired: the scaler lowers it to {hi} (scale-in)"
        )
    if cur.state[0] is None:
        change = Change(
            autoscaling.REGISTER_ACTION,
            cur.target,
            f"register scalable target min {lo}, max {hi}",
            {
                "cluster": cluster,
                "service": service,
                "from": None,
                "min_capacity": lo,
                "max_capacity": hi,
            },
        )
    else:
        change = autoscaling.plan_register(t, min_capacity=lo, max_capacity=hi)
    changes = (
        (change,) if cur.state[0] is None or (lo, hi) != (t.min_capacity, t.max_capacity) else ()
    )
    plan = Plan(
        title(cur.kind, cur.target, f"min {t.min_capacity} -> {lo}, max {t.max_capacity} -> {hi}"),
        changes,
        tuple(warnings),
        {"max_step": inp.max_step},
    )
    return Proposal(plan, {"min": lo, "max": hi})


register(
    Kind(
        TargetKind.ECS_AUTOSCALING,
        ("ecs", "autoscaling", "cloudwatch", "elbv2"),
        frozenset({"min_capacity", "max_capacity"}),
        _read_ecs_autoscaling,
        _propose_ecs_autoscaling,
        "the scalable target shows the new min/max",
    )
)
