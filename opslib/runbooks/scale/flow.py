"""The scale flow: inputs -> connect -> current -> propose -> gate -> settle -> watch -> result.

Every refusal the procedures ask for happens before the gate: bad or conflicting parameters in
:func:`inputs` (one BadInputError naming each), a target that does not exist in
:func:`current`, and the blast radius, the autoscaler's bounds and the 24-hour billing rule in
:func:`propose`. After an approved apply, :func:`settle` waits (bounded) until the new capacity
is live; a timeout is recorded (``live`` False, what exists now), not raised past the record.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, replace
from typing import Any

from opslib.aws import autoscaling, dynamodb_capacity, ecs, eks, elasticache_capacity, rds_capacity
from opslib.clients import aws_client, k8s_api
from opslib.core import executors
from opslib.core.errors import BadInputError, RunbookTimeoutError
from opslib.core.findings import Finding, Severity
from opslib.core.plans import ApplyResult, ChangeStatus, Plan
from opslib.core.progress import ProgressFactory, default_progress
from opslib.core.waits import poll_until
from opslib.k8s import hpa, workloads
from opslib.runbooks.scale import metrics, revert
from opslib.runbooks.scale.kinds import KINDS, Connections, request_fields
from opslib.runbooks.scale.model import (
    TARGET_SHAPE,
    UNCHANGED,
    Current,
    Inputs,
    Proposal,
    Request,
    TargetKind,
)

__all__ = [
    "ACTIONS",
    "Result",
    "Settled",
    "connect",
    "current",
    "executor",
    "inputs",
    "propose",
    "result",
    "settle",
    "watch",
]


ACTIONS = (
    ecs.SCALE_ACTION,
    autoscaling.REGISTER_ACTION,
    workloads.SCALE_ACTION,
    hpa.PATCH_ACTION,
    eks.UPDATE_ACTION,
    dynamodb_capacity.UPDATE_ACTION,
    rds_capacity.MODIFY_ACTION,
    elasticache_capacity.MODIFY_GROUP_ACTION,
    elasticache_capacity.MODIFY_CLUSTER_ACTION,
)
MAX_WATCH_MINUTES = 120
MAX_REVERT_HOURS = 24 * 14
#: how long each kind may take to become live after its change (RDS and ElastiCache rebuild)
WAIT_S = {TargetKind.RDS_INSTANCE: 3600.0, TargetKind.ELASTICACHE_CLUSTER: 3600.0}
DEFAULT_WAIT_S = 900.0
POLL_S = 5.0


def inputs(
    target_kind: str = "",
    target: str = "",
    *,
    desired: int = UNCHANGED,
    delta: int = 0,
    min_capacity: int = UNCHANGED,
    max_capacity: int = UNCHANGED,
    billing_mode: str = "",
    read_capacity: int = 0,
    write_capacity: int = 0,
    instance_class: str = "",
    revert_after_hours: float = 0,
    revert_bundle: str = "",
    load_balancer: str = "",
    watch_minutes: int = 10,
    max_step: int = 10,
    region: str = "",
) -> Inputs:
    """Every check that needs no AWS or Kubernetes call; one BadInputError naming each problem.

    With ``revert_bundle`` the bundle is verified here (a local read and ``opslib evidence
    verify``), and its target becomes this run's.
    """
    problems: list[str] = []
    req = Request(
        desired,
        delta,
        min_capacity,
        max_capacity,
        (billing_mode or "").strip().upper(),
        read_capacity,
        write_capacity,
        (instance_class or "").strip(),
    )
    given = [k for k, v in request_fields(req).items() if v]
    src = None
    if revert_bundle:
        if given:
            problems.append(
                f"revert_bundle applies exactly its recorded plan: leave {', '.join(given)} unset"
            )
        if revert_after_hours:
            problems.append(
                "revert_after_hours: not with revert_bundle (a revert is not itself reverted)"
            )
        src, why = revert.load(
            revert_bundle, target_kind=target_kind.strip(), target=target.strip()
        )
        problems += why
        if src is not None:
            target_kind, target = src.target_kind, src.target
    kind = None
    try:
        kind = TargetKind((target_kind or "").strip().lower())
    except ValueError:
        if not (revert_bundle and src is None):
            problems.append(
                f"target_kind={target_kind!r}: give one of {', '.join(k.value for k in TargetKind)}"
            )
    target = (target or "").strip()
    if kind is not None:
        shape = TARGET_SHAPE[kind]
        two = "/" in shape
        parts = target.split("/")
        if (
            not target
            or (two and (len(parts) != 2 or not all(parts)))
            or (not two and "/" in target)
        ):
            problems.append(f"target={target!r}: for {kind.value} give {shape}")
        if not revert_bundle:
            stray = [g for g in given if g not in KINDS[kind].allowed]
            if stray:
                problems.append(
                    f"{', '.join(stray)}: not used for {kind.value} (it takes {', '.join(sorted(KINDS[kind].allowed))})"
                )
    if req.desired != UNCHANGED and req.delta != 0:
        problems.append(f"desired={req.desired} and delta={req.delta}: give one of them, not both")
    if req.desired < UNCHANGED:
        problems.append(f"desired={req.desired}: give a count >= 0 (or -1 for unchanged)")
    for name, v in (("min_capacity", req.min_capacity), ("max_capacity", req.max_capacity)):
        if v < UNCHANGED:
            problems.append(f"{name}={v}: give a count >= 0 (or -1 for unchanged)")
    if (
        UNCHANGED not in (req.min_capacity, req.max_capacity)
        and req.max_capacity < req.min_capacity
    ):
        problems.append(
            f"max_capacity={req.max_capacity} is below min_capacity={req.min_capacity}: give max >= min"
        )
    if max_step < 1:
        problems.append(f"max_step={max_step}: give at least 1")
    elif abs(req.delta) > max_step:
        problems.append(
            f"delta={req.delta} is larger than max_step={max_step}: scale in steps or raise max_step deliberately"
        )
    if req.billing_mode not in ("", dynamodb_capacity.ON_DEMAND, dynamodb_capacity.PROVISIONED):
        problems.append(f"billing_mode={billing_mode!r}: give PAY_PER_REQUEST or PROVISIONED")
    for name, v in (("read_capacity", req.read_capacity), ("write_capacity", req.write_capacity)):
        if v < 0:
            problems.append(f"{name}={v}: give units >= 1 (or 0 for unchanged)")
    if (
        kind is TargetKind.RDS_INSTANCE
        and req.instance_class
        and not req.instance_class.startswith("db.")
    ):
        problems.append(
            f"instance_class={instance_class!r}: give an RDS class such as db.r6g.xlarge"
        )
    if (
        kind is TargetKind.ELASTICACHE_CLUSTER
        and req.instance_class
        and not req.instance_class.startswith("cache.")
    ):
        problems.append(
            f"instance_class={instance_class!r}: give a node type such as cache.r6g.large"
        )
    if not 0 <= revert_after_hours <= MAX_REVERT_HOURS:
        problems.append(f"revert_after_hours={revert_after_hours}: give 0..{MAX_REVERT_HOURS}")
    elif revert_after_hours and req.empty:
        problems.append(
            "revert_after_hours: give the capacity to pre-warm (desired, min_capacity, billing_mode, ...)"
        )
    if not 0 <= watch_minutes <= MAX_WATCH_MINUTES:
        problems.append(f"watch_minutes={watch_minutes}: give 0..{MAX_WATCH_MINUTES}")
    if problems:
        raise BadInputError("; ".join(problems) + ". Nothing was changed.")
    assert kind is not None
    return Inputs(
        kind,
        target,
        req,
        float(revert_after_hours),
        src,
        load_balancer.strip(),
        watch_minutes,
        max_step,
        region,
    )


_AWS = {
    "ecs": "ecs",
    "autoscaling": "application-autoscaling",
    "eks": "eks",
    "dynamodb": "dynamodb",
    "rds": "rds",
    "elasticache": "elasticache",
    "cloudwatch": "cloudwatch",
    "elbv2": "elbv2",
}


def connect(inp: Inputs) -> Connections:
    """The clients the target kind needs, from the standard chains (the others stay None)."""
    made: dict[str, Any] = {}
    for name in KINDS[inp.kind].clients:
        made[name] = k8s_api() if name == "api" else aws_client(_AWS[name], region=inp.region)
    if inp.load_balancer and "elbv2" not in made:
        made["elbv2"] = aws_client("elbv2", region=inp.region)
        made.setdefault("cloudwatch", aws_client("cloudwatch", region=inp.region))
    return Connections(**made)


def current(inp: Inputs, conns: Connections) -> Current:
    """The target's capacity now; NotFoundError (exit 2) when it does not exist."""
    return KINDS[inp.kind].read(conns, inp.target)


