"""EKS managed node groups: desired, min and max nodes in one scaling config."""

from __future__ import annotations

from opslib.aws import eks
from opslib.core.plans import Plan
from opslib.runbooks.scale.kinds.base import (
    Connections,
    Kind,
    check_step,
    new_count,
    register,
    split,
    title,
    within_scaler,
)
from opslib.runbooks.scale.model import Current, Inputs, Proposal, TargetKind

# --- EKS node group --------------------------------------------------------------------------


def _read_eks(c: Connections, target: str) -> Current:
    cluster, ng_name = split(target)
    ng = eks.read_nodegroup(eks=c.eks, cluster=cluster, nodegroup=ng_name)
    facts = {"instance types": ", ".join(ng.instance_types)} if ng.instance_types else {}
    return Current(
        TargetKind.EKS_NODEGROUP,
        target,
        ng.numbers(),
        ng.status == "ACTIVE",
        ng.status,
        {},
        facts,
        state=ng,
    )


def _propose_eks(inp: Inputs, cur: Current) -> Proposal:
    ng: eks.Nodegroup = cur.state
    want = (
        new_count(inp.request, ng.desired_size, what=cur.target)
        if inp.request.count
        else ng.desired_size
    )
    check_step("desiredSize", ng.desired_size, want, inp.max_step)
    lo, hi, notes = within_scaler(
        want,
        ng.min_size,
        ng.max_size,
        req=inp.request,
        scaler=f"node group {cur.target}",
        count_name="desired",
    )
    check_step("minSize", ng.min_size, lo, inp.max_step)
    expected = {"desired": want, "min": lo, "max": hi}
    changes = (
        (eks.plan_scaling(ng, desired=want, min_size=lo, max_size=hi),)
        if expected != ng.numbers()
        else ()
    )
    plan = Plan(
        title(cur.kind, cur.target, f"desiredSize {ng.desired_size} -> {want}"),
        changes,
        tuple(notes),
        {"max_step": inp.max_step},
    )
    costs = (
        f"{want - ng.desired_size:+d} node(s) of {', '.join(ng.instance_types) or 'the group type'}: EC2 prices are not in the price table",
    )
    return Proposal(plan, expected, costs)


register(
    Kind(
        TargetKind.EKS_NODEGROUP,
        ("eks",),
        frozenset({"desired", "delta", "min_capacity", "max_capacity"}),
        _read_eks,
        _propose_eks,
        "node group ACTIVE with the new scaling config",
    )
)
