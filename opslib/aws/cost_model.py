"""The cost model shared by every cost source: the query, tidy costs, and the registry of sources.

A cost review asks one question (a period, a granularity, one grouping, one metric:
:class:`CostQuery`) and gets back one shape (:class:`CostData`: a tidy frame ``date, group,
cost``), whichever source answered it. Movers, anomalies, budget and charts only ever see
that shape, so they work identically on Cost Explorer and on a CUR 2.0 export.

Sources are a registry, kind -> opener: an adapter registers how to open its source
(``@register_source(CostSourceKind.CUR)``) and :func:`open_source` looks it up. A new source
(a FinOps warehouse, another cloud's billing export) is a new adapter module plus one
registration. One metric per run: mixing unblended and amortized cost in one table is how
cost reviews end up comparing different things.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from opslib.core.errors import BadInputError

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    import pandas as pd
    from boto3 import Session


class CostSourceKind(StrEnum):
    """Where the costs come from (also what :attr:`CostData.source` and the evidence say)."""

    COST_EXPLORER = "cost-explorer"
    CUR = "cur"


class Granularity(StrEnum):
    """Cost Explorer granularities a run may use (anomalies and week over week need DAILY)."""

    DAILY = "DAILY"
    MONTHLY = "MONTHLY"


#: Cost Explorer dimensions a run may group by (plus ``TAG:<key>``).
GROUP_BY_DIMENSIONS = ("SERVICE", "LINKED_ACCOUNT", "USAGE_TYPE", "REGION")
#: Cost Explorer metrics; one per run.
METRICS = (
    "UnblendedCost",
    "BlendedCost",
    "AmortizedCost",
    "NetUnblendedCost",
    "NetAmortizedCost",
    "UsageQuantity",
    "NormalizedUsageAmount",
)
GRANULARITIES = tuple(g.value for g in Granularity)
DEFAULT_DAYS = 30
UNTAGGED = "(untagged)"


@dataclass(frozen=True)
class CostQuery:
    """One validated period/granularity/grouping/metric; ``end`` is exclusive, as in Cost Explorer."""

    start: _dt.date
    end: _dt.date
    granularity: Granularity = Granularity.DAILY
    group_by: str = "SERVICE"
    metric: str = "UnblendedCost"

    def __post_init__(self) -> None:
        object.__setattr__(self, "granularity", Granularity(self.granularity))

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def tag_key(self) -> str:
        return self.group_by[4:] if self.group_by.startswith("TAG:") else ""

    @property
    def period(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def previous(self) -> CostQuery:
        """The period of the same length just before this one (for period-over-period movers)."""
        return replace(self, start=self.start - (self.end - self.start), end=self.start)

    def to_api(self) -> dict[str, Any]:
        """GetCostAndUsage arguments (without NextPageToken)."""
        if self.tag_key:
            group = {"Type": "TAG", "Key": self.tag_key}
        else:
            group = {"Type": "DIMENSION", "Key": self.group_by}
        return {
            "TimePeriod": {"Start": self.start.isoformat(), "End": self.end.isoformat()},
            "Granularity": self.granularity.value,
            "Metrics": [self.metric],
            "GroupBy": [group],
        }


def _parse_date(name: str, value: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(value.strip())
    except ValueError:
        raise BadInputError(
            f"{name}={value!r} is not an ISO date; use YYYY-MM-DD (e.g. 2026-11-01), or leave it "
            "empty for the default (the last 30 full days)."
        ) from None


def parse_query(
    start: str = "",
    end: str = "",
    *,
    granularity: str = "DAILY",
    group_by: str = "SERVICE",
    metric: str = "UnblendedCost",
    today: _dt.date | None = None,
) -> CostQuery:
    """Validate the runbook parameters into a :class:`CostQuery`, before any API call.

    Empty ``start``/``end`` mean the last 30 full days (``end`` = today, exclusive). Raises
    :class:`BadInputError` for a malformed date, an end not after the start, an unknown
    ``group_by``/``granularity``, or more than one metric.
    """
    today = today or _dt.datetime.now(_dt.UTC).date()
    end_d = _parse_date("end", end) if end.strip() else today
    start_d = _parse_date("start", start) if start.strip() else end_d - _dt.timedelta(DEFAULT_DAYS)
    if end_d <= start_d:
        raise BadInputError(
            f"end ({end_d}) must be after start ({start_d}); end is exclusive, as in Cost Explorer: "
            f"for one day use start={start_d} end={start_d + _dt.timedelta(1)}."
        )
    gran = granularity.strip().upper()
    if gran not in GRANULARITIES:
        raise BadInputError(
            f"granularity={granularity!r} is not supported; use one of {', '.join(GRANULARITIES)}."
        )
    gb = group_by.strip()
    if gb.upper().startswith("TAG:"):
        key = gb[4:].strip()
        if not key:
            raise BadInputError(
                "group_by='TAG:' needs a tag key, e.g. TAG:Environment or TAG:Team."
            )
        gb = f"TAG:{key}"
    elif gb.upper() in GROUP_BY_DIMENSIONS:
        gb = gb.upper()
    else:
        raise BadInputError(
            f"group_by={group_by!r} is unknown; use one of {', '.join(GROUP_BY_DIMENSIONS)} or "
            "TAG:<key> (e.g. TAG:Environment, TAG:Service, TAG:Team)."
        )
    m = metric.strip()
    if "," in m or " " in m:
        raise BadInputError(
            f"metric={metric!r}: one metric per run (never mixed); pick one of {', '.join(METRICS)}."
        )
    matches = [x for x in METRICS if x.lower() == m.lower()]
    if not matches:
        raise BadInputError(f"metric={metric!r} is unknown; use one of {', '.join(METRICS)}.")
    return CostQuery(start_d, end_d, Granularity(gran), gb, matches[0])


@dataclass(frozen=True)
class CostData:
    """Tidy costs: ``frame`` has columns date (datetime64), group (str), cost (float), one row per pair."""

    query: CostQuery
    frame: pd.DataFrame  # columns date, group, cost
    currency: str = "USD"
    source: CostSourceKind = CostSourceKind.COST_EXPLORER
    pages: int = 1
    estimated: bool = False  # Cost Explorer marks recent days as estimated
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", CostSourceKind(self.source))

    @property
    def total(self) -> float:
        return float(self.frame["cost"].sum()) if len(self.frame) else 0.0

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def by_group(self) -> pd.DataFrame:
        """Total per group over the period, largest first, with its share of the total."""
        import pandas as pd

        if not len(self.frame):
            return pd.DataFrame(columns=["name", "cost", "share_pct"])
        g = self.frame.groupby("group", as_index=False)["cost"].sum()
        g = g.rename(columns={"group": "name"}).sort_values("cost", ascending=False, kind="stable")
        total = g["cost"].sum()
        g["share_pct"] = (g["cost"] / total * 100).round(1) if total else 0.0
        return g.reset_index(drop=True)

    def daily(self) -> pd.DataFrame:
        """Wide table: one row per day (per month for MONTHLY) of the period, missing ones 0,
        one column per group."""
        import pandas as pd

        last = self.query.end - _dt.timedelta(1)
        if self.query.granularity is Granularity.MONTHLY:
            days = pd.date_range(self.query.start.replace(day=1), last, freq="MS")
        else:
            days = pd.date_range(self.query.start, last, freq="D")
        if not len(self.frame):
            return pd.DataFrame(index=days)
        wide = self.frame.pivot_table(index="date", columns="group", values="cost", aggfunc="sum")
        wide = wide.reindex(days).fillna(0.0)
        order = self.by_group()["name"].tolist()
        return wide[order]

    def daily_total(self) -> pd.Series:
        return self.daily().sum(axis=1)


def make_cost_data(query: CostQuery, rows: Iterable[tuple], **kw: Any) -> CostData:
    """Build :class:`CostData` from (date, group, cost) rows; repeated pairs are summed."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=["date", "group", "cost"])
    if len(frame):
        frame["date"] = pd.to_datetime(frame["date"])
        frame["cost"] = frame["cost"].astype(float)
        frame["group"] = frame["group"].astype(str)
        frame = (
            frame.groupby(["date", "group"], as_index=False)["cost"]
            .sum()
            .sort_values(["date", "cost"], ascending=[True, False], kind="stable")
            .reset_index(drop=True)
        )
    else:
        frame = frame.astype({"date": "datetime64[ns]", "group": str, "cost": float})
    return CostData(query=query, frame=frame, **kw)