def propose(inp: Inputs, cur: Current) -> Proposal:
    """The plan (read only): the recorded revert plan, or the kind's plan for the request."""
    if inp.revert is not None:
        return revert.proposal(inp.revert, cur)
    if inp.request.empty:
        return Proposal(
            Plan(f"{inp.kind.value} {inp.target}: capacity read only, nothing asked"),
            dict(cur.numbers),
        )
    prop = KINDS[inp.kind].propose(inp, cur)
    if inp.revert_after_hours and prop.plan.changes:
        back = {
            k: cur.numbers[k]
            for k in prop.expected
            if k in cur.numbers and cur.numbers[k] != prop.expected[k]
        }
        note = f"pre-warm: after the apply the bundle records the plan that sets back {back} in {inp.revert_after_hours:g} h"
        prop = replace(prop, plan=replace(prop.plan, warnings=(*prop.plan.warnings, note)))
    return prop


def executor(conns: Connections) -> executors.Executor:
    """The ``execute`` for :func:`opslib.safety.gate`: only this runbook's actions."""
    return executors.bind(
        ecs=conns.ecs,
        autoscaling=conns.autoscaling,
        eks=conns.eks,
        dynamodb=conns.dynamodb,
        rds=conns.rds,
        elasticache=conns.elasticache,
        api=conns.api,
        allowed=ACTIONS,
    )


