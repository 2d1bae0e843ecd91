"""The cost reduction checklist, shown item by item only where this run's data supports it.

The cost optimization procedure lists strategies (Graviton, Fargate Spot, DynamoDB on-demand,
S3 lifecycle, reserved capacity) and a checklist (Fargate Spot for non-production, archive old
CloudWatch logs, S3 Intelligent-Tiering, remove unused resources, right-size containers); the
weekly cost review adds "verify NAT Gateway data transfer costs" and VPC endpoints. A checklist
pasted into every report is noise; each item here appears only when the spend, the CUR or the
idle scan shows the thing it is about, with that evidence beside it, so the reader can judge it
in one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from opslib.aws.cost import Anomaly
    from opslib.aws.cost_model import CostData
    from opslib.aws.cur import CurReport
    from opslib.aws.idle import IdleReport

#: share of the period's spend above which a service is worth a recommendation
MIN_SHARE_PCT = 5.0
#: monthly NAT data processing above which VPC endpoints are worth checking
NAT_PROCESSING_MONTHLY = 50.0
#: a service whose daily cost varies less than this (coefficient of variation) is "predictable"
STEADY_CV = 0.10

_GRAVITON = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*\.", re.IGNORECASE)  # m6g., c7gn., r6gd. ...


@dataclass(frozen=True)
class Recommendation:
    """One checklist item with the evidence from this run and the estimated saving (0 = unknown)."""

    item: str  # the checklist's wording
    evidence: str
    action: str
    monthly_savings: float = 0.0
    source: str = ""  # which data supported it: spend, cur, idle


def recommendations_frame(recs: Iterable[Recommendation]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "item": r.item,
                "evidence": r.evidence,
                "action": r.action,
                "est_monthly_savings": round(r.monthly_savings, 2),
                "source": r.source,
            }
            for r in recs
        ],
        columns=["item", "evidence", "action", "est_monthly_savings", "source"],
    )


def _service_costs(spend: CostData | None) -> dict[str, float]:
    if spend is None or spend.query.group_by != "SERVICE":
        return {}
    return {r.name: float(r.cost) for r in spend.by_group().itertuples()}


def _find(costs: dict[str, float], *needles: str) -> tuple[str, float]:
    for name, cost in costs.items():
        low = name.lower()
        if any(n in low for n in needles):
            return name, cost
    return "", 0.0


def recommend(
    *,
    spend: CostData | None = None,
    cur: CurReport | None = None,
    idle: IdleReport | None = None,
    anomalies: Iterable[Anomaly] = (),
) -> list[Recommendation]:
    """Checklist items supported by this run's data; an item without evidence is left out."""
    recs: list[Recommendation] = []
    costs = _service_costs(spend)
    total = sum(costs.values()) or (spend.total if spend is not None else 0.0)
    days = spend.query.days if spend is not None else 30
    per_month = 30.0 / max(days, 1)
    cur_name = spend.currency if spend is not None else "USD"
    kinds: dict[str, list[Any]] = {}
    for r in getattr(idle, "resources", ()):
        kinds.setdefault(r.kind, []).append(r)

    # "Review and remove unused resources"
    if kinds:
        n = sum(len(v) for v in kinds.values())
        saving = sum(r.monthly_cost for v in kinds.values() for r in v)
        recs.append(
            Recommendation(
                "Review and remove unused resources",
                f"{n} idle resource(s): " + ", ".join(f"{k} x{len(v)}" for k, v in kinds.items()),
                "Review the idle table; clean up EIPs/volumes with cleanup=..., the rest with their owners.",
                saving,
                "idle",
            )
        )

    # "High NAT Gateway Costs": VPC endpoints when NAT data processing is material
    nat_cost = float(getattr(cur, "nat_cost", 0.0) or 0.0) * per_month
    nat_traffic = sum(t.monthly_processing_cost for t in getattr(idle, "nat_traffic", ()))
    if nat_cost >= NAT_PROCESSING_MONTHLY or nat_traffic >= NAT_PROCESSING_MONTHLY:
        ev = []
        if nat_cost:
            ev.append(f"NAT gateway usage in the CUR ~{nat_cost:,.0f} {cur_name}/month")
        if nat_traffic:
            ev.append(f"NAT data processing from BytesOutToDestination ~{nat_traffic:,.0f}/month")
        recs.append(
            Recommendation(
                "Verify NAT Gateway data transfer costs; use VPC endpoints",
                "; ".join(ev),
                "Find the top talkers (VPC Flow Logs: stats sum(bytes) by srcAddr, dstAddr); add gateway "
                "endpoints for S3/DynamoDB and interface endpoints for other AWS APIs.",
                0.0,
                "cur" if nat_cost else "idle",
            )
        )

    # "Archive old CloudWatch logs to S3"
    logs = kinds.get("logs-no-retention", [])
    below_logs = [r for r in getattr(idle, "below_minimum", ()) if r.kind == "logs-no-retention"]
    cw_name, cw_cost = _find(costs, "cloudwatch")
    if logs or below_logs or (total and cw_cost / total * 100 >= MIN_SHARE_PCT):
        ev = []
        if logs or below_logs:
            ev.append(f"{len(logs) + len(below_logs)} log group(s) never expire")
        if cw_cost:
            ev.append(
                f"{cw_name} {cw_cost:,.2f} {cur_name} ({cw_cost / total * 100:.1f}% of spend)"
            )
        recs.append(
            Recommendation(
                "Archive old CloudWatch logs to S3",
                "; ".join(ev),
                "Set retention on every log group; export what compliance must keep to S3 (Glacier tiers).",
                sum(r.monthly_cost for r in logs),
                "idle" if logs or below_logs else "spend",
            )
        )

    # "Enable S3 Intelligent-Tiering" / "S3 Lifecycle Policies"
    s3_name, s3_cost = _find(costs, "simple storage service", "amazons3")
    s3_spike = [
        a for a in anomalies if "storage service" in a.group.lower() or a.group == "AmazonS3"
    ]
    if s3_cost and (s3_cost / total * 100 >= MIN_SHARE_PCT or s3_spike):
        ev = f"{s3_name} {s3_cost:,.2f} {cur_name} ({s3_cost / total * 100:.1f}% of spend)"
        if s3_spike:
            ev += f"; above its baseline on {len(s3_spike)} day(s)"
        recs.append(
            Recommendation(
                "Enable S3 Intelligent-Tiering and lifecycle policies",
                ev,
                "Find the buckets behind the cost (CUR top resources); add lifecycle rules to archive or "
                "expire old objects and Intelligent-Tiering for unknown access patterns.",
                0.0,
                "spend",
            )
        )

    # "Graviton2: 20% cost savings on compute"
    inst = getattr(cur, "instance_types", None)
    if inst is not None and len(inst):
        x86 = inst[~inst["instance_type"].str.match(_GRAVITON)]
        x86_cost = float(x86["cost"].sum())
        if x86_cost > 0:
            recs.append(
                Recommendation(
                    "Graviton2: ~20% cost savings on compute",
                    f"x86 instance usage {x86_cost:,.2f} {cur_name} over the period "
                    f"({', '.join(x86['instance_type'].head(5))})",
                    "Move compatible workloads to the Graviton equivalent (m5 -> m7g, c5 -> c7g, t3 -> t4g).",
                    x86_cost * per_month * 0.20,
                    "cur",
                )
            )
    else:
        ec2_name, ec2_cost = _find(costs, "elastic compute cloud")
        if total and ec2_cost / total * 100 >= MIN_SHARE_PCT:
            recs.append(
                Recommendation(
                    "Graviton2: ~20% cost savings on compute",
                    f"{ec2_name} {ec2_cost:,.2f} {cur_name} ({ec2_cost / total * 100:.1f}% of spend); "
                    "instance types unknown without the CUR",
                    "Run with cur_path to see which instance types are x86; move compatible ones to Graviton.",
                    0.0,
                    "spend",
                )
            )

    # "Enable Fargate Spot for non-production"
    ecs_name, ecs_cost = _find(costs, "elastic container service")
    if total and ecs_cost / total * 100 >= MIN_SHARE_PCT:
        recs.append(
            Recommendation(
                "Enable Fargate Spot for non-production (up to 70% savings)",
                f"{ecs_name} {ecs_cost:,.2f} {cur_name} ({ecs_cost / total * 100:.1f}% of spend)",
                "Use a FARGATE_SPOT capacity provider for staging/dev services (TAG:Environment shows the split).",
                0.0,
                "spend",
            )
        )

    # "DynamoDB On-Demand: pay only for what you use"
    ddb = kinds.get("dynamodb-overprovisioned", [])
    if ddb:
        recs.append(
            Recommendation(
                "DynamoDB On-Demand for spiky or low-traffic tables",
                f"{len(ddb)} provisioned table(s) under 20% utilisation: "
                + ", ".join(r.resource_id for r in ddb[:5]),
                "Switch them to PAY_PER_REQUEST, or lower capacity and enable auto scaling.",
                sum(r.monthly_cost for r in ddb),
                "idle",
            )
        )

    # "Reserved Capacity: for predictable workloads"
    if spend is not None and spend.query.granularity == "DAILY" and costs:
        daily = spend.daily()
        steady = []
        for name in daily.columns:
            s = daily[name]
            if (
                s.mean() > 0
                and total
                and s.sum() / total * 100 >= MIN_SHARE_PCT
                and s.std() / s.mean() < STEADY_CV
            ):
                steady.append((name, float(s.sum()), float(s.std() / s.mean())))
        if steady:
            recs.append(
                Recommendation(
                    "Reserved capacity / Savings Plans for predictable workloads",
                    "; ".join(
                        f"{n}: {c:,.0f} {cur_name}, daily variation {cv * 100:.0f}%"
                        for n, c, cv in steady[:4]
                    ),
                    "Size a Compute Savings Plan / reservations to the steady baseline (Cost Explorer recommendations).",
                    0.0,
                    "spend",
                )
            )
    return sorted(recs, key=lambda r: r.monthly_savings, reverse=True)
