"""Idle and wasted resources across regions, each with an estimated monthly cost, and a gated cleanup.

The seeds' checklist says "review and remove unused resources" and "verify NAT Gateway data
transfer costs"; this is that review done by the API instead of by clicking through consoles:
unattached EBS volumes, unassociated Elastic IPs, NAT gateways with little traffic, stopped
instances still paying for their volumes, snapshots older than the retention, load balancers
without requests, RDS instances with low CPU and no connections, provisioned DynamoDB tables far
below their capacity, and log groups kept forever. Each gets a monthly cost from the dated
price table (:mod:`opslib.aws.pricing`) that says which price it used.

A region or a check that fails (AccessDenied, opt-in region, unreachable endpoint) becomes an
error finding and the scan goes on: a cost review that stops at the first missing permission
finds nothing.

Only two kinds are cleaned up, and only when named in ``cleanup``: unassociated Elastic IPs are
released, unattached volumes are snapshotted and then deleted (the snapshot is the undo). Both
re-check the resource right before acting, so a volume attached since the plan is left alone.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opslib.aws.pricing import HOURS_PER_MONTH, PriceTable, price_table
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity, error_finding
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan, check_limit

#: finding kinds, in the order they are checked
KINDS = (
    "ebs-unattached",
    "eip-unassociated",
    "nat-idle",
    "ec2-stopped",
    "snapshot-old",
    "lb-idle",
    "rds-idle",
    "dynamodb-overprovisioned",
    "logs-no-retention",
)
#: the kinds a cleanup plan can act on
CLEANABLE = ("eip-unassociated", "ebs-unattached")
#: API error codes that mean "not allowed here" rather than "broken"
DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthFailure",
    "OptInRequired",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
}
GB = 1024**3


@dataclass(frozen=True)
class IdleThresholds:
    """What counts as idle; the defaults are conservative (flag only clearly unused things)."""

    lookback_days: int = 14
    nat_min_gb: float = 1.0  # NAT gateway: less than this many GB out over the lookback
    rds_max_cpu_pct: float = 5.0
    rds_max_connections: float = 1.0
    dynamodb_max_util_pct: float = 20.0
    snapshot_retention_days: int = 90


@dataclass(frozen=True)
class IdleResource:
    """One idle or wasteful resource with its estimated monthly cost and what to do about it."""

    kind: str
    region: str
    resource_id: str
    name: str
    monthly_cost: float
    evidence: str
    action: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_finding(self, currency: str = "USD") -> Finding:
        return Finding(
            Severity.WARNING,
            f"{self.kind}: {self.resource_id} ({self.region}) ~{self.monthly_cost:,.2f} {currency}/month",
            source=f"idle:{self.region}",
            evidence=self.evidence,
            next_action=self.action,
            data={"kind": self.kind, "resource_id": self.resource_id},
        )


@dataclass(frozen=True)
class NatTraffic:
    """A NAT gateway's traffic over the lookback and what its data processing costs per month."""

    region: str
    nat_gateway_id: str
    gb_out: float
    monthly_processing_cost: float


