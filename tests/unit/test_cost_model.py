"""The cost model: query validation, the tidy cost shape, and the registry of cost sources."""

from __future__ import annotations

import datetime as dt

import pytest

from opslib import clients
from opslib.aws import cost
from opslib.aws.cost_model import (
    CostQuery,
    CostSourceKind,
    Granularity,
    load_spend,
    make_cost_data,
    open_source,
    parse_query,
    registered_sources,
    source_kind,
)
from opslib.core.errors import BadInputError, NotFoundError

TODAY = dt.date(2026, 11, 23)


# --- validation -------------------------------------------------------------------------------


def test_default_period_is_last_30_full_days():
    q = parse_query(today=TODAY)
    assert (q.start, q.end, q.days) == (dt.date(2026, 10, 24), TODAY, 30)
    assert q.previous() == CostQuery(dt.date(2026, 9, 24), dt.date(2026, 10, 24))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"start": "2026-13-01"}, "start='2026-13-01' is not an ISO date"),
        ({"end": "yesterday"}, "end='yesterday' is not an ISO date"),
        ({"start": "2026-11-10", "end": "2026-11-01"}, "must be after start"),
        ({"start": "2026-11-10", "end": "2026-11-10"}, "must be after start"),
        ({"group_by": "SERVICES"}, "group_by='SERVICES' is unknown"),
        ({"group_by": "TAG:"}, "needs a tag key"),
        ({"metric": "UnblendedCost,BlendedCost"}, "one metric per run"),
        ({"metric": "Cost"}, "metric='Cost' is unknown"),
        ({"granularity": "HOURLY"}, "granularity='HOURLY' is not supported"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_query(**kwargs, today=TODAY)


def test_group_by_normalised():
    assert parse_query(group_by="service", today=TODAY).group_by == "SERVICE"
    q = parse_query(group_by="tag:Team", today=TODAY)
    assert (q.group_by, q.tag_key) == ("TAG:Team", "Team")
    assert q.to_api()["GroupBy"] == [{"Type": "TAG", "Key": "Team"}]
    assert parse_query(metric="blendedcost", today=TODAY).metric == "BlendedCost"


# --- the registry of cost sources ---------------------------------------------------------------


def test_both_sources_are_registered_and_the_parameter_picks_one():
    assert registered_sources() == [CostSourceKind.COST_EXPLORER, CostSourceKind.CUR]
    assert source_kind("") is CostSourceKind.COST_EXPLORER
    assert source_kind("  ") is CostSourceKind.COST_EXPLORER
    assert source_kind("s3://bucket/cur/") is CostSourceKind.CUR
    assert source_kind("/exports/cur") is CostSourceKind.CUR


def test_open_source_looks_the_kind_up(sandbox, tmp_path):
    session = clients.aws_session()
    ce = open_source(CostSourceKind.COST_EXPLORER, session=session)
    assert isinstance(ce, cost.CostExplorerSource) and ce.label == "Cost Explorer"
    assert ce.source is CostSourceKind.COST_EXPLORER
    with pytest.raises(NotFoundError, match="does not exist"):
        open_source(CostSourceKind.CUR, str(tmp_path / "nope"), session=session)
    with pytest.raises(BadInputError, match="No cost source 'warehouse'"):
        open_source("warehouse", session=session)  # type: ignore[arg-type]


class _Answers:
    """A cost source that answers from memory and remembers the order it was asked in."""

    source = CostSourceKind.CUR
    label = "memory"

    def __init__(self) -> None:
        self.asked: list[CostQuery] = []

    def costs(self, query: CostQuery):
        self.asked.append(query)
        return make_cost_data(query, [(query.start, "EC2", float(len(self.asked)))], source="cur")


def test_load_spend_asks_this_period_then_the_previous_one():
    q = parse_query("2026-11-01", "2026-11-11", today=TODAY)
    src = _Answers()
    spend = load_spend(q, src)
    assert src.asked == [q, q.previous()]
    assert (spend.current.total, spend.previous.total) == (1.0, 2.0)
    assert spend.current.source is CostSourceKind.CUR  # a plain string is coerced to the kind


def test_query_kinds_are_typed():
    q = CostQuery(dt.date(2026, 11, 1), dt.date(2026, 11, 2), "MONTHLY")
    assert q.granularity is Granularity.MONTHLY
    assert q.to_api()["Granularity"] == "MONTHLY"
