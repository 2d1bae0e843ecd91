"""EKS managed node groups: the scaling config (min, max, desired nodes) and its update.

The scaling procedure changes a node group's size with ``eks update-nodegroup-config
--scaling-config minSize=..,maxSize=..,desiredSize=..``; the cluster autoscaler then works
within those bounds. The update is asynchronous: the node group goes ``UPDATING`` and back to
``ACTIVE``, which is what the runbook waits for.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from opslib.clients import translate_aws_error
from opslib.core import executors
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus

__all__ = ["UPDATE_ACTION", "Nodegroup", "plan_scaling", "read_nodegroup", "update_scaling"]

UPDATE_ACTION = "eks:UpdateNodegroupConfig"


@dataclass(frozen=True)
class Nodegroup:
    """A managed node group's scaling config and state."""

    cluster: str
    nodegroup: str
    min_size: int
    max_size: int
    desired_size: int
    status: str
    instance_types: tuple[str, ...]

    @property
    def target(self) -> str:
        return f"{self.cluster}/{self.nodegroup}"

    def numbers(self) -> dict[str, int]:
        return {"desired": self.desired_size, "min": self.min_size, "max": self.max_size}


def read_nodegroup(*, eks, cluster: str, nodegroup: str) -> Nodegroup:
    """The node group; NotFoundError (exit 2) when the cluster or node group does not exist."""
    try:
        ng = eks.describe_nodegroup(clusterName=cluster, nodegroupName=nodegroup)["nodegroup"]
    except ClientError as exc:
        raise translate_aws_error(exc, f"eks:DescribeNodegroup {cluster}/{nodegroup}") from exc
    sc = ng.get("scalingConfig") or {}
    return Nodegroup(
        cluster=cluster,
        nodegroup=nodegroup,
        min_size=int(sc.get("minSize", 0)),
        max_size=int(sc.get("maxSize", 0)),
        desired_size=int(sc.get("desiredSize", 0)),
        status=str(ng.get("status", "")),
        instance_types=tuple(ng.get("instanceTypes") or ()),
    )


def plan_scaling(ng: Nodegroup, *, desired: int, min_size: int, max_size: int) -> Change:
    """The UpdateNodegroupConfig call for the new scaling config (read only)."""
    return Change(
        action=UPDATE_ACTION,
        target=ng.target,
        effect=(
            f"desiredSize {ng.desired_size} -> {desired}, minSize {ng.min_size} -> {min_size}, "
            f"maxSize {ng.max_size} -> {max_size}"
        ),
        params={
            "cluster": ng.cluster,
            "nodegroup": ng.nodegroup,
            "from": ng.numbers(),
            "desired": int(desired),
            "min": int(min_size),
            "max": int(max_size),
        },
    )


@executors.register(UPDATE_ACTION)
def update_scaling(change: Change, *, eks) -> ChangeOutcome:
    """Apply one planned scaling config, only if it is still what the plan saw."""
    p = change.params
    now = read_nodegroup(eks=eks, cluster=p["cluster"], nodegroup=p["nodegroup"])
    if now.numbers() != dict(p["from"]):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"the scaling config changed since the plan ({dict(p['from'])} -> {now.numbers()}); "
            "plan again",
        )
    try:
        resp = eks.update_nodegroup_config(
            clusterName=p["cluster"],
            nodegroupName=p["nodegroup"],
            scalingConfig={
                "minSize": int(p["min"]),
                "maxSize": int(p["max"]),
                "desiredSize": int(p["desired"]),
            },
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"{UPDATE_ACTION} {change.target}") from exc
    update_id = (resp.get("update") or {}).get("id", "")
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        change.effect + (f" (update {update_id})" if update_id else ""),
        {"desired": int(p["desired"]), "min": int(p["min"]), "max": int(p["max"])},
    )