@dataclass(frozen=True)
class IdleReport:
    """Idle resources (sorted by savings, above the minimum), skipped ones, errors, the prices used."""

    resources: tuple[IdleResource, ...]
    below_minimum: tuple[IdleResource, ...]
    errors: tuple[Finding, ...]
    regions: tuple[str, ...]
    prices: PriceTable
    nat_traffic: tuple[NatTraffic, ...] = ()
    min_monthly_savings: float = 0.0

    @property
    def monthly_savings(self) -> float:
        return round(sum(r.monthly_cost for r in self.resources), 2)

    def to_frame(self):
        import pandas as pd

        rows = [
            {
                "kind": r.kind,
                "region": r.region,
                "resource_id": r.resource_id,
                "name": r.name,
                "monthly_cost": round(r.monthly_cost, 2),
                "evidence": r.evidence,
                "action": r.action,
            }
            for r in self.resources
        ]
        return pd.DataFrame(
            rows,
            columns=["kind", "region", "resource_id", "name", "monthly_cost", "evidence", "action"],
        )

    def by_kind(self):
        frame = self.to_frame()
        if not len(frame):
            return frame.assign(count=[]).loc[:, ["kind", "count", "monthly_cost"]]
        return (
            frame.groupby("kind", as_index=False)
            .agg(count=("resource_id", "size"), monthly_cost=("monthly_cost", "sum"))
            .sort_values("monthly_cost", ascending=False, kind="stable")
            .reset_index(drop=True)
        )

    def findings(self) -> list[Finding]:
        out = [r.to_finding(self.prices.currency) for r in self.resources]
        if self.below_minimum:
            out.append(
                Finding(
                    Severity.INFO,
                    f"{len(self.below_minimum)} idle resource(s) below min_monthly_savings="
                    f"{self.min_monthly_savings:g} not listed",
                    source="idle",
                    evidence=", ".join(
                        f"{r.kind}:{r.resource_id}" for r in self.below_minimum[:10]
                    ),
                )
            )
        return out + list(self.errors)


def _name(tags: Iterable[dict] | None) -> str:
    for t in tags or ():
        if t.get("Key") == "Name":
            return t.get("Value", "")
    return ""


def _paginate(client, op: str, key: str, **kw) -> list[dict]:
    out: list[dict] = []
    for page in client.get_paginator(op).paginate(**kw):
        out += page.get(key, [])
    return out


# --- the checks: each takes a region's client factory and returns IdleResources -----------------


def _ebs_unattached(region, client, prices, th, now) -> list[IdleResource]:
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
                "ebs-unattached",
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
    return out


def _eip_unassociated(region, client, prices, th, now) -> list[IdleResource]:
    addrs = client("ec2").describe_addresses().get("Addresses", [])
    rate = prices.price("eip_hour")
    out = []
    for a in addrs:
        if a.get("AssociationId") or a.get("InstanceId") or a.get("NetworkInterfaceId"):
            continue
        rid = a.get("AllocationId") or a.get("PublicIp", "")
        out.append(
            IdleResource(
                "eip-unassociated",
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
    return out


def _metrics(client, queries, th, now):
    from opslib.aws.cloudwatch import get_metrics

    if not queries:
        return None
    return get_metrics(
        queries,
        cloudwatch=client("cloudwatch"),
        start=now - _dt.timedelta(days=th.lookback_days),
        end=now,
    )


def _sum(series, qid) -> tuple[float, int]:
    if series is None or qid not in series.frame:
        return 0.0, 0
    s = series.frame[qid].dropna()
    return float(s.sum()), int(len(s))


def _max(series, qid) -> tuple[float, int]:
    if series is None or qid not in series.frame:
        return 0.0, 0
    s = series.frame[qid].dropna()
    return (float(s.max()) if len(s) else 0.0), int(len(s))


def _nat(region, client, prices, th, now, traffic: list[NatTraffic]) -> list[IdleResource]:
    from opslib.aws.cloudwatch import MetricQuery

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
                "nat-idle",
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
    return out


def _ec2_stopped(region, client, prices, th, now) -> list[IdleResource]:
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
                    "ec2-stopped",
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
    return out


def _snapshots_old(region, client, prices, th, now) -> list[IdleResource]:
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
                "snapshot-old",
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
    return out


def _lb_idle(region, client, prices, th, now) -> list[IdleResource]:
    from opslib.aws.cloudwatch import MetricQuery

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
                "lb-idle",
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
    return out


def _rds_idle(region, client, prices, th, now) -> list[IdleResource]:
    from opslib.aws.cloudwatch import MetricQuery

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
                "rds-idle",
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
    return out


def _dynamodb_overprovisioned(region, client, prices, th, now) -> list[IdleResource]:
    import math

    from opslib.aws.cloudwatch import MetricQuery

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
                "dynamodb-overprovisioned",
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
    return out


def _logs_no_retention(region, client, prices, th, now) -> list[IdleResource]:
    groups = _paginate(client("logs"), "describe_log_groups", "logGroups")
    rate = prices.price("logs_storage_gb_month")
    out = []
    for g in groups:
        if g.get("retentionInDays"):
            continue
        gb = g.get("storedBytes", 0) / GB
        out.append(
            IdleResource(
                "logs-no-retention",
                region,
                g["logGroupName"],
                "",
                gb * rate,
                f"retention: never expire; {gb:.2f} GB stored x {rate:g}/GB-month ({prices.as_of})",
                "Set a retention (e.g. 30-90 days) and export what must be kept to S3 (seed: archive old logs).",
                {"stored_gb": gb},
            )
        )
    return out


CHECKS: dict[str, Callable[..., list[IdleResource]]] = {
    "ebs-unattached": _ebs_unattached,
    "eip-unassociated": _eip_unassociated,
    "ec2-stopped": _ec2_stopped,
    "snapshot-old": _snapshots_old,
    "lb-idle": _lb_idle,
    "rds-idle": _rds_idle,
    "dynamodb-overprovisioned": _dynamodb_overprovisioned,
    "logs-no-retention": _logs_no_retention,
}


def _is_denied(exc: BaseException) -> bool:
    code = (
        getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if hasattr(exc, "response")
        else ""
    )
    return code in DENIED_CODES


def _reachable_error(exc: BaseException) -> bool:
    """True when the region answered with an API error (other checks there may still work)."""
    import botocore.exceptions

    return (
        isinstance(exc, botocore.exceptions.ClientError)
        and int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)) < 500
    )


