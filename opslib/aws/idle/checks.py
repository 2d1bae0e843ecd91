"""The idle checks, one per :class:`~opslib.aws.idle.model.IdleKind`, behind a registry.

Each check looks at one region through a :class:`CheckContext` (a cached client per service,
the price table, the thresholds, the scan's clock) and returns what it found as a
:class:`CheckResult`. A check registers itself for its kind (``@register_check(IdleKind.X)``)
and :func:`get_check` looks it up: a new kind of waste is a new function and one registration,
never another branch in the scan.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opslib.aws.cloudwatch import MetricQuery, MetricSeries, get_metrics
from opslib.aws.idle.model import GB, IdleKind, IdleResource, IdleThresholds, NatTraffic
from opslib.aws.pricing import HOURS_PER_MONTH, PriceTable
from opslib.core.errors import BadInputError

#: ``client("ec2")``: the region's boto3 client for a service, built once per scan and region
ClientFor = Callable[[str], Any]


@dataclass(frozen=True)
class CheckContext:
    """What a check may use: the region, its clients, the prices, the thresholds, the clock."""

    region: str
    client: ClientFor
    prices: PriceTable
    thresholds: IdleThresholds
    now: _dt.datetime


@dataclass(frozen=True)
class CheckResult:
    """What one check found in one region (and, for NAT gateways, their traffic)."""

    resources: tuple[IdleResource, ...] = ()
    nat_traffic: tuple[NatTraffic, ...] = ()


IdleCheck = Callable[[CheckContext], CheckResult]

_CHECKS: dict[IdleKind, IdleCheck] = {}


def register_check(kind: IdleKind) -> Callable[[IdleCheck], IdleCheck]:
    """Decorator: ``check`` finds idle resources of ``kind``; one check per kind."""

    def deco(check: IdleCheck) -> IdleCheck:
        known = _CHECKS.get(kind)
        if known is not None and known is not check:
            raise ValueError(f"idle kind {kind!r} already checked by {known.__qualname__}")
        _CHECKS[IdleKind(kind)] = check
        return check

    return deco


def get_check(kind: IdleKind | str) -> IdleCheck:
    """The check registered for ``kind``; BadInputError for a kind nobody checks."""
    try:
        return _CHECKS[IdleKind(kind)]
    except (KeyError, ValueError):
        raise BadInputError(
            f"Unknown idle kind(s) {[str(kind)]}; known: {', '.join(registered_checks())}."
        ) from None


def registered_checks() -> list[IdleKind]:
    """Every kind with a check, in the scan's order."""
    return [k for k in IdleKind if k in _CHECKS]


def _name(tags: Iterable[dict] | None) -> str:
    for t in tags or ():
        if t.get("Key") == "Name":
            return t.get("Value", "")
    return ""


def _paginate(client: Any, op: str, key: str, **kw: Any) -> list[dict]:
    out: list[dict] = []
    for page in client.get_paginator(op).paginate(**kw):
        out += page.get(key, [])
    return out


@register_check(IdleKind.EBS_UNATTACHED)
def _ebs_unattached(ctx: CheckContext) -> CheckResult:
    region, client, prices = ctx.region, ctx.client, ctx.prices
    vols = _paginate(
        client("ec2"),
        "describe_volumes",
        "Volumes",
        Filters=[{"Name": "status", "Values": ["available"]}],
    )
    out = []
    for v in vols:
        size, vtype = int(v.get("Size", 0)), v.get("VolumeType", "gp2")
        rate = prices.ebs_gb_month(vtype)
        out.append(
            IdleResource(
                IdleKind.EBS_UNATTACHED,
                region,
                v["VolumeId"],
                _name(v.get("Tags")),
                size * rate,
                f"{size} GiB {vtype}, state available (attached to nothing), created "
                f"{str(v.get('CreateTime', ''))[:10]}; {size} x {rate:g}/GB-month "
                f"({prices.as_of}, {prices.region})",
                "Snapshot, then delete (cleanup=ebs-unattached); or attach it if it is still needed.",
                {"size_gb": size, "volume_type": vtype},
            )
        )
    return CheckResult(tuple(out))


@register_check(IdleKind.EIP_UNASSOCIATED)
def _eip_unassociated(ctx: CheckContext) -> CheckResult:
    region, client, prices = ctx.region, ctx.client, ctx.prices
    addrs = client("ec2").describe_addresses().get("Addresses", [])
    rate = prices.price("eip_hour")
    out = []
    for a in addrs:
        if a.get("AssociationId") or a.get("InstanceId") or a.get("NetworkInterfaceId"):
            continue
        rid = a.get("AllocationId") or a.get("PublicIp", "")
        out.append(
            IdleResource(
                IdleKind.EIP_UNASSOCIATED,
                region,
                rid,
                _name(a.get("Tags")),
                rate * HOURS_PER_MONTH,
                f"{a.get('PublicIp', '')} associated with nothing; {rate:g}/hour x {HOURS_PER_MONTH:g} h "
                f"({prices.as_of}, {prices.region})",
                "Release it (cleanup=eip-unassociated) unless it is allow-listed somewhere.",
                {"public_ip": a.get("PublicIp", ""), "allocation_id": a.get("AllocationId", "")},
            )
        )
    return CheckResult(tuple(out))


