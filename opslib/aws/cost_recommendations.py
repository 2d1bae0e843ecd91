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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opslib.aws.cur import GRAVITON_INSTANCE

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


#: the discounts the cost optimization procedure states
GRAVITON_DISCOUNT = 0.20  # "Graviton2: 20% cost savings on compute"
FARGATE_SPOT_DISCOUNT = 0.70  # "Fargate Spot: up to 70% savings for non-critical workloads"
#: Environment tag values that are production (Fargate Spot is for non-production only)
PRODUCTION_ENVIRONMENTS = ("prod", "production", "prd", "live")
NOT_ESTIMATED = "not estimated"

GRAVITON_ITEM = "Graviton2: ~20% cost savings on compute"
FARGATE_SPOT_ITEM = "Enable Fargate Spot for non-production (up to 70% savings)"


@dataclass(frozen=True)
class Recommendation:
    """One checklist item with the evidence from this run and its estimated monthly saving.

    ``monthly_savings`` is None when this run's data cannot estimate it (said "not estimated",
    never shown as a saving of 0); ``savings_basis`` says how it was estimated, or what is missing.
    """

    item: str  # the checklist's wording
    evidence: str
    action: str
    monthly_savings: float | None = None
    source: str = ""  # which data supported it: spend, cur, idle
    savings_basis: str = ""


@dataclass(frozen=True)
class SavingsEstimate:
    """The estimate behind a checklist item: a monthly saving, or None (not estimated) and why."""

    item: str
    monthly_savings: float | None
    basis: str
    period_cost: float | None = None  # the eligible cost over the period (None: unknown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "monthly_savings": None
            if self.monthly_savings is None
            else round(self.monthly_savings, 2),
            "basis": self.basis,
        }


def savings_text(value: float | None) -> str | float:
    return NOT_ESTIMATED if value is None else round(value, 2)