def scan_idle(
    regions: Sequence[str],
    *,
    session,
    prices: PriceTable | None = None,
    thresholds: IdleThresholds | None = None,
    min_monthly_savings: float = 0.0,
    kinds: Sequence[str] = KINDS,
    now: _dt.datetime | None = None,
) -> IdleReport:
    """Run every check in every region; errors become findings and the scan goes on.

    ``session`` is a boto3 session (from :func:`opslib.clients.aws_session`); clients per
    region are built from it through :mod:`opslib.clients`. A region that does not answer at
    all (unreachable, not a region) is reported once and its remaining checks are skipped.
    """
    from opslib.clients import aws_client

    if min_monthly_savings < 0:
        raise BadInputError("min_monthly_savings must be >= 0.")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise BadInputError(f"Unknown idle kind(s) {unknown}; known: {', '.join(KINDS)}.")
    prices = prices or price_table()
    th = thresholds or IdleThresholds()
    now = now or _dt.datetime.now(_dt.UTC)
    found: list[IdleResource] = []
    errors: list[Finding] = []
    traffic: list[NatTraffic] = []
    for region in regions:
        cache: dict[str, Any] = {}

        def client(service: str, region: str = region, cache: dict = cache):
            if service not in cache:
                cache[service] = aws_client(service, region=region, session=session)
            return cache[service]

        for kind in kinds:
            check = (
                (lambda r, c, p, t, n: _nat(r, c, p, t, n, traffic))
                if kind == "nat-idle"
                else CHECKS[kind]
            )
            try:
                found += check(region, client, prices, th, now)
            except Exception as exc:  # noqa: BLE001 - one region/check failing is a finding; the scan goes on
                source = f"idle:{region}:{kind}"
                if _is_denied(exc):
                    errors.append(
                        error_finding(
                            source,
                            exc,
                            next_action=f"Grant the read-only permission for {kind} in {region} "
                            "(e.g. the AWS managed ReadOnlyAccess policy), or leave the region out of regions.",
                        )
                    )
                    continue
                errors.append(error_finding(source, exc))
                if not _reachable_error(exc):
                    rest = kinds[kinds.index(kind) + 1 :]
                    if rest:
                        errors.append(
                            Finding(
                                Severity.ERROR,
                                f"{region}: not reachable, {len(rest)} check(s) skipped",
                                source=f"idle:{region}",
                                evidence=", ".join(rest),
                                next_action="Check the region name and that it is enabled for the account.",
                            )
                        )
                    break
    found.sort(key=lambda r: r.monthly_cost, reverse=True)
    keep = tuple(r for r in found if r.monthly_cost >= min_monthly_savings)
    below = tuple(r for r in found if r.monthly_cost < min_monthly_savings)
    return IdleReport(
        keep,
        below,
        tuple(errors),
        tuple(regions),
        prices,
        tuple(traffic),
        float(min_monthly_savings),
    )


