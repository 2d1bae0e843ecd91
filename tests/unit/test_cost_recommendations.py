"""Checklist items appear only where the data supports them; prices and figures."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from opslib.aws import cost, cost_model
from opslib.aws.cost_recommendations import (
    fargate_spot_estimate,
    graviton_estimate,
    recommend,
    recommendations_frame,
    savings_estimates,
)
from opslib.aws.cur import COMPUTE_COLUMNS, CurReport
from opslib.aws.idle import IdleReport, IdleResource, NatTraffic
from opslib.aws.pricing import DEFAULT_PRICES, PRICES_AS_OF, price_table
from opslib.core.errors import BadInputError

TODAY = dt.date(2026, 11, 23)


def _spend(series: dict[str, list[float]], start="2026-10-01") -> cost_model.CostData:
    days = len(next(iter(series.values())))
    q = cost_model.parse_query(
        start, (dt.date.fromisoformat(start) + dt.timedelta(days=days)).isoformat(), today=TODAY
    )
    rows = [
        (q.start + dt.timedelta(days=i), g, v[i]) for g, v in series.items() for i in range(days)
    ]
    return cost_model.make_cost_data(q, rows)


def _idle(*resources, nat=()):
    return IdleReport(tuple(resources), (), (), ("us-east-1",), price_table(), tuple(nat))


def _items(recs):
    return [r.item for r in recs]


def test_nothing_supported_nothing_shown():
    spend = _spend({"AWS Lambda": [10.0 + (i % 5) for i in range(14)]})
    assert recommend(spend=spend, idle=_idle()) == []


def test_each_item_needs_its_evidence():
    spend = _spend(
        {
            "Amazon Elastic Compute Cloud - Compute": [500.0] * 14,
            "Amazon Simple Storage Service": [50.0] * 7 + [150.0] * 7,
            "Amazon Elastic Container Service": [80.0 + (i % 3) * 20 for i in range(14)],
            "AmazonCloudWatch": [1.0] * 14,
        }
    )
    eip = IdleResource("eip-unassociated", "us-east-1", "eipalloc-1", "", 3.65, "", "")
    ddb = IdleResource("dynamodb-overprovisioned", "us-east-1", "orders", "", 40.0, "", "")
    logs = IdleResource("logs-no-retention", "us-east-1", "/app", "", 6.0, "", "")
    nat = NatTraffic("us-east-1", "nat-1", 3000.0, 135.0)
    anomalies = cost.find_anomalies(spend)
    recs = recommend(spend=spend, idle=_idle(eip, ddb, logs, nat=[nat]), anomalies=anomalies)
    items = _items(recs)
    assert "Review and remove unused resources" in items
    assert "DynamoDB On-Demand for spiky or low-traffic tables" in items
    assert "Archive old CloudWatch logs to S3" in items
    assert "Verify NAT Gateway data transfer costs; use VPC endpoints" in items
    assert "Enable S3 Intelligent-Tiering and lifecycle policies" in items
    assert "Enable Fargate Spot for non-production (up to 70% savings)" in items
    assert "Graviton2: ~20% cost savings on compute" in items
    # EC2 is flat (variation 0%): reserved capacity; ECS varies by ~20%: not predictable
    steady = [r for r in recs if r.item.startswith("Reserved capacity")]
    assert (
        steady
        and "Elastic Compute Cloud" in steady[0].evidence
        and "Container" not in steady[0].evidence
    )
    s3 = [r for r in recs if r.item.startswith("Enable S3")][0]
    assert "above its baseline on" in s3.evidence
    # estimated first, largest first; what Cost Explorer cannot estimate is None, never 0
    estimated = [r.monthly_savings for r in recs if r.monthly_savings is not None]
    assert [r.monthly_savings for r in recs[: len(estimated)]] == sorted(estimated, reverse=True)
    assert all(r.monthly_savings is None for r in recs[len(estimated) :])
    by_item = {r.item: r for r in recs}
    for item in (
        "Graviton2: ~20% cost savings on compute",
        "Enable Fargate Spot for non-production (up to 70% savings)",
    ):
        assert by_item[item].monthly_savings is None
        assert by_item[item].savings_basis.startswith("not estimated")
        assert "cur_path" in by_item[item].savings_basis
    frame = recommendations_frame(recs)
    assert list(frame.columns) == [
        "item",
        "evidence",
        "action",
        "est_monthly_savings",
        "source",
        "savings_basis",
    ]
    shown = frame.set_index("item")["est_monthly_savings"]
    assert shown["Enable Fargate Spot for non-production (up to 70% savings)"] == "not estimated"
    assert shown["Review and remove unused resources"] == pytest.approx(3.65 + 40.0 + 6.0)


def test_graviton_from_cur_instance_types_only_for_x86():
    spend = _spend({"Amazon Elastic Compute Cloud - Compute": [100.0] * 10})
    inst = pd.DataFrame(
        {"instance_type": ["m5.large", "c7g.xlarge", "r6gd.large"], "cost": [300.0, 500.0, 200.0]}
    )
    cur = CurReport({}, spend, pd.DataFrame(), pd.DataFrame(), 0.0, inst)
    g = [r for r in recommend(spend=spend, cur=cur) if r.item.startswith("Graviton")][0]
    assert "m5.large" in g.savings_basis and "c7g" not in g.savings_basis
    assert g.monthly_savings == pytest.approx(300.0 * 3 * 0.20)  # 10 days -> 30-day month, 20%
    all_graviton = CurReport({}, spend, pd.DataFrame(), pd.DataFrame(), 0.0, inst.iloc[1:])
    assert not [
        r for r in recommend(spend=spend, cur=all_graviton) if r.item.startswith("Graviton")
    ]


def _compute(rows):
    return pd.DataFrame(rows, columns=COMPUTE_COLUMNS)


def test_graviton_and_fargate_spot_estimated_from_the_cur_compute_mix():
    """Graviton: 20% of x86 EC2 + x86 on-demand Fargate. Fargate Spot: up to 70% of the
    on-demand x86 Fargate of non-production; production, untagged, ARM, Spot and storage are
    not counted. Per 30-day month (10 days here: x3)."""
    spend = _spend({"Amazon Elastic Compute Cloud - Compute": [100.0] * 10})
    ecs = "Amazon Elastic Container Service"
    ec2 = "Amazon Elastic Compute Cloud - Compute"
    compute = _compute(
        [
            (ec2, "BoxUsage:m5.large", "m5.large", "prod", 300.0, "ec2", "x86_64"),
            (ec2, "BoxUsage:c7g.large", "c7g.large", "prod", 500.0, "ec2", "arm64"),
            (ecs, "USE1-Fargate-vCPU-Hours:perCPU", "", "prod", 400.0, "fargate", "x86_64"),
            (ecs, "USE1-Fargate-vCPU-Hours:perCPU", "", "staging", 100.0, "fargate", "x86_64"),
            (ecs, "USE1-Fargate-GB-Hours", "", "dev", 50.0, "fargate", "x86_64"),
            (ecs, "USE1-Fargate-GB-Hours", "", "", 70.0, "fargate", "x86_64"),
            (ecs, "USE1-Fargate-ARM-GB-Hours", "", "dev", 80.0, "fargate", "arm64"),
            (ecs, "USE1-SpotUsage-Fargate-GB-Hours", "", "dev", 20.0, "fargate-spot", "x86_64"),
            (
                ecs,
                "USE1-Fargate-EphemeralStorage-GB-Hours",
                "",
                "dev",
                9.0,
                "fargate-other",
                "x86_64",
            ),
        ]
    )
    cur = CurReport({}, spend, pd.DataFrame(), pd.DataFrame(), 0.0, pd.DataFrame(), compute)
    g = graviton_estimate(cur, spend)
    assert g.monthly_savings == pytest.approx((300 + 400 + 100 + 50 + 70) * 3 * 0.20)
    assert "m5.large" in g.basis and "c7g" not in g.basis
    f = fargate_spot_estimate(cur, spend)
    assert f.monthly_savings == pytest.approx((100 + 50) * 3 * 0.70)
    assert "dev, staging" in f.basis
    assert "production 400.00" in f.basis and "untagged 70.00" in f.basis
    assert "ARM 80.00" in f.basis and "already on Spot 20.00" in f.basis

    recs = {r.item: r for r in recommend(spend=spend, cur=cur)}
    assert recs[g.item].monthly_savings == pytest.approx(g.monthly_savings)
    assert recs[f.item].monthly_savings == pytest.approx(f.monthly_savings)
    assert recs[f.item].source == "cur" and recs[f.item].savings_basis == f.basis
    assert [e.to_dict()["monthly_savings"] for e in savings_estimates(cur, spend)] == [
        round(g.monthly_savings, 2),
        round(f.monthly_savings, 2),
    ]

    # all production: nothing for Fargate Spot, estimated as 0 (not "not estimated")
    prod_only = compute[compute["environment"] == "prod"]
    cur2 = CurReport({}, spend, pd.DataFrame(), pd.DataFrame(), 0.0, pd.DataFrame(), prod_only)
    assert fargate_spot_estimate(cur2, spend).monthly_savings == 0.0
    assert f.item not in {r.item for r in recommend(spend=spend, cur=cur2)}

    # Cost Explorer only: not estimated, None
    for est in savings_estimates(None, spend):
        assert est.monthly_savings is None and est.to_dict()["monthly_savings"] is None
        assert est.basis.startswith("not estimated")


def test_price_table_is_dated_and_overridable():
    t = price_table()
    assert t.as_of == PRICES_AS_OF and t.region == "us-east-1"
    assert t.ebs_gb_month("gp3") == DEFAULT_PRICES["ebs_gp3_gb_month"]
    assert t.ebs_gb_month("unknown-type") == DEFAULT_PRICES["ebs_gp2_gb_month"]
    assert t.rds_hour("db.x9.huge") == (DEFAULT_PRICES["rds_default_hour"], False)
    o = price_table(
        {"ebs_gp3_gb_month": 0.0952, "rds_db.x9.huge_hour": 9.0},
        as_of="2026-11-20",
        region="eu-central-1",
    )
    assert o.ebs_gb_month("gp3") == 0.0952 and o.rds_hour("db.x9.huge") == (9.0, True)
    assert o.overridden == ("ebs_gp3_gb_month", "rds_db.x9.huge_hour")
    assert "eu-central-1" in o.basis("ebs_gp3_gb_month") and "2026-11-20" in o.basis(
        "ebs_gp3_gb_month"
    )
    assert DEFAULT_PRICES["ebs_gp3_gb_month"] == 0.08  # the default table is untouched
    with pytest.raises(BadInputError):
        price_table({"eip_hour": -1})
    with pytest.raises(KeyError, match="No price"):
        t.price("nope")


def test_figures_render_with_anomalies_marked():
    import matplotlib

    matplotlib.use("Agg")
    from opslib.report import cost as report

    spend = _spend(
        {f"svc{i}": [10.0 + i] * 20 for i in range(10)} | {"spiky": [5.0] * 17 + [40.0] * 3}
    )
    anomalies = cost.find_anomalies(spend)
    fig = report.spend_figure(spend, anomalies, top=4)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Other" in labels and "anomaly" in labels
    assert any(t.get_text() == "spiky" for t in ax.texts)
    budget = cost.budget_status(_spend({"x": [100.0] * 20}, start="2026-11-01"), 2500)
    bfig = report.budget_figure(budget)
    assert "Budget 2026-11" in bfig.axes[0].get_title()
    empty = cost_model.make_cost_data(
        cost_model.parse_query("2026-11-01", "2026-11-05", today=TODAY), []
    )
    report.spend_figure(empty)
