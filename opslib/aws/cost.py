"""Spend from Cost Explorer, and what an engineer reads from it: movers, anomalies, budget.

The cost review procedure asks for daily Cost Explorer reports, a weekly check "for unexpected
spending", and budget alerts at 80% and 100%. This module is the Cost Explorer source (one
``GetCostAndUsage`` query, every page followed, into the tidy :class:`~opslib.aws.cost_model.CostData`
frame ``date, group, cost``) and the analysis of that frame, whichever source produced it
(Cost Explorer here, the CUR in :mod:`opslib.aws.cur`): which groups moved week over week and
period over period, which days sit above their trailing median by more than a threshold, and
where month-to-date and a simple run-rate forecast stand against the monthly budget.
"""

from __future__ import annotations

import calendar
import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opslib.aws.cost_model import (
    UNTAGGED,
    CostData,
    CostQuery,
    CostSourceKind,
    Granularity,
    make_cost_data,
    register_source,
)
from opslib.clients import aws_client
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity, skipped_finding

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    import pandas as pd
    from boto3 import Session
    from mypy_boto3_ce.client import CostExplorerClient

#: The budget alert thresholds of the cost review procedure: 80% and 100%.
BUDGET_THRESHOLDS = (80.0, 100.0)
#: Cost Explorer is a global API served from us-east-1.
CE_REGION = "us-east-1"


def _group_name(query: CostQuery, keys: list[str]) -> str:
    key = keys[0] if keys else "Total"
    if query.tag_key:  # Cost Explorer returns "Environment$prod", and "Environment$" when untagged
        key = key.split("$", 1)[1] if "$" in key else key
        return key or UNTAGGED
    return key or "(none)"


