"""Cost Explorer spend: validation, every page followed, movers, anomalies, budget thresholds.

Cost Explorer calls go to the sandbox's moto server. moto answers GetCostAndUsage with results
queued through its /moto-api/static/ce/cost-and-usage-results endpoint (it ignores the request's
period and grouping), so each test queues its own pages in an AWS account of its own (an
assumed role in a fresh account id): the scenario's queue in the default account is untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import urllib.request

import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from opslib import clients
from opslib.aws import cost
from opslib.aws.cost_model import UNTAGGED, CostData, load_spend, make_cost_data, parse_query
from opslib.aws.cur import cur_costs, open_cur
from opslib.core.errors import BadInputError
from opslib.core.findings import Severity

TODAY = dt.date(2026, 11, 23)


# --- validation -------------------------------------------------------------------------------


def test_negative_numbers_refused():
    with pytest.raises(BadInputError, match="budget_monthly"):
        cost.check_numbers(budget_monthly=-1)
    with pytest.raises(BadInputError, match="min_monthly_savings"):
        cost.check_numbers(min_monthly_savings=-5)


# --- Cost Explorer on the wire ------------------------------------------------------------------


def _own_account_ce(sandbox):
    """A CE client in a fresh account (assumed role), so queued results are this test's alone."""
    account = f"{random.randrange(10**11, 10**12)}"
    session = clients.aws_session(role_arn=f"arn:aws:iam::{account}:role/cost-review-test")
    return account, clients.aws_client("ce", region="us-east-1", session=session)


