"""ElastiCache node type changes (vertical upscale), for a replication group or a lone cluster.

The high-latency procedure upscales Redis when evictions are high: ``ModifyReplicationGroup
--cache-node-type ... --apply-immediately`` for a replication group (``ModifyCacheCluster`` for
a cluster outside one). Without Multi-AZ with automatic failover the change interrupts the
cache; the plan says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus

__all__ = [
    "MODIFY_CLUSTER_ACTION",
    "MODIFY_GROUP_ACTION",
    "CacheNodes",
    "downtime_note",
    "modify_node_type",
    "plan_node_type",
    "read_cache",
]

MODIFY_GROUP_ACTION = "elasticache:ModifyReplicationGroup CacheNodeType"
MODIFY_CLUSTER_ACTION = "elasticache:ModifyCacheCluster CacheNodeType"


@dataclass(frozen=True)
class CacheNodes:
    """A replication group (or lone cluster) and its node type."""

    id: str
    is_group: bool
    node_type: str
    multi_az: bool
    status: str
    member_clusters: tuple[str, ...]  # the CacheClusterId dimensions of its metrics

    def numbers(self) -> dict[str, object]:
        return {"instance_class": self.node_type}


def read_cache(*, elasticache, cache_id: str) -> CacheNodes:
    """The replication group ``cache_id``, else the cache cluster; NotFoundError if neither."""
    try:
        g = elasticache.describe_replication_groups(ReplicationGroupId=cache_id)[
            "ReplicationGroups"
        ][0]
        return CacheNodes(
            id=cache_id,
            is_group=True,
            node_type=str(g.get("CacheNodeType", "")),
            multi_az=str(g.get("MultiAZ", "")).lower() == "enabled"
            or str(g.get("AutomaticFailover", "")).lower() == "enabled",
            status=str(g.get("Status", "")),
            member_clusters=tuple(g.get("MemberClusters") or ()),
        )
    except ClientError as exc:
        if aws_error_kind(exc) is not AwsErrorKind.NOT_FOUND:
            raise translate_aws_error(
                exc, f"elasticache:DescribeReplicationGroups {cache_id}"
            ) from exc
    try:
        c = elasticache.describe_cache_clusters(CacheClusterId=cache_id)["CacheClusters"][0]
    except ClientError as exc:
        raise translate_aws_error(exc, f"elasticache:DescribeCacheClusters {cache_id}") from exc
    return CacheNodes(
        id=cache_id,
        is_group=False,
        node_type=str(c.get("CacheNodeType", "")),
        multi_az=False,
        status=str(c.get("CacheClusterStatus", "")),
        member_clusters=(cache_id,),
    )


def downtime_note(cache: CacheNodes) -> str:
    if cache.multi_az:
        return (
            f"{cache.id} has Multi-AZ/automatic failover: nodes are replaced one at a time with a "
            "failover (seconds of errors on writes; clients must reconnect)"
        )
    return (
        f"DOWNTIME: {cache.id} has no automatic failover: the cache is unavailable while its "
        "nodes are replaced, and its contents may be lost (a cold cache: expect more load on "
        "the database)"
    )


def plan_node_type(cache: CacheNodes, *, node_type: str) -> Change:
    """ModifyReplicationGroup (or ModifyCacheCluster) with the new node type (read only)."""
    return Change(
        action=MODIFY_GROUP_ACTION if cache.is_group else MODIFY_CLUSTER_ACTION,
        target=cache.id,
        effect=f"node type {cache.node_type} -> {node_type} (ApplyImmediately)",
        params={"id": cache.id, "from": cache.numbers(), "node_type": node_type},
    )


@executors.register(MODIFY_GROUP_ACTION, MODIFY_CLUSTER_ACTION)
def modify_node_type(change: Change, *, elasticache) -> ChangeOutcome:
    """Apply one planned node type change, only if the type is still what the plan saw."""
    p = change.params
    now = read_cache(elasticache=elasticache, cache_id=p["id"])
    if now.numbers() != dict(p["from"]):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"the node type changed since the plan ({dict(p['from'])} -> {now.numbers()}); plan again",
        )
    try:
        if change.action == MODIFY_GROUP_ACTION:
            elasticache.modify_replication_group(
                ReplicationGroupId=p["id"], CacheNodeType=p["node_type"], ApplyImmediately=True
            )
        else:
            elasticache.modify_cache_cluster(
                CacheClusterId=p["id"], CacheNodeType=p["node_type"], ApplyImmediately=True
            )
    except ClientError as exc:
        raise translate_aws_error(exc, f"{change.action.split()[0]} {p['id']}") from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        change.effect,
        {"instance_class": p["node_type"]},
    )