def get_cost_and_usage(
    query: CostQuery, *, ce: CostExplorerClient, max_pages: int = 1000
) -> CostData:
    """Run GetCostAndUsage for ``query``, following every NextPageToken, into :class:`CostData`.

    Cost Explorer may split one day's groups across pages, so rows of the same (date, group)
    are summed. Rows outside the requested period are dropped and counted in ``notes`` (a
    real endpoint never returns them; a mock that ignores the request can).
    """
    args = query.to_api()
    rows: list[tuple] = []
    units: set[str] = set()
    estimated = False
    pages = 0
    token = ""
    outside = 0
    mismatched: list = []
    while True:
        resp = ce.get_cost_and_usage(**args, **({"NextPageToken": token} if token else {}))
        pages += 1
        answered = [(d.get("Type"), d.get("Key")) for d in resp.get("GroupDefinitions") or []]
        if answered and answered != [(g["Type"], g["Key"]) for g in args["GroupBy"]]:
            mismatched.append(answered)
            periods = []
        else:
            periods = resp.get("ResultsByTime", [])
        for period in periods:
            day = _dt.date.fromisoformat(period["TimePeriod"]["Start"][:10])
            if not (query.start <= day < query.end):
                outside += 1
                continue
            estimated = estimated or bool(period.get("Estimated"))
            groups = period.get("Groups") or []
            if groups:
                for g in groups:
                    m = g.get("Metrics", {}).get(query.metric)
                    if m is None:
                        continue
                    units.add(m.get("Unit", ""))
                    rows.append((day, _group_name(query, g.get("Keys", [])), float(m["Amount"])))
            else:
                m = (period.get("Total") or {}).get(query.metric)
                if m is not None:
                    units.add(m.get("Unit", ""))
                    rows.append((day, "Total", float(m["Amount"])))
        token = resp.get("NextPageToken") or ""
        if not token:
            break
        if pages >= max_pages:
            raise BadInputError(
                f"Cost Explorer returned more than {max_pages} pages; narrow the period or use "
                "group_by with fewer values (or the CUR path, cur_path=...)."
            )
    notes = []
    if mismatched:
        notes.append(
            f"{len(mismatched)} page(s) grouped by {mismatched[0]} instead of {query.group_by} were "
            "dropped (a mock endpoint ignoring the request answers with whatever it holds)."
        )
    if outside:
        notes.append(
            f"{outside} result period(s) outside {query.period} were returned and dropped."
        )
    units.discard("")
    if len(units) > 1:
        notes.append(f"mixed units in the results: {sorted(units)}")
    currency = units.pop() if len(units) == 1 else ("USD" if not units else "mixed")
    return make_cost_data(
        query,
        rows,
        currency=currency,
        source=CostSourceKind.COST_EXPLORER,
        pages=pages,
        estimated=estimated,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class CostExplorerSource:
    """The Cost Explorer cost source: answers each query with ``GetCostAndUsage``."""

    ce: CostExplorerClient

    @property
    def source(self) -> CostSourceKind:
        return CostSourceKind.COST_EXPLORER

    @property
    def label(self) -> str:
        return "Cost Explorer"

    def costs(self, query: CostQuery) -> CostData:
        return get_cost_and_usage(query, ce=self.ce)


@register_source(CostSourceKind.COST_EXPLORER)
def open_cost_explorer(location: str = "", *, session: Session) -> CostExplorerSource:
    """The Cost Explorer source, its client built from ``session`` (``location`` is unused)."""
    return CostExplorerSource(aws_client("ce", region=CE_REGION, session=session))


def top_services(data: CostData, n: int = 10) -> list[dict[str, Any]]:
    """The top ``n`` groups as ``[{name, cost}]`` (what the evidence records as top_services)."""
    g = data.by_group().head(n)
    return [{"name": r.name, "cost": round(float(r.cost), 2)} for r in g.itertuples()]


def _movers(prev: pd.Series, cur: pd.Series, n: int) -> pd.DataFrame:
    import pandas as pd

    both = pd.concat([prev.rename("previous"), cur.rename("current")], axis=1).fillna(0.0)
    both["change"] = both["current"] - both["previous"]
    both["change_pct"] = (
        both["change"] / both["previous"].where(both["previous"] > 0) * 100
    ).round(1)
    both = both.reindex(both["change"].abs().sort_values(ascending=False, kind="stable").index)
    out = both.head(n).reset_index().rename(columns={"index": "group"})
    out.columns = ["group", "previous", "current", "change", "change_pct"]
    return out


def week_over_week(data: CostData, *, n: int = 10) -> pd.DataFrame:
    """Groups ranked by the absolute change between the last 7 days and the 7 days before."""
    import pandas as pd

    daily = data.daily()
    if data.query.granularity is not Granularity.DAILY or len(daily) < 14:
        return pd.DataFrame(columns=["group", "previous", "current", "change", "change_pct"])
    return _movers(daily.iloc[-14:-7].sum(), daily.iloc[-7:].sum(), n)


def period_over_period(current: CostData, previous: CostData, *, n: int = 10) -> pd.DataFrame:
    """Groups ranked by the absolute change between the previous period and this one."""
    cur = current.frame.groupby("group")["cost"].sum()
    prev = previous.frame.groupby("group")["cost"].sum()
    return _movers(prev, cur, n)


@dataclass(frozen=True)
class Anomaly:
    """A day whose cost for a group sits above its trailing median by more than the threshold."""

    date: str
    group: str
    cost: float
    baseline: float  # median of the trailing window before the day
    pct_above: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "group": self.group,
            "cost": round(self.cost, 2),
            "baseline": round(self.baseline, 2),
        }