# --- the registry of cost sources ---------------------------------------------------------------


class CostSource(Protocol):
    """An opened cost source: answers a :class:`CostQuery` with :class:`CostData`."""

    @property
    def source(self) -> CostSourceKind: ...

    @property
    def label(self) -> str:
        """What the run reads, in a few words ("Cost Explorer", "CUR /exports/cur")."""
        ...

    def costs(self, query: CostQuery) -> CostData: ...


#: how a source is opened: ``opener(location, *, session)``; ``location`` is the source's own
#: address (a CUR path or s3:// prefix; "" for Cost Explorer), clients come from ``session``
SourceOpener = Callable[..., CostSource]

_SOURCES: dict[CostSourceKind, SourceOpener] = {}


def register_source(kind: CostSourceKind) -> Callable[[SourceOpener], SourceOpener]:
    """Decorator: ``opener`` opens sources of ``kind``. Two openers for one kind is a
    programming error and raises at import time."""

    def deco(opener: SourceOpener) -> SourceOpener:
        known = _SOURCES.get(kind)
        if known is not None and known is not opener:
            raise ValueError(
                f"cost source {kind!r} already registered by {known.__module__}.{known.__qualname__}"
            )
        _SOURCES[CostSourceKind(kind)] = opener
        return opener

    return deco


def registered_sources() -> list[CostSourceKind]:
    """Every registered source kind, sorted."""
    return sorted(_SOURCES)


def source_kind(cur_path: str) -> CostSourceKind:
    """Which source a run reads: the CUR when ``cur_path`` is given, else Cost Explorer."""
    return CostSourceKind.CUR if cur_path.strip() else CostSourceKind.COST_EXPLORER


def open_source(kind: CostSourceKind, location: str = "", *, session: Session) -> CostSource:
    """Open the source of ``kind`` at ``location`` with clients from ``session``.

    Raises what the source's opener raises for a bad location (BadInputError, NotFoundError).
    """
    try:
        opener = _SOURCES[CostSourceKind(kind)]
    except (KeyError, ValueError):
        raise BadInputError(
            f"No cost source {kind!r} is registered; registered: "
            f"{', '.join(registered_sources()) or '(none)'}."
        ) from None
    return opener(location.strip(), session=session)


@dataclass(frozen=True)
class Spend:
    """This period's costs and the previous period of the same length, from one source."""

    current: CostData
    previous: CostData


def load_spend(query: CostQuery, source: CostSource) -> Spend:
    """This period, then the previous period of the same length, from ``source`` (in that order:
    the sandbox's Cost Explorer answers queries in the order they are asked)."""
    return Spend(source.costs(query), source.costs(query.previous()))
