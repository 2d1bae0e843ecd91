"""The cost review flow: inputs refused before anything is read, the source picked by the registry,
the steps wired in the runbook's order, and an executor that performs only cleanup actions.

The notebook end to end is tests/notebooks/test_cost_review.py; here the flow's own contracts.
"""

from __future__ import annotations

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
    assert "source: Cost Explorer" in review.describe(review.inputs(today=TODAY), conns)

    generate_cur(tmp_path / "cur", rows=20_000, start=dt.date(2026, 10, 1), days=30, seed=1)
    inp = review.inputs(
        start="2026-10-05", end="2026-10-25", cur_path=str(tmp_path / "cur"), regions="eu-west-1"
    )
    conns = review.connect(inp)
    assert isinstance(conns.source, CurSource) and conns.regions == ("eu-west-1",)
    spend = review.spend(inp, conns)
    assert spend.current.source is CostSourceKind.CUR and spend.current.total > 0
    assert spend.previous.query == inp.query.previous()
    assert "(cur, 0 page(s))" in review.spend_summary(inp, spend)
    report = review.cur_analysis(inp, conns)
    assert report is not None and report.costs.total == pytest.approx(spend.current.total)

    with pytest.raises(NotFoundError, match="does not exist"):
        review.connect(review.inputs(cur_path=str(tmp_path / "nope"), today=TODAY))


def test_no_cur_no_cur_analysis(sandbox):
    inp = review.inputs(today=TODAY)
    assert review.cur_analysis(inp, review.connect(inp)) is None


def test_the_executor_performs_only_cleanup_actions(sandbox):
    conns = review.connect(review.inputs(today=TODAY))
    execute = review.executor(conns)
    with pytest.raises(executors.UnknownActionError):
        execute(Change("ecs:UpdateService", "orders", "scale out"))
    assert review.cleaned_ids(None) == []