def _metrics(
    client: ClientFor, queries: list[MetricQuery], th: IdleThresholds, now: _dt.datetime
) -> MetricSeries | None:
    if not queries:
        return None
    return get_metrics(
        queries,
        cloudwatch=client("cloudwatch"),
        start=now - _dt.timedelta(days=th.lookback_days),
        end=now,
    )


def _sum(series: MetricSeries | None, qid: str) -> tuple[float, int]:
    if series is None or qid not in series.frame:
        return 0.0, 0
    s = series.frame[qid].dropna()
    return float(s.sum()), int(len(s))


def _max(series: MetricSeries | None, qid: str) -> tuple[float, int]:
    if series is None or qid not in series.frame:
        return 0.0, 0
    s = series.frame[qid].dropna()
    return (float(s.max()) if len(s) else 0.0), int(len(s))


@register_check(IdleKind.NAT_IDLE)
def _nat_idle(ctx: CheckContext) -> CheckResult:
    region, client, prices, th, now = ctx.region, ctx.client, ctx.prices, ctx.thresholds, ctx.now
    traffic: list[NatTraffic] = []
    nats = [
        n
        for n in _paginate(client("ec2"), "describe_nat_gateways", "NatGateways")
        if n.get("State") == "available"
    ]
    queries = []
    for i, n in enumerate(nats):
        dims = {"NatGatewayId": n["NatGatewayId"]}
        queries += [
            MetricQuery(f"bytes{i}", "AWS/NATGateway", "BytesOutToDestination", dims, "Sum", 86400),
            MetricQuery(
                f"conn{i}", "AWS/NATGateway", "ActiveConnectionCount", dims, "Maximum", 86400
            ),
        ]
    series = _metrics(client, queries, th, now)
    hour, per_gb = prices.price("nat_hour"), prices.price("nat_gb")
    out = []
    for i, n in enumerate(nats):
        nbytes, points = _sum(series, f"bytes{i}")
        conns, _ = _max(series, f"conn{i}")
        gb = nbytes / GB
        monthly_gb = gb * 30 / th.lookback_days
        traffic.append(NatTraffic(region, n["NatGatewayId"], round(gb, 3), monthly_gb * per_gb))
        if gb >= th.nat_min_gb:
            continue
        seen = (
            f"{gb:.3f} GB out, max {conns:g} active connections"
            if points
            else "no BytesOutToDestination datapoints (no traffic reported)"
        )
        out.append(
            IdleResource(
                IdleKind.NAT_IDLE,
                region,
                n["NatGatewayId"],
                _name(n.get("Tags")),
                hour * HOURS_PER_MONTH + monthly_gb * per_gb,
                f"{seen} in {th.lookback_days} days (< {th.nat_min_gb:g} GB); {hour:g}/hour + "
                f"{per_gb:g}/GB ({prices.as_of}, {prices.region}); subnet {n.get('SubnetId', '')}",
                "Check the private subnets' route tables still need it; remove it or share one NAT per VPC.",
                {"gb_out": gb, "subnet": n.get("SubnetId", ""), "vpc": n.get("VpcId", "")},
            )
        )
    return CheckResult(tuple(out), tuple(traffic))


@register_check(IdleKind.EC2_STOPPED)
def _ec2_stopped(ctx: CheckContext) -> CheckResult:
    region, client, prices = ctx.region, ctx.client, ctx.prices
    ec2 = client("ec2")
    res = _paginate(
        ec2,
        "describe_instances",
        "Reservations",
        Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}],
    )
    out = []
    for r in res:
        for inst in r.get("Instances", []):
            vol_ids = [
                b["Ebs"]["VolumeId"] for b in inst.get("BlockDeviceMappings", []) if "Ebs" in b
            ]
            vols = ec2.describe_volumes(VolumeIds=vol_ids).get("Volumes", []) if vol_ids else []
            cost = sum(
                int(v.get("Size", 0)) * prices.ebs_gb_month(v.get("VolumeType", "gp2"))
                for v in vols
            )
            gb = sum(int(v.get("Size", 0)) for v in vols)
            out.append(
                IdleResource(
                    IdleKind.EC2_STOPPED,
                    region,
                    inst["InstanceId"],
                    _name(inst.get("Tags")),
                    cost,
                    f"{inst.get('InstanceType', '')} stopped ({inst.get('StateTransitionReason', '')}); "
                    f"still paying for {len(vols)} volume(s), {gb} GiB ({prices.as_of}, {prices.region})",
                    "Terminate it (after an AMI/snapshot) if nobody needs it; stopped instances still pay for EBS.",
                    {"volumes": vol_ids},
                )
            )
    return CheckResult(tuple(out))


