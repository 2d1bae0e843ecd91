"""Kubernetes targets: a deployment's replicas (inside its HPA's bounds) and the HPA's min/max."""

from __future__ import annotations

from typing import Any

from opslib.core.errors import BadInputError
from opslib.core.plans import Change, Plan
from opslib.k8s import hpa, rollout, workloads
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
from opslib.runbooks.scale.model import Current, Inputs, Proposal, TargetKind

# --- Kubernetes deployment and HPA -----------------------------------------------------------


def _read_k8s_deployment(c: Connections, target: str) -> Current:
    ns, name = split(target)
    d = rollout.read_deployment(api=c.api, namespace=ns, name=name)
    h = hpa.for_deployment(api=c.api, namespace=ns, deployment=name)
    bounds = {"min": h.min_replicas, "max": h.max_replicas} if h else {}
    facts: dict[str, Any] = {"hpa": h.target} if h else {}
    if h and h.cpu_pct is not None:
        facts["hpa cpu %"] = h.cpu_pct
    return Current(
        TargetKind.K8S_DEPLOYMENT,
        target,
        {"desired": d.replicas, "ready": d.ready},
        d.ready == d.replicas,
        "ready" if d.ready == d.replicas else f"{d.ready}/{d.replicas} ready",
        bounds,
        facts,
        state=h,
    )


def _propose_k8s_deployment(inp: Inputs, cur: Current) -> Proposal:
    ns, name = split(cur.target)
    old = int(cur.numbers["desired"])
    want = new_count(inp.request, old, what=cur.target) if inp.request.count else old
    check_step("replicas", old, want, inp.max_step)
    changes: list[Change] = []
    warnings: list[str] = []
    expected: dict[str, Any] = {"desired": want, "ready": want}
    h: hpa.Hpa | None = cur.state
    if h is not None:
        lo, hi, notes = within_scaler(
            want,
            h.min_replicas,
            h.max_replicas,
            req=inp.request,
            scaler=f"HPA {h.target}",
            count_name="desired",
        )
        warnings += notes
        if (lo, hi) != (h.min_replicas, h.max_replicas):
            changes.append(hpa.plan_bounds(h, min_replicas=lo, max_replicas=hi))
            expected.update({"hpa_min": lo, "hpa_max": hi})
    elif inp.request.bounds:
        raise BadInputError(
            f"min_capacity/max_capacity: {cur.target} has no HPA; leave them at -1 (or create an HPA first)"
        )
    if want != old:
        changes.append(
            Change(
                workloads.SCALE_ACTION,
                cur.target,
                f"replicas {old} -> {want}",
                {"namespace": ns, "name": name, "from": old, "replicas": want},
            )
        )
    plan = Plan(
        title(cur.kind, cur.target, f"replicas {old} -> {want}"),
        tuple(changes),
        tuple(warnings),
        {"max_step": inp.max_step},
    )
    return Proposal(
        plan,
        expected,
        ("pods use the cluster's existing nodes: no new cost unless the nodes scale",),
    )


register(
    Kind(
        TargetKind.K8S_DEPLOYMENT,
        ("api",),
        frozenset({"desired", "delta", "min_capacity", "max_capacity"}),
        _read_k8s_deployment,
        _propose_k8s_deployment,
        "readyReplicas == replicas",
    )
)


def _read_k8s_hpa(c: Connections, target: str) -> Current:
    ns, name = split(target)
    h = hpa.read_hpa(api=c.api, namespace=ns, name=name)
    facts: dict[str, Any] = {
        "scales": h.scale_target,
        "current replicas": h.current_replicas,
        "desired replicas": h.desired_replicas,
    }
    for k, v in (
        ("cpu %", h.cpu_pct),
        ("cpu target %", h.cpu_target_pct),
        ("memory %", h.memory_pct),
    ):
        if v is not None:
            facts[k] = v
    return Current(TargetKind.K8S_HPA, target, h.numbers(), True, "ok", {}, facts, state=h)


def _propose_k8s_hpa(inp: Inputs, cur: Current) -> Proposal:
    h: hpa.Hpa = cur.state
    lo, hi = new_bounds(inp.request, h.min_replicas, h.max_replicas)
    check_step("minReplicas", h.min_replicas, lo, inp.max_step)
    warnings = []
    if h.current_replicas < lo:
        warnings.append(
            f"{h.scale_target} runs {h.current_replicas}: the HPA raises it to {lo} at its next sync"
        )
    if h.current_replicas > hi:
        warnings.append(f"{h.scale_target} runs {h.current_replicas}: the HPA scales it in to {hi}")
    changes = (
        (hpa.plan_bounds(h, min_replicas=lo, max_replicas=hi),)
        if (lo, hi) != (h.min_replicas, h.max_replicas)
        else ()
    )
    plan = Plan(
        title(cur.kind, cur.target, f"min {h.min_replicas} -> {lo}, max {h.max_replicas} -> {hi}"),
        changes,
        tuple(warnings),
        {"max_step": inp.max_step},
    )
    return Proposal(plan, {"min": lo, "max": hi})


register(
    Kind(
        TargetKind.K8S_HPA,
        ("api",),
        frozenset({"min_capacity", "max_capacity"}),
        _read_k8s_hpa,
        _propose_k8s_hpa,
        "the HPA shows the new min/max",
    )
)
