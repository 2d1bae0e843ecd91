"""RDS instance classes and ElastiCache node types: vertical changes, with their downtime in
words and their cost."""

from __future__ import annotations

from typing import Any

from opslib.aws import elasticache_capacity, rds_capacity
from opslib.aws.pricing import HOURS_PER_MONTH, price_table
from opslib.core.plans import Plan
from opslib.runbooks.scale.kinds.base import (
    Connections,
    Kind,
    register,
    title,
)
from opslib.runbooks.scale.model import Current, Inputs, Proposal, TargetKind

# --- RDS instance and ElastiCache ------------------------------------------------------------


def _read_rds(c: Connections, target: str) -> Current:
    i = rds_capacity.read_instance(rds=c.rds, instance=target)
    facts: dict[str, Any] = {"multi_az": i.multi_az, "engine": i.engine}
    if i.pending_class:
        facts["pending class"] = i.pending_class
    return Current(
        TargetKind.RDS_INSTANCE,
        target,
        i.numbers(),
        i.status == "available",
        i.status,
        {},
        facts,
        state=i,
    )


def _rds_cost(cls: str, multi_az: bool) -> str:
    p = price_table()
    hour, exact = p.rds_hour(cls)
    usd = hour * HOURS_PER_MONTH * (2 if multi_az else 1)
    known = (
        "" if exact else f" (class not in the price table: priced as {p.basis('rds_default_hour')})"
    )
    return f"{cls}{' Multi-AZ' if multi_az else ''}: about ${usd:,.2f} per month{known}"


def _propose_rds(inp: Inputs, cur: Current) -> Proposal:
    i: rds_capacity.InstanceClass = cur.state
    want = inp.request.instance_class or i.instance_class
    changes = (rds_capacity.plan_class(i, instance_class=want),) if want != i.instance_class else ()
    warnings = (rds_capacity.downtime_note(i),) if changes else ()
    plan = Plan(
        title(cur.kind, cur.target, f"class {i.instance_class} -> {want}"),
        changes,
        warnings,
        {"max_step": inp.max_step},
    )
    costs = (
        f"now {_rds_cost(i.instance_class, i.multi_az)}",
        f"after {_rds_cost(want, i.multi_az)}",
    )
    return Proposal(plan, {"instance_class": want}, costs)


register(
    Kind(
        TargetKind.RDS_INSTANCE,
        ("rds", "cloudwatch"),
        frozenset({"instance_class"}),
        _read_rds,
        _propose_rds,
        "instance available on the new class",
    )
)


def _read_cache(c: Connections, target: str) -> Current:
    n = elasticache_capacity.read_cache(elasticache=c.elasticache, cache_id=target)
    facts = {"multi_az": n.multi_az, "kind": "replication group" if n.is_group else "cache cluster"}
    return Current(
        TargetKind.ELASTICACHE_CLUSTER,
        target,
        n.numbers(),
        n.status == "available",
        n.status,
        {},
        facts,
        state=n,
    )


def _propose_cache(inp: Inputs, cur: Current) -> Proposal:
    n: elasticache_capacity.CacheNodes = cur.state
    want = inp.request.instance_class or n.node_type
    changes = (
        (elasticache_capacity.plan_node_type(n, node_type=want),) if want != n.node_type else ()
    )
    warnings = (elasticache_capacity.downtime_note(n),) if changes else ()
    plan = Plan(
        title(cur.kind, cur.target, f"node type {n.node_type} -> {want}"),
        changes,
        warnings,
        {"max_step": inp.max_step},
    )
    return Proposal(
        plan, {"instance_class": want}, ("ElastiCache node prices are not in the price table",)
    )


register(
    Kind(
        TargetKind.ELASTICACHE_CLUSTER,
        ("elasticache", "cloudwatch"),
        frozenset({"instance_class"}),
        _read_cache,
        _propose_cache,
        "cache available on the new node type",
    )
)
