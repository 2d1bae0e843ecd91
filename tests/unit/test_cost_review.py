"""The cost review flow: inputs refused before anything is read, the source picked by the registry,
the steps wired in the runbook's order, and an executor that performs only cleanup actions.

The notebook end to end is tests/notebooks/test_cost_review.py; here the flow's own contracts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from opslib.aws.cost import CostExplorerSource
from opslib.aws.cost_model import CostSourceKind, Granularity
from opslib.aws.cur import CurSource
from opslib.aws.idle import IdleKind
from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.plans import Change
from opslib.runbooks import cost_review as review
from opslib.sandbox.curgen import generate_cur

TODAY = dt.date(2026, 11, 23)


def test_inputs_are_validated_and_typed():
    inp = review.inputs(
        start="2026-10-01",
        end="2026-11-01",
        granularity="daily",
        group_by="tag:Team",
        regions=" eu-west-1, us-east-1,eu-west-1 ",
        cleanup="eip-unassociated",
        today=TODAY,
    )
    assert inp.query.period == "2026-10-01..2026-11-01"
    assert inp.query.granularity is Granularity.DAILY and inp.query.group_by == "TAG:Team"
    assert inp.source is CostSourceKind.COST_EXPLORER
    assert inp.regions == ("eu-west-1", "us-east-1")
    assert inp.cleanup == (IdleKind.EIP_UNASSOCIATED,)
    assert (inp.budget_monthly, inp.min_monthly_savings, inp.max_cleanup) == (0.0, 5.0, 20)
    assert review.inputs(cur_path=" /exports/cur ", today=TODAY).source is CostSourceKind.CUR


@pytest.mark.parametrize(
    "params,message",
    [
        ({"start": "2026-02-30"}, "is not an ISO date"),
        ({"metric": "UnblendedCost,AmortizedCost"}, "one metric per run"),
        ({"budget_monthly": -1}, "budget_monthly=-1 must be >= 0"),
        ({"anomaly_threshold_pct": -5}, "anomaly_threshold_pct"),
        ({"min_monthly_savings": -1}, "min_monthly_savings"),
        ({"cleanup": "nat-idle"}, "cannot be cleaned up"),
    ],
)
def test_bad_inputs_are_refused_before_anything_is_read(params, message):
    with pytest.raises(BadInputError, match=message):
        review.inputs(**params, today=TODAY)


def test_connect_opens_the_source_the_inputs_name(sandbox, tmp_path):
    conns = review.connect(review.inputs(today=TODAY))
    assert isinstance(conns.source, CostExplorerSource)
    assert conns.regions == (conns.session.region_name,)  # empty regions: the session's

    generate_cur(tmp_path / "cur", rows=20_000, start=dt.date(2026, 10, 1), days=30, seed=1)
    inp = review.inputs(
        start="2026-10-05", end="2026-10-25", cur_path=str(tmp_path / "cur"), regions="eu-west-1"
    )
    conns = review.connect(inp)
    assert isinstance(conns.source, CurSource) and conns.regions == ("eu-west-1",)

    with pytest.raises(NotFoundError, match="does not exist"):
        review.connect(review.inputs(cur_path=str(tmp_path / "nope"), today=TODAY))


def test_prepare_is_inputs_then_connect_and_picks_the_source(sandbox, tmp_path):
    run = review.prepare(today=TODAY)
    assert isinstance(run, review.CostReview) and not run.has_cur
    assert isinstance(run.clients.source, CostExplorerSource)
    assert run.inputs == review.inputs(today=TODAY)
    assert "source: Cost Explorer" in run.describe() == review.describe(run)
    assert review.cur_analysis(run) is None  # no CUR: the CUR step is skipped, not guessed

    generate_cur(tmp_path / "cur", rows=20_000, start=dt.date(2026, 10, 1), days=30, seed=1)
    run = review.prepare(
        start="2026-10-05", end="2026-10-25", cur_path=str(tmp_path / "cur"), regions="eu-west-1"
    )
    assert run.has_cur and isinstance(run.clients.source, CurSource)
    assert f"source: CUR {tmp_path / 'cur'}" in run.describe()
    spend = review.spend(run)
    assert isinstance(spend, review.SpendReview)
    assert spend.current.source is CostSourceKind.CUR and spend.current.total > 0
    assert spend.previous.query == run.query.previous()
    assert "(cur, 0 page(s))" in spend.summary()
    assert spend.threshold_pct == 30.0 and isinstance(spend.anomalies, tuple)
    report = review.cur_analysis(run)
    assert report is not None and report.costs.total == pytest.approx(spend.current.total)
    assert report.compute is not None and len(report.compute)

    # bad input is refused by prepare, before any client is built
    with pytest.raises(BadInputError, match="is not an ISO date"):
        review.prepare(start="2026-02-30", cur_path="/nonexistent")
    with pytest.raises(NotFoundError, match="does not exist"):
        review.prepare(cur_path=str(tmp_path / "nope"), today=TODAY)


def test_summary_is_the_record_contract_in_order(sandbox, tmp_path):
    """The thirteen record names of the first version, in order, then the estimates."""
    generate_cur(tmp_path / "cur", rows=20_000, start=dt.date(2026, 10, 1), days=30, seed=1)
    runs = {
        "ce": review.prepare(today=TODAY, regions="us-east-1"),
        "cur": review.prepare(start="2026-10-05", end="2026-10-25", cur_path=str(tmp_path / "cur")),
    }
    for name, run in runs.items():
        spend = review.spend(run)
        status = review.budget(run, spend)
        cur = review.cur_analysis(run)
        idle_report = review.idle_scan(run)
        recs = review.recommendations(spend, cur, idle_report)
        rec = review.summary(spend, status, cur, idle_report, recs, None)
        names = [f.name for f in dataclasses.fields(rec)]
        assert names[:13] == [
            "period",
            "group_by",
            "source",
            "total_cost",
            "currency",
            "top_services",
            "anomalies",
            "budget",
            "idle_findings",
            "monthly_savings",
            "idle_errors",
            "recommendations",
            "cleaned",
        ]
        assert names[13:] == [
            "savings_estimates",
            "graviton_monthly_savings",
            "fargate_spot_monthly_savings",
        ]
        assert rec.period == run.query.period and rec.total_cost == round(spend.current.total, 2)
        assert rec.cleaned == [] and set(rec.budget) >= {"status"}
        assert [e["item"] for e in rec.savings_estimates] == [
            "Graviton2: ~20% cost savings on compute",
            "Enable Fargate Spot for non-production (up to 70% savings)",
        ]
        if name == "ce":  # Cost Explorer cannot tell architectures or environments
            assert rec.graviton_monthly_savings is None
            assert rec.fargate_spot_monthly_savings is None
            assert all(e["monthly_savings"] is None for e in rec.savings_estimates)
            assert all(e["basis"].startswith("not estimated") for e in rec.savings_estimates)
        else:
            assert rec.graviton_monthly_savings > 0 and rec.fargate_spot_monthly_savings > 0


def test_the_executor_performs_only_cleanup_actions(sandbox):
    run = review.prepare(today=TODAY)
    execute = review.executor(run)
    with pytest.raises(executors.UnknownActionError):
        execute(Change("ecs:UpdateService", "orders", "scale out"))
    assert review.cleaned_ids(None) == []