def find_anomalies(
    data: CostData,
    *,
    threshold_pct: float = 30.0,
    trailing_days: int = 14,
    min_increase: float = 1.0,
) -> list[Anomaly]:
    """Days above their trailing median (the ``trailing_days`` before, not the day itself).

    A day counts when cost > median * (1 + threshold_pct/100) and the excess is at least
    ``min_increase`` (so a $0.02 service doubling is not an anomaly). A median over two weeks
    keeps flagging every day of a step change for a week, where a mean would adapt within days.
    Needs DAILY data; at least 3 prior days.
    """
    if threshold_pct < 0:
        raise BadInputError("anomaly_threshold_pct must be >= 0 (e.g. 30 for 30%).")
    if data.query.granularity is not Granularity.DAILY or not len(data.frame):
        return []
    daily = data.daily()
    base = daily.shift(1).rolling(trailing_days, min_periods=3).median()
    factor = 1 + threshold_pct / 100.0
    found: list[Anomaly] = []
    for group in daily.columns:
        cost, med = daily[group], base[group]
        hit = (cost > med * factor) & ((cost - med) >= min_increase) & med.notna()
        for day in cost.index[hit.to_numpy()]:
            c, b = float(cost[day]), float(med[day])
            pct = (c / b - 1) * 100 if b > 0 else float("inf")
            found.append(Anomaly(day.date().isoformat(), str(group), c, b, round(pct, 1)))
    found.sort(key=lambda a: (a.date, -a.cost))
    return found


def anomalies_frame(anomalies: Iterable[Anomaly]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "date": a.date,
                "group": a.group,
                "cost": round(a.cost, 2),
                "baseline": round(a.baseline, 2),
                "pct_above": a.pct_above,
            }
            for a in anomalies
        ],
        columns=["date", "group", "cost", "baseline", "pct_above"],
    )


@dataclass(frozen=True)
class BudgetStatus:
    """Month-to-date and a run-rate forecast for the month of the period's last day, vs the budget."""

    month: str  # YYYY-MM
    as_of: str  # last day with data
    month_to_date: float
    forecast: float  # month_to_date + average of the last 7 days * days left in the month
    budget: float
    mtd_pct: float
    forecast_pct: float
    level: Severity
    message: str
    notes: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "month": self.month,
                    "as_of": self.as_of,
                    "month_to_date": round(self.month_to_date, 2),
                    "forecast": round(self.forecast, 2),
                    "budget": self.budget,
                    "mtd_pct": self.mtd_pct,
                    "forecast_pct": self.forecast_pct,
                    "status": self.level.value,
                }
            ]
        )


def budget_status(data: CostData, budget_monthly: float) -> BudgetStatus:
    """Month-to-date and forecast against ``budget_monthly`` with the 80%/100% alert thresholds.

    Forecast = month-to-date + (average daily cost over the last 7 days) * days left in the
    month: simple and explainable; Cost Explorer's own forecast is better for long horizons.
    When the period starts after the 1st, month-to-date only covers the period (said in notes).
    """
    if budget_monthly < 0:
        raise BadInputError("budget_monthly must be >= 0 (0 = no budget check).")
    total = data.daily_total()
    as_of = data.query.end - _dt.timedelta(1)
    month_start = as_of.replace(day=1)
    days_in_month = calendar.monthrange(as_of.year, as_of.month)[1]
    notes: list[str] = []
    if data.query.start > month_start:
        notes.append(
            f"month-to-date counts only from {data.query.start} (the period starts after the 1st); "
            f"set start={month_start} for the full month."
        )
    mtd = float(total[total.index >= str(month_start)].sum()) if len(total) else 0.0
    if (
        data.query.granularity is Granularity.MONTHLY
    ):  # no daily detail: the month so far's average day
        covered = (as_of - max(month_start, data.query.start)).days + 1
        run_rate = mtd / covered if covered > 0 else 0.0
    else:
        run_rate = float(total.iloc[-7:].mean()) if len(total) else 0.0
    left = days_in_month - as_of.day
    forecast = mtd + run_rate * left
    month = month_start.strftime("%Y-%m")
    if budget_monthly <= 0:
        return BudgetStatus(
            month,
            as_of.isoformat(),
            mtd,
            forecast,
            0.0,
            0.0,
            0.0,
            Severity.INFO,
            "no budget given (budget_monthly=0): thresholds not checked",
            tuple(notes),
        )
    mtd_pct = round(mtd / budget_monthly * 100, 1)
    fc_pct = round(forecast / budget_monthly * 100, 1)
    lo, hi = BUDGET_THRESHOLDS
    if mtd_pct >= hi:
        level, msg = (
            Severity.CRITICAL,
            f"budget exceeded: month-to-date is {mtd_pct}% of {budget_monthly:g}",
        )
    elif fc_pct >= hi:
        level, msg = (
            Severity.WARNING,
            f"forecast {fc_pct}% of the budget: the month will exceed it at this rate",
        )
    elif mtd_pct >= lo or fc_pct >= lo:
        level, msg = (
            Severity.WARNING,
            f"{lo:g}% threshold reached (month-to-date {mtd_pct}%, forecast {fc_pct}%)",
        )
    else:
        level, msg = Severity.OK, f"within budget (month-to-date {mtd_pct}%, forecast {fc_pct}%)"
    return BudgetStatus(
        month,
        as_of.isoformat(),
        mtd,
        forecast,
        float(budget_monthly),
        mtd_pct,
        fc_pct,
        level,
        msg,
        tuple(notes),
    )