@dataclass(frozen=True)
class Settled:
    """After the apply: the capacity read back, whether it is live, and what the wait said."""

    applied: bool
    after: Current | None
    live: bool
    waited_s: float
    note: str
    findings: tuple[Finding, ...] = ()
    applied_at: _dt.datetime | None = None


def _matches(cur: Current, expected: dict[str, Any]) -> bool:
    both = {
        **cur.numbers,
        **{f"autoscaling_{k}": v for k, v in cur.bounds.items()},
        **{f"hpa_{k}": v for k, v in cur.bounds.items()},
    }
    return all(both.get(k) == v for k, v in expected.items() if k in both)


def settle(
    inp: Inputs,
    conns: Connections,
    prop: Proposal,
    result: ApplyResult | None,
    *,
    timeout_s: float | None = None,
    poll_s: float = POLL_S,
    progress: ProgressFactory = default_progress,
) -> Settled:
    """Wait (bounded) until the target shows the expected numbers and is live."""
    if result is None:
        return Settled(
            False, None, False, 0.0, "not applied (dry run or no approval): nothing to wait for"
        )
    applied = any(o.status is ChangeStatus.APPLIED for o in result.outcomes)
    at = _dt.datetime.now(_dt.UTC)
    failed = [o for o in result.outcomes if o.status is not ChangeStatus.APPLIED]
    finds = tuple(
        Finding(
            Severity.ERROR if o.status is ChangeStatus.FAILED else Severity.WARNING,
            f"{o.action} {o.target}: {o.status.value}",
            "scale",
            o.detail,
        )
        for o in failed
    )
    kind = KINDS[inp.kind]
    bound = WAIT_S.get(inp.kind, DEFAULT_WAIT_S) if timeout_s is None else timeout_s
    t0 = _dt.datetime.now(_dt.UTC)
    expected = dict(prop.expected) if not failed else {}

    def check() -> tuple[bool, Current, str]:
        cur = kind.read(conns, inp.target)
        done = cur.live and _matches(cur, expected)
        return done, cur, f"{cur.status}: {dict(cur.numbers)}"

    def timed_out(cur: Current, status: str) -> str:
        return (
            f"{inp.target} is not live after {bound:.0f} s ({kind.live_text}); now {status}. The "
            "change was made and keeps going without us: watch it, then run again with only "
            f"target_kind={inp.kind.value} and target={inp.target} to read it"
        )

    try:
        after = poll_until(
            check,
            timeout_s=bound,
            poll_s=poll_s,
            desc=f"waiting for {inp.target}",
            on_timeout=timed_out,
            progress=progress,
        )
        live, note = True, f"live: {kind.live_text}"
    except RunbookTimeoutError as exc:
        after, live, note = kind.read(conns, inp.target), False, str(exc)
        finds += (
            Finding(
                Severity.CRITICAL, f"{inp.target}: the new capacity is not live", "scale", note
            ),
        )
    waited = (_dt.datetime.now(_dt.UTC) - t0).total_seconds()
    if failed:
        note = f"{len(failed)} change(s) not applied (see findings); {note}"
    return Settled(applied, after, live, waited, note, finds, at)


def watch(inp: Inputs, conns: Connections, done: Settled) -> metrics.Evidence | None:
    """After an apply: watch ``watch_minutes`` (bounded), then the readings since the change."""
    if not done.applied or done.after is None or done.applied_at is None:
        print("Nothing applied: nothing to watch.")
        return None
    return metrics.watch(inp, conns, done.after, since=done.applied_at)