@register_check(IdleKind.SNAPSHOT_OLD)
def _snapshots_old(ctx: CheckContext) -> CheckResult:
    region, client, prices, th, now = ctx.region, ctx.client, ctx.prices, ctx.thresholds, ctx.now
    snaps = _paginate(client("ec2"), "describe_snapshots", "Snapshots", OwnerIds=["self"])
    cutoff = now - _dt.timedelta(days=th.snapshot_retention_days)
    rate = prices.price("ebs_snapshot_gb_month")
    out = []
    for s in snaps:
        started = s.get("StartTime")
        if started is None or started >= cutoff:
            continue
        size = int(s.get("VolumeSize", 0))
        out.append(
            IdleResource(
                IdleKind.SNAPSHOT_OLD,
                region,
                s["SnapshotId"],
                _name(s.get("Tags")),
                size * rate,
                f"started {str(started)[:10]}, older than {th.snapshot_retention_days} days; {size} GiB "
                f"source volume x {rate:g}/GB-month (an upper bound: snapshots are incremental)",
                "Delete it if no AMI or restore plan needs it, or move it to the archive tier.",
                {"volume_id": s.get("VolumeId", ""), "size_gb": size},
            )
        )
    return CheckResult(tuple(out))


@register_check(IdleKind.LB_IDLE)
def _lb_idle(ctx: CheckContext) -> CheckResult:
    region, client, prices, th, now = ctx.region, ctx.client, ctx.prices, ctx.thresholds, ctx.now
    lbs = _paginate(client("elbv2"), "describe_load_balancers", "LoadBalancers")
    queries, meta = [], []
    for i, lb in enumerate(lbs):
        dim = lb["LoadBalancerArn"].split(":loadbalancer/", 1)[-1]
        lbtype = lb.get("Type", "application")
        if lbtype == "application":
            queries.append(
                MetricQuery(
                    f"req{i}",
                    "AWS/ApplicationELB",
                    "RequestCount",
                    {"LoadBalancer": dim},
                    "Sum",
                    86400,
                )
            )
        elif lbtype == "network":
            queries.append(
                MetricQuery(
                    f"req{i}", "AWS/NetworkELB", "NewFlowCount", {"LoadBalancer": dim}, "Sum", 86400
                )
            )
        else:
            continue
        meta.append((i, lb, lbtype))
    series = _metrics(client, queries, th, now)
    out = []
    for i, lb, lbtype in meta:
        total, points = _sum(series, f"req{i}")
        if total > 0:
            continue
        key = {"application": "alb_hour", "network": "nlb_hour"}[lbtype]
        rate = prices.price(key)
        out.append(
            IdleResource(
                IdleKind.LB_IDLE,
                region,
                lb["LoadBalancerName"],
                lb.get("DNSName", ""),
                rate * HOURS_PER_MONTH,
                f"{lbtype} load balancer with no {'requests' if lbtype == 'application' else 'new flows'} in "
                f"{th.lookback_days} days ({points} datapoints); {rate:g}/hour ({prices.as_of}, {prices.region})",
                "Check its DNS name is not referenced any more, then delete it.",
                {"arn": lb["LoadBalancerArn"], "type": lbtype},
            )
        )
    return CheckResult(tuple(out))


@register_check(IdleKind.RDS_IDLE)
def _rds_idle(ctx: CheckContext) -> CheckResult:
    region, client, prices, th, now = ctx.region, ctx.client, ctx.prices, ctx.thresholds, ctx.now
    dbs = [
        d
        for d in _paginate(client("rds"), "describe_db_instances", "DBInstances")
        if d.get("DBInstanceStatus") == "available"
    ]
    queries = []
    for i, d in enumerate(dbs):
        dims = {"DBInstanceIdentifier": d["DBInstanceIdentifier"]}
        queries += [
            MetricQuery(f"cpu{i}", "AWS/RDS", "CPUUtilization", dims, "Maximum", 86400),
            MetricQuery(f"conn{i}", "AWS/RDS", "DatabaseConnections", dims, "Maximum", 86400),
        ]
    series = _metrics(client, queries, th, now)
    out = []
    for i, d in enumerate(dbs):
        cpu, points = _max(series, f"cpu{i}")
        conns, _ = _max(series, f"conn{i}")
        if cpu >= th.rds_max_cpu_pct or conns >= th.rds_max_connections:
            continue
        rate, exact = prices.rds_hour(d.get("DBInstanceClass", ""))
        multi = 2 if d.get("MultiAZ") else 1
        seen = (
            f"max CPU {cpu:.1f}%, max {conns:g} connections"
            if points
            else "no CPU/connection datapoints"
        )
        out.append(
            IdleResource(
                IdleKind.RDS_IDLE,
                region,
                d["DBInstanceIdentifier"],
                d.get("Engine", ""),
                rate * multi * HOURS_PER_MONTH,
                f"{seen} in {th.lookback_days} days; {d.get('DBInstanceClass', '')}"
                f"{' Multi-AZ' if multi == 2 else ''} at {rate:g}/hour"
                f"{'' if exact else ' (class not in the price table: db.m5.large price used)'}",
                "Confirm with the owner; take a final snapshot and delete it, or stop it / downsize it.",
                {"class": d.get("DBInstanceClass", ""), "engine": d.get("Engine", "")},
            )
        )
    return CheckResult(tuple(out))