def _queue(sandbox, account: str, results: list[dict]) -> None:
    req = urllib.request.Request(
        sandbox.aws_endpoint + "/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps({"account_id": account, "results": results}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201


def _period(day: str, groups: dict[str, float], key_prefix: str = "") -> dict:
    end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    return {
        "TimePeriod": {"Start": day, "End": end},
        "Total": {},
        "Estimated": False,
        "Groups": [
            {
                "Keys": [key_prefix + k],
                "Metrics": {"UnblendedCost": {"Amount": str(v), "Unit": "USD"}},
            }
            for k, v in groups.items()
        ],
    }


def test_every_page_is_followed(sandbox):
    account, ce = _own_account_ce(sandbox)
    q = parse_query("2026-11-01", "2026-11-04", today=TODAY)
    _queue(
        sandbox,
        account,
        [
            {
                "ResultsByTime": [_period("2026-11-01", {"Amazon S3": 1.5, "AWS Lambda": 0.25})],
                "NextPageToken": "t2",
            },
            # Cost Explorer may continue a day on the next page: the same (day, group) is summed
            {
                "ResultsByTime": [
                    _period("2026-11-01", {"Amazon S3": 0.5}),
                    _period("2026-11-02", {"Amazon S3": 2}),
                ],
                "NextPageToken": "t3",
            },
            {
                "ResultsByTime": [
                    _period("2026-11-03", {"Amazon S3": 3}),
                    _period("2026-12-01", {"Amazon S3": 99}),
                ]
            },
        ],
    )
    data = cost.get_cost_and_usage(q, ce=ce)
    assert data.pages == 3
    assert data.total == pytest.approx(1.5 + 0.25 + 0.5 + 2 + 3)  # the 2026-12-01 row is outside
    assert any("outside" in n for n in data.notes)
    by = data.by_group().set_index("name")["cost"]
    assert by["Amazon S3"] == pytest.approx(7.0)
    assert data.currency == "USD"
    assert len(data.daily()) == 3


def test_tag_groups_are_parsed(sandbox):
    account, ce = _own_account_ce(sandbox)
    q = parse_query("2026-11-01", "2026-11-02", group_by="TAG:Environment", today=TODAY)
    _queue(
        sandbox,
        account,
        [
            {
                "ResultsByTime": [
                    _period("2026-11-01", {"prod": 10, "dev": 2, "": 1}, key_prefix="Environment$")
                ]
            }
        ],
    )
    by = cost.get_cost_and_usage(q, ce=ce).by_group().set_index("name")["cost"]
    assert dict(by) == {"prod": 10.0, "dev": 2.0, UNTAGGED: 1.0}


def test_scenario_ce_agrees_with_cur_and_direct_computation(sandbox):
    """The sandbox's seeded Cost Explorer results, the CUR path and pyarrow on the same parquet agree."""
    from opslib.sandbox.scenarios.cost import scenario_facts

    facts = scenario_facts(sandbox)
    assert facts, "the cost scenario did not seed"
    q = parse_query(facts["start"], facts["end"], group_by="SERVICE")
    ce = clients.aws_client("ce", region="us-east-1")
    spend = load_spend(q, cost.CostExplorerSource(ce))  # the runbook's order: this, then previous
    current, previous = spend.current, spend.previous
    assert current.pages == 2
    src = open_cur(facts["cur_path"])
    from_cur, prev_cur = cur_costs(src, q), cur_costs(src, q.previous())
    t = ds.dataset(facts["cur_path"], format="parquet").to_table(
        columns=["line_item_unblended_cost"],
        filter=(ds.field("line_item_usage_start_date") >= pd.Timestamp(q.start))
        & (ds.field("line_item_usage_start_date") < pd.Timestamp(q.end)),
    )
    direct = pc.sum(t["line_item_unblended_cost"]).as_py()
    assert current.total == pytest.approx(direct, rel=1e-9)
    assert from_cur.total == pytest.approx(direct, rel=1e-9)
    assert previous.total == pytest.approx(prev_cur.total, rel=1e-9)
    a = current.by_group().set_index("name")["cost"]
    b = from_cur.by_group().set_index("name")["cost"]
    assert list(a.index) == list(b.index)
    assert list(a.values) == pytest.approx(list(b.values), rel=1e-9)
    # the story: S3 spikes in the last week, and only S3
    anomalies = cost.find_anomalies(current, threshold_pct=30)
    assert {x.group for x in anomalies} == {"Amazon Simple Storage Service"}
    wow = cost.week_over_week(current)
    assert (
        wow.iloc[0]["group"] == "Amazon Simple Storage Service" and wow.iloc[0]["change_pct"] > 100
    )


# --- movers, anomalies, budget on known numbers ----------------------------------------------


def _data(start: str, days: int, series: dict[str, list[float]]) -> CostData:
    q = parse_query(
        start, (dt.date.fromisoformat(start) + dt.timedelta(days=days)).isoformat(), today=TODAY
    )
    rows = [
        (q.start + dt.timedelta(days=i), g, v[i]) for g, v in series.items() for i in range(days)
    ]
    return make_cost_data(q, rows)


def test_anomaly_is_a_day_above_trailing_median_by_threshold():
    flat = [100.0] * 20
    spiky = [10.0] * 14 + [14.0, 12.9, 10.0, 30.0, 10.0, 10.0]
    d = _data("2026-10-01", 20, {"EC2": flat, "S3": spiky})
    found = cost.find_anomalies(d, threshold_pct=30)
    assert [(a.date, a.group) for a in found] == [("2026-10-15", "S3"), ("2026-10-18", "S3")]
    assert found[0].baseline == pytest.approx(10.0) and found[0].pct_above == pytest.approx(40.0)
    # a higher threshold keeps only the big one; min_increase ignores cents
    assert [a.date for a in cost.find_anomalies(d, threshold_pct=100)] == ["2026-10-18"]
    assert cost.find_anomalies(d, threshold_pct=30, min_increase=25) == []
    assert cost.anomalies_frame(found).columns.tolist() == [
        "date",
        "group",
        "cost",
        "baseline",
        "pct_above",
    ]


def test_step_change_is_flagged_for_a_week():
    d = _data("2026-10-01", 30, {"S3": [10.0] * 23 + [40.0] * 7})
    assert len(cost.find_anomalies(d, threshold_pct=30)) == 7


def test_movers():
    d = _data(
        "2026-10-01",
        14,
        {"EC2": [100.0] * 14, "S3": [10.0] * 7 + [30.0] * 7, "RDS": [50.0] * 7 + [45.0] * 7},
    )
    wow = cost.week_over_week(d)
    assert list(wow["group"]) == ["S3", "RDS", "EC2"]
    assert wow.iloc[0]["change"] == pytest.approx(140.0) and wow.iloc[0][
        "change_pct"
    ] == pytest.approx(200.0)
    prev = _data("2026-09-17", 14, {"EC2": [90.0] * 14, "S3": [10.0] * 14})
    pop = cost.period_over_period(d, prev).set_index("group")
    assert pop.loc["EC2", "change"] == pytest.approx(140.0)
    assert pop.loc["RDS", "previous"] == 0 and pd.isna(pop.loc["RDS", "change_pct"])


@pytest.mark.parametrize(
    "budget,level,text",
    [
        (0, Severity.INFO, "no budget"),
        (5000, Severity.OK, "within budget"),
        (3500, Severity.WARNING, "80% threshold"),
        (2900, Severity.WARNING, "forecast"),
        (2000, Severity.CRITICAL, "budget exceeded"),
    ],
)
def test_budget_thresholds(budget, level, text):
    # November 1..20 at 100/day: month-to-date 2000, forecast 2000 + 100 * 10 = 3000
    d = _data("2026-11-01", 20, {"EC2": [100.0] * 20})
    st = cost.budget_status(d, budget)
    assert (st.month, st.as_of) == ("2026-11", "2026-11-20")
    assert st.month_to_date == pytest.approx(2000) and st.forecast == pytest.approx(3000)
    assert st.level is level and text in st.message
    findings = cost.spend_findings(d, [], st)
    assert any(f.source == "budget" for f in findings)


def test_budget_notes_a_partial_month():
    d = _data("2026-11-10", 10, {"EC2": [100.0] * 10})
    st = cost.budget_status(d, 10000)
    assert st.month_to_date == pytest.approx(1000)
    assert any("only from 2026-11-10" in n for n in st.notes)


def test_top_services_record_shape():
    d = _data("2026-11-01", 3, {"EC2": [1.004, 1, 1], "S3": [0.5, 0.5, 0.5]})
    assert cost.top_services(d) == [{"name": "EC2", "cost": 3.0}, {"name": "S3", "cost": 1.5}]


def test_monthly_granularity():
    q = parse_query("2026-09-01", "2026-11-21", granularity="MONTHLY", today=TODAY)
    rows = [
        (dt.date(2026, 9, 1), "EC2", 300.0),
        (dt.date(2026, 10, 1), "EC2", 310.0),
        (dt.date(2026, 11, 1), "EC2", 200.0),
    ]
    d = make_cost_data(q, rows)
    assert list(d.daily_total()) == [300.0, 310.0, 200.0]
    assert cost.week_over_week(d).empty and cost.find_anomalies(d) == []
    st = cost.budget_status(d, 400)
    # November 1..20 cost 200: 10/day, 10 days left -> forecast 300 (75%)
    assert st.month_to_date == pytest.approx(200) and st.forecast == pytest.approx(300)
    assert st.level is Severity.OK  # month-to-date 50%, forecast 75%: under the 80% threshold


def test_results_grouped_otherwise_than_asked_are_dropped_and_said(sandbox):
    account, ce = _own_account_ce(sandbox)
    q = parse_query("2026-11-01", "2026-11-02", group_by="TAG:Team", today=TODAY)
    page = {
        "ResultsByTime": [_period("2026-11-01", {"Amazon S3": 5})],
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    _queue(sandbox, account, [page])
    data = cost.get_cost_and_usage(q, ce=ce)
    assert data.total == 0 and any("instead of TAG:Team" in n for n in data.notes)
    findings = cost.spend_findings(data, [], cost.budget_status(data, 0))
    assert any(
        f.title.startswith("No UnblendedCost data") and f.severity is Severity.WARNING
        for f in findings
    )