@dataclass(frozen=True)
class Result:
    """What ``record.json`` carries for machines (names are the runbook's contract)."""

    target_kind: str
    target: str
    before: dict[str, Any]
    after: dict[str, Any]
    applied: bool
    live: bool
    revert_plan: dict[str, Any] | None
    reverted_from: str
    throttled_before: int | None
    throttled_after: int | None
    plan_hash: str
    changes: list[dict[str, str]] = field(default_factory=list)
    _note: str = ""


def result(
    inp: Inputs,
    cur: Current,
    prop: Proposal,
    done: Settled,
    apply_result: ApplyResult | None,
    before_ev: metrics.Evidence | None = None,
    after_ev: metrics.Evidence | None = None,
) -> Result:
    """The record, and for an applied pre-warm the revert plan planned from the state after it."""
    throttled_before = metrics.throttle_total(before_ev) if before_ev is not None else None
    throttled_after = metrics.throttle_total(after_ev) if after_ev is not None else None
    before = {k: cur.numbers[k] for k in cur.numbers}
    before.update({f"autoscaler_{k}": v for k, v in cur.bounds.items()})
    after_cur = done.after or cur
    after = {k: after_cur.numbers[k] for k in after_cur.numbers}
    after.update({f"autoscaler_{k}": v for k, v in after_cur.bounds.items()})
    revert_plan = None
    if inp.revert_after_hours and done.applied and done.after is not None:
        back = _back_request(cur, prop)
        inverse_inp = replace(
            inp,
            request=back,
            revert_after_hours=0,
            max_step=max(inp.max_step, _largest_step(cur, done.after)),
        )
        inverse = KINDS[inp.kind].propose(inverse_inp, done.after).plan
        set_back = {
            k: cur.numbers[k]
            for k in prop.expected
            if k in cur.numbers and cur.numbers[k] != prop.expected[k]
        }
        set_back.update({k: v for k, v in _bounds_back(cur, prop).items()})
        revert_plan = revert.revert_record(
            inp.kind, inp.target, inverse, set_back, inp.revert_after_hours
        )
    changes = [
        {"action": o.action, "target": o.target, "status": o.status.value, "detail": o.detail}
        for o in (apply_result.outcomes if apply_result else ())
    ]
    return Result(
        inp.kind.value,
        inp.target,
        before,
        after,
        done.applied,
        done.live,
        revert_plan,
        inp.revert.bundle if inp.revert else "",
        throttled_before if inp.kind is TargetKind.DYNAMODB_TABLE else None,
        throttled_after if inp.kind is TargetKind.DYNAMODB_TABLE and done.applied else None,
        prop.plan.digest(),
        changes,
        done.note,
    )


def _bounds_back(cur: Current, prop: Proposal) -> dict[str, Any]:
    out = {}
    for k in ("min", "max"):
        for prefix in ("autoscaling_", "hpa_"):
            if prefix + k in prop.expected and cur.bounds.get(k) != prop.expected[prefix + k]:
                out[prefix + k] = cur.bounds.get(k)
    return out


def _back_request(cur: Current, prop: Proposal) -> Request:
    """The request that sets back what ``prop`` changes, from the numbers found before it."""
    n, b = cur.numbers, cur.bounds
    bounds_moved = bool(_bounds_back(cur, prop))
    if cur.kind in (TargetKind.K8S_HPA, TargetKind.ECS_AUTOSCALING):
        return Request(min_capacity=n["min"], max_capacity=n["max"])
    if cur.kind is TargetKind.EKS_NODEGROUP:
        return Request(desired=n["desired"], min_capacity=n["min"], max_capacity=n["max"])
    if cur.kind is TargetKind.DYNAMODB_TABLE:
        prov = n["billing_mode"] == dynamodb_capacity.PROVISIONED
        return Request(
            billing_mode=n["billing_mode"],
            read_capacity=n["read_capacity"] if prov else 0,
            write_capacity=n["write_capacity"] if prov else 0,
        )
    if cur.kind in (TargetKind.RDS_INSTANCE, TargetKind.ELASTICACHE_CLUSTER):
        return Request(instance_class=n["instance_class"])
    if bounds_moved:
        return Request(
            desired=n["desired"],
            min_capacity=b.get("min", UNCHANGED),
            max_capacity=b.get("max", UNCHANGED),
        )
    return Request(desired=n["desired"])


def _largest_step(a: Current, b: Current) -> int:
    """The revert moves counts back by what the pre-warm moved them (already within max_step)."""
    steps = [
        abs(int(a.numbers[k]) - int(b.numbers[k]))
        for k in a.numbers
        if isinstance(a.numbers.get(k), int) and isinstance(b.numbers.get(k), int)
    ]
    return max(steps, default=1) or 1