def recommendations_frame(recs: Iterable[Recommendation]) -> pd.DataFrame:
    """One row per item; ``est_monthly_savings`` is "not estimated" where the data cannot say."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "item": r.item,
                "evidence": r.evidence,
                "action": r.action,
                "est_monthly_savings": savings_text(r.monthly_savings),
                "source": r.source,
                "savings_basis": r.savings_basis,
            }
            for r in recs
        ],
        columns=["item", "evidence", "action", "est_monthly_savings", "source", "savings_basis"],
    )


def _per_month(spend: CostData | None) -> tuple[float, int]:
    days = spend.query.days if spend is not None else 30
    return 30.0 / max(days, 1), days


def _compute(cur: CurReport | None) -> pd.DataFrame | None:
    frame = getattr(cur, "compute", None)
    return frame if frame is not None else None


def graviton_estimate(cur: CurReport | None, spend: CostData | None = None) -> SavingsEstimate:
    """20% of the x86 EC2 instance and x86 on-demand Fargate cost, per 30-day month.

    From the CUR's compute breakdown (:func:`opslib.aws.cur.compute_costs`); from its instance
    types alone when that is all the report has; None (not estimated) without a CUR: Cost
    Explorer's SERVICE totals say nothing about architectures.
    """
    per_month, days = _per_month(spend)
    unit = spend.currency if spend is not None else "USD"
    compute = _compute(cur)
    if compute is not None:
        x86 = compute[(compute["arch"] == "x86_64") & compute["kind"].isin(["ec2", "fargate"])]
        ec2 = float(x86[x86["kind"] == "ec2"]["cost"].sum())
        fargate = float(x86[x86["kind"] == "fargate"]["cost"].sum())
        base = ec2 + fargate
        types = ", ".join(dict.fromkeys(x86[x86["kind"] == "ec2"]["instance_type"]).keys())
        basis = (
            f"CUR: x86 EC2 instances {ec2:,.2f} {unit}"
            + (f" ({types})" if types else "")
            + f" + x86 on-demand Fargate {fargate:,.2f} {unit} over {days} day(s), "
            f"x 30/{days} x {GRAVITON_DISCOUNT:.0%}"
        )
        return SavingsEstimate(GRAVITON_ITEM, base * per_month * GRAVITON_DISCOUNT, basis, base)
    inst = getattr(cur, "instance_types", None)
    if inst is not None and len(inst):
        x86i = inst[~inst["instance_type"].astype(str).str.match(GRAVITON_INSTANCE)]
        base = float(x86i["cost"].sum())
        basis = (
            f"CUR: x86 instance usage {base:,.2f} {unit} over {days} day(s) "
            f"({', '.join(x86i['instance_type'].head(5))}), x 30/{days} x {GRAVITON_DISCOUNT:.0%}"
        )
        return SavingsEstimate(GRAVITON_ITEM, base * per_month * GRAVITON_DISCOUNT, basis, base)
    return SavingsEstimate(
        GRAVITON_ITEM,
        None,
        f"{NOT_ESTIMATED}: instance types and Fargate architectures are in the CUR only; "
        "run with cur_path",
    )


def fargate_spot_estimate(cur: CurReport | None, spend: CostData | None = None) -> SavingsEstimate:
    """Up to 70% of the on-demand x86 Fargate cost of non-production, per 30-day month.

    Non-production: an ``Environment`` tag that is not one of :data:`PRODUCTION_ENVIRONMENTS`;
    production and untagged Fargate are left out (and said), as is ARM Fargate (Spot runs
    x86 only). An upper bound: the Spot discount varies. None (not estimated) without a CUR.
    """
    per_month, days = _per_month(spend)
    unit = spend.currency if spend is not None else "USD"
    compute = _compute(cur)
    if compute is None:
        return SavingsEstimate(
            FARGATE_SPOT_ITEM,
            None,
            f"{NOT_ESTIMATED}: Fargate usage by environment is in the CUR only; run with cur_path",
        )
    fg = compute[compute["kind"] == "fargate"]
    x86 = fg[fg["arch"] == "x86_64"]
    env = x86["environment"].fillna("").astype(str)
    prod_mask = env.str.lower().isin(PRODUCTION_ENVIRONMENTS)
    untagged = float(x86[env == ""]["cost"].sum())
    prod = float(x86[prod_mask]["cost"].sum())
    nonprod_rows = x86[(env != "") & ~prod_mask]
    nonprod = float(nonprod_rows["cost"].sum())
    spot = float(compute[compute["kind"] == "fargate-spot"]["cost"].sum())
    arm = float(fg[fg["arch"] == "arm64"]["cost"].sum())
    envs = ", ".join(sorted(set(nonprod_rows["environment"]))) or "none"
    basis = (
        f"CUR: on-demand x86 Fargate of non-production ({envs}) {nonprod:,.2f} {unit} over "
        f"{days} day(s), x 30/{days} x up to {FARGATE_SPOT_DISCOUNT:.0%}; not counted: "
        f"production {prod:,.2f}, untagged {untagged:,.2f}, ARM {arm:,.2f} (Spot is x86 only), "
        f"already on Spot {spot:,.2f}"
    )
    return SavingsEstimate(
        FARGATE_SPOT_ITEM, nonprod * per_month * FARGATE_SPOT_DISCOUNT, basis, nonprod
    )


def savings_estimates(
    cur: CurReport | None, spend: CostData | None = None
) -> list[SavingsEstimate]:
    """The Graviton and Fargate Spot estimates of this run (recorded whatever the checklist shows)."""
    return [graviton_estimate(cur, spend), fargate_spot_estimate(cur, spend)]


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
    per_month, _days = _per_month(spend)
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
                "idle scan: the monthly cost of each idle resource at opslib's dated price table",
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
                None,
                "cur" if nat_cost else "idle",
                f"{NOT_ESTIMATED}: what VPC endpoints save depends on which traffic goes to AWS APIs",
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
                sum(r.monthly_cost for r in logs) if logs else None,
                "idle" if logs or below_logs else "spend",
                "idle scan: storage of the log groups without retention"
                if logs
                else f"{NOT_ESTIMATED}: depends on how much of the logs compliance must keep",
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
                None,
                "spend",
                f"{NOT_ESTIMATED}: depends on the buckets' access patterns and object ages",
            )
        )

    # "Graviton2: 20% cost savings on compute": x86 EC2 and Fargate from the CUR, x 20%
    graviton = graviton_estimate(cur, spend)
    ec2_name, ec2_cost = _find(costs, "elastic compute cloud")
    if graviton.monthly_savings:
        recs.append(
            Recommendation(
                GRAVITON_ITEM,
                f"x86 compute {graviton.period_cost:,.2f} {cur_name} over the period",
                "Move compatible workloads to the Graviton equivalent (m5 -> m7g, c5 -> c7g, t3 -> t4g; "
                "Fargate: runtimePlatform cpuArchitecture ARM64).",
                graviton.monthly_savings,
                "cur",
                graviton.basis,
            )
        )
    elif graviton.monthly_savings is None and total and ec2_cost / total * 100 >= MIN_SHARE_PCT:
        recs.append(
            Recommendation(
                GRAVITON_ITEM,
                f"{ec2_name} {ec2_cost:,.2f} {cur_name} ({ec2_cost / total * 100:.1f}% of spend); "
                "instance types unknown without the CUR",
                "Run with cur_path to see which instance types are x86; move compatible ones to Graviton.",
                None,
                "spend",
                graviton.basis,
            )
        )

    # "Enable Fargate Spot for non-production": on-demand x86 Fargate of non-prod, x up to 70%
    spot = fargate_spot_estimate(cur, spend)
    ecs_name, ecs_cost = _find(costs, "elastic container service")
    if spot.monthly_savings:
        recs.append(
            Recommendation(
                FARGATE_SPOT_ITEM,
                f"on-demand x86 Fargate of non-production {spot.period_cost:,.2f} {cur_name} over the period",
                "Use a FARGATE_SPOT capacity provider for staging/dev services; keep production on FARGATE.",
                spot.monthly_savings,
                "cur",
                spot.basis,
            )
        )
    elif spot.monthly_savings is None and total and ecs_cost / total * 100 >= MIN_SHARE_PCT:
        recs.append(
            Recommendation(
                FARGATE_SPOT_ITEM,
                f"{ecs_name} {ecs_cost:,.2f} {cur_name} ({ecs_cost / total * 100:.1f}% of spend)",
                "Use a FARGATE_SPOT capacity provider for staging/dev services (TAG:Environment shows the split).",
                None,
                "spend",
                spot.basis,
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
                    None,
                    "spend",
                    f"{NOT_ESTIMATED}: Cost Explorer's Savings Plans recommendations price the commitment",
                )
            )
    # estimated savings first, largest first; "not estimated" last, in checklist order
    return sorted(recs, key=lambda r: (r.monthly_savings is None, -(r.monthly_savings or 0.0)))