@register_check(IdleKind.DYNAMODB_OVERPROVISIONED)
def _dynamodb_overprovisioned(ctx: CheckContext) -> CheckResult:
    region, client, prices, th, now = ctx.region, ctx.client, ctx.prices, ctx.thresholds, ctx.now
    ddb = client("dynamodb")
    names = _paginate(ddb, "list_tables", "TableNames")
    tables = []
    for name in names:
        t = ddb.describe_table(TableName=name)["Table"]
        mode = (t.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        pt = t.get("ProvisionedThroughput") or {}
        if mode == "PROVISIONED" and (
            pt.get("ReadCapacityUnits", 0) or pt.get("WriteCapacityUnits", 0)
        ):
            tables.append(
                (name, int(pt.get("ReadCapacityUnits", 0)), int(pt.get("WriteCapacityUnits", 0)))
            )
    queries = []
    for i, (name, _r, _w) in enumerate(tables):
        dims = {"TableName": name}
        queries += [
            MetricQuery(f"rcu{i}", "AWS/DynamoDB", "ConsumedReadCapacityUnits", dims, "Sum", 86400),
            MetricQuery(
                f"wcu{i}", "AWS/DynamoDB", "ConsumedWriteCapacityUnits", dims, "Sum", 86400
            ),
        ]
    series = _metrics(client, queries, th, now)
    seconds = th.lookback_days * 86400
    rcu_h, wcu_h = prices.price("dynamodb_rcu_hour"), prices.price("dynamodb_wcu_hour")
    out = []
    for i, (name, r, w) in enumerate(tables):
        cr = _sum(series, f"rcu{i}")[0] / seconds
        cw = _sum(series, f"wcu{i}")[0] / seconds
        ur = cr / r * 100 if r else 0.0
        uw = cw / w * 100 if w else 0.0
        if max(ur, uw) >= th.dynamodb_max_util_pct:
            continue
        # what it would cost provisioned at 80% target utilisation of what it really uses
        need_r, need_w = max(1, math.ceil(cr / 0.8)), max(1, math.ceil(cw / 0.8))
        saving = (max(r - need_r, 0) * rcu_h + max(w - need_w, 0) * wcu_h) * HOURS_PER_MONTH
        out.append(
            IdleResource(
                IdleKind.DYNAMODB_OVERPROVISIONED,
                region,
                name,
                "",
                saving,
                f"provisioned {r} RCU / {w} WCU, consumed on average {cr:.2f} / {cw:.2f} "
                f"({ur:.1f}% / {uw:.1f}%) over {th.lookback_days} days; {rcu_h:g}/RCU-h, {wcu_h:g}/WCU-h",
                "Switch to on-demand (PAY_PER_REQUEST) or lower the provisioned capacity / enable auto scaling.",
                {"rcu": r, "wcu": w, "consumed_rcu": cr, "consumed_wcu": cw},
            )
        )
    return CheckResult(tuple(out))


@register_check(IdleKind.LOGS_NO_RETENTION)
def _logs_no_retention(ctx: CheckContext) -> CheckResult:
    region, client, prices = ctx.region, ctx.client, ctx.prices
    groups = _paginate(client("logs"), "describe_log_groups", "logGroups")
    rate = prices.price("logs_storage_gb_month")
    out = []
    for g in groups:
        if g.get("retentionInDays"):
            continue
        gb = g.get("storedBytes", 0) / GB
        out.append(
            IdleResource(
                IdleKind.LOGS_NO_RETENTION,
                region,
                g["logGroupName"],
                "",
                gb * rate,
                f"retention: never expire; {gb:.2f} GB stored x {rate:g}/GB-month ({prices.as_of})",
                "Set a retention (e.g. 30-90 days) and export what must be kept to S3 (archive old logs).",
                {"stored_gb": gb},
            )
        )
    return CheckResult(tuple(out))