# --- cleanup: plan, then apply through opslib.safety.gate -----------------------------------------


def parse_cleanup(cleanup: str) -> list[str]:
    """Validate the ``cleanup`` parameter (comma-separated kinds) before anything is planned."""
    from opslib.core.plans import parse_csv

    kinds = parse_csv(cleanup)
    bad = [k for k in kinds if k not in CLEANABLE]
    if bad:
        raise BadInputError(
            f"cleanup={cleanup!r}: {', '.join(bad)} cannot be cleaned up by this runbook; "
            f"use a comma-separated subset of {', '.join(CLEANABLE)} (or leave it empty)."
        )
    return kinds


def cleanup_selection(
    report: IdleReport, kinds: Sequence[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Options and preselection of the "resources to clean up" choice in the runbook.

    Options: every resource of the report this runbook can clean up (:data:`CLEANABLE` kinds),
    most expensive first, labelled with id, kind, region and monthly cost. Preselected: those of
    ``kinds`` (the ``cleanup`` parameter), i.e. exactly what a headless plan cleans; more than
    ``max_cleanup`` of them is still refused by :func:`plan_cleanup`, so the engineer narrows
    the selection (or raises the limit) deliberately rather than getting a silent cut.
    """
    cur = report.prices.currency
    options = [
        (
            f"{r.resource_id} · {r.kind} · {r.region} · ~{r.monthly_cost:,.2f} {cur}/month",
            r.resource_id,
        )
        for r in report.resources
        if r.kind in CLEANABLE
    ]
    chosen = [r.resource_id for r in report.resources if r.kind in CLEANABLE and r.kind in kinds]
    return options, chosen


def plan_cleanup(
    report: IdleReport,
    kinds: Sequence[str],
    *,
    max_changes: int = 20,
    only_ids: Sequence[str] | None = None,
) -> Plan:
    """A read-only plan: release the unassociated EIPs / snapshot+delete the unattached volumes listed.

    Only resources in ``report.resources`` (above the minimum savings) and of ``kinds``; with
    ``only_ids`` (the engineer's final choice, see :func:`cleanup_selection`) exactly those
    resources instead, whatever their cleanable kind, because the engineer ticked them. An id
    that is not a cleanable resource of the report is refused (BadInputError). Refuses
    (BadInputError) when the plan would exceed ``max_changes`` (blast radius).
    """
    wanted: set[str] | None = None
    if only_ids is not None:
        cleanable = {r.resource_id for r in report.resources if r.kind in CLEANABLE}
        unknown = [i for i in only_ids if i not in cleanable]
        if unknown:
            raise BadInputError(
                f"{', '.join(unknown)}: not a cleanable idle resource of this scan (cleanable: "
                f"{', '.join(sorted(cleanable)) or 'none'}); choose among the scanned resources, "
                "or re-run the idle scan."
            )
        wanted = set(only_ids)
        kinds = list(kinds) + sorted(
            {r.kind for r in report.resources if r.resource_id in wanted} - set(kinds)
        )
    changes: list[Change] = []
    for r in report.resources:
        if (r.kind not in kinds) if wanted is None else (r.resource_id not in wanted):
            continue
        if r.kind == "eip-unassociated":
            changes.append(
                Change(
                    "ec2:ReleaseAddress",
                    f"{r.resource_id} ({r.details.get('public_ip', '')}, {r.region})",
                    f"release the address; saves ~{r.monthly_cost:,.2f}/month; the IP cannot be got back",
                    {
                        "region": r.region,
                        "allocation_id": r.details.get("allocation_id", ""),
                        "public_ip": r.details.get("public_ip", ""),
                    },
                )
            )
        elif r.kind == "ebs-unattached":
            changes.append(
                Change(
                    "ec2:CreateSnapshot+DeleteVolume",
                    f"{r.resource_id} ({r.region})",
                    f"snapshot {r.details.get('size_gb', '?')} GiB, then delete the volume; saves "
                    f"~{r.monthly_cost:,.2f}/month less the snapshot storage",
                    {"region": r.region, "volume_id": r.resource_id},
                )
            )
    check_limit("max_cleanup", len(changes), max_changes)
    warnings = []
    if any(c.action.startswith("ec2:ReleaseAddress") for c in changes):
        warnings.append(
            "A released Elastic IP is gone for good; check no allow-list or DNS uses it."
        )
    return Plan(
        "Clean up idle resources",
        tuple(changes),
        tuple(warnings),
        {"max_cleanup": max_changes, "kinds": ",".join(kinds)},
    )


def cleanup_executor(*, session, snapshot_wait_s: int = 600) -> Callable[[Change], ChangeOutcome]:
    """The ``execute`` for :func:`opslib.safety.gate`: performs one cleanup change, re-checking first."""
    from opslib.clients import aws_client

    def execute(change: Change) -> ChangeOutcome:
        p = change.params
        ec2 = aws_client("ec2", region=p["region"], session=session)
        if change.action == "ec2:ReleaseAddress":
            addr = ec2.describe_addresses(AllocationIds=[p["allocation_id"]])["Addresses"][0]
            if addr.get("AssociationId"):
                return ChangeOutcome(
                    change.action,
                    change.target,
                    ChangeStatus.SKIPPED,
                    f"now associated ({addr['AssociationId']}): left alone",
                )
            ec2.release_address(AllocationId=p["allocation_id"])
            return ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.APPLIED,
                "released",
                {"id": p["allocation_id"]},
            )
        if change.action == "ec2:CreateSnapshot+DeleteVolume":
            vol = ec2.describe_volumes(VolumeIds=[p["volume_id"]])["Volumes"][0]
            if vol.get("State") != "available" or vol.get("Attachments"):
                return ChangeOutcome(
                    change.action,
                    change.target,
                    ChangeStatus.SKIPPED,
                    f"state {vol.get('State')}: attached since the plan, left alone",
                )
            snap = ec2.create_snapshot(
                VolumeId=p["volume_id"],
                Description=f"opslib cost-review: before deleting {p['volume_id']}",
                TagSpecifications=[
                    {
                        "ResourceType": "snapshot",
                        "Tags": [{"Key": "opslib:cleanup-of", "Value": p["volume_id"]}],
                    }
                ],
            )
            delay = 5
            ec2.get_waiter("snapshot_completed").wait(
                SnapshotIds=[snap["SnapshotId"]],
                WaiterConfig={"Delay": delay, "MaxAttempts": max(1, snapshot_wait_s // delay)},
            )
            ec2.delete_volume(VolumeId=p["volume_id"])
            return ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.APPLIED,
                f"snapshot {snap['SnapshotId']} completed, volume deleted",
                {"id": p["volume_id"], "snapshot_id": snap["SnapshotId"]},
            )
        raise BadInputError(f"Unknown cleanup action {change.action}")

    return execute


def cleaned_ids(result) -> list[str]:
    """The resource ids an :class:`opslib.core.plans.ApplyResult` actually cleaned up (for the evidence)."""
    if result is None:
        return []
    return [o.data.get("id", o.target) for o in result.outcomes if o.status is ChangeStatus.APPLIED]


def parse_regions(regions: str, *, default: str) -> list[str]:
    """The ``regions`` parameter: comma-separated, empty = the session's region."""
    from opslib.core.plans import parse_csv, unique

    out = unique(parse_csv(regions)) or [default]
    return out


def record_cleaned(result) -> list[str]:
    """``on_applied`` for :func:`opslib.safety.gate`: records ``cleaned`` when the apply happens.

    Headless, the apply cell itself applies; in JupyterLab the click on "Approve and apply"
    comes later, and this is how its ids still reach the evidence.
    """
    from opslib import record

    ids = cleaned_ids(result)
    record("cleaned", ids)
    return ids