def spend_findings(
    data: CostData, anomalies: Iterable[Anomaly], budget: BudgetStatus
) -> list[Finding]:
    """Findings for the spend step: anomalies per group, and the budget status."""
    out: list[Finding] = []
    by_group: dict[str, list[Anomaly]] = {}
    for a in anomalies:
        by_group.setdefault(a.group, []).append(a)
    for group, items in by_group.items():
        extra = sum(a.cost - a.baseline for a in items)
        days = ", ".join(a.date for a in items[:7]) + (" ..." if len(items) > 7 else "")
        out.append(
            Finding(
                Severity.WARNING,
                f"{group}: spend above its trailing median on {len(items)} day(s)",
                source=f"cost:{data.source}",
                evidence=f"{days}; {extra:,.2f} {data.currency} above baseline in total; "
                f"peak {max(a.cost for a in items):,.2f} vs median {items[0].baseline:,.2f}",
                next_action=f"Break {group} down by USAGE_TYPE and resource (cur_path) to find what changed.",
                data={"group": group, "days": len(items), "excess": round(extra, 2)},
            )
        )
    if budget.budget <= 0:
        out.append(skipped_finding("budget", "budget_monthly"))
    else:
        out.append(
            Finding(
                budget.level,
                f"Budget {budget.month}: {budget.message}",
                source="budget",
                evidence=f"month-to-date {budget.month_to_date:,.2f}, forecast {budget.forecast:,.2f}, "
                f"budget {budget.budget:,.2f} {data.currency}"
                + "".join(f"; {n}" for n in budget.notes),
                next_action=""
                if budget.level is Severity.OK
                else "Review the top movers and anomalies; agree a cut or a budget change with the owner.",
            )
        )
    if not len(data.frame):
        out.append(
            Finding(
                Severity.WARNING,
                f"No {data.query.metric} data for {data.query.period} by {data.query.group_by}",
                source=f"cost:{data.source}",
                evidence=f"{data.pages} page(s) read, no rows in the period",
                next_action="Check the period, metric and group_by (Cost Explorer keeps 13 months; "
                "TAG:<key> needs the tag activated as a cost allocation tag), and ce:GetCostAndUsage access.",
            )
        )
    if data.estimated:
        out.append(
            Finding(
                Severity.INFO,
                "Recent days are estimated by Cost Explorer",
                source="cost-explorer",
                evidence="Estimated=true on some days",
            )
        )
    for note in data.notes:
        out.append(Finding(Severity.INFO, note, source=f"cost:{data.source}"))
    return out


def check_numbers(
    *, budget_monthly: float = 0, anomaly_threshold_pct: float = 30, min_monthly_savings: float = 0
) -> None:
    """Refuse negative thresholds before anything runs (BadInputError)."""
    for name, value in (
        ("budget_monthly", budget_monthly),
        ("anomaly_threshold_pct", anomaly_threshold_pct),
        ("min_monthly_savings", min_monthly_savings),
    ):
        if value < 0:
            raise BadInputError(f"{name}={value} must be >= 0.")
