"""AWS cost review: spend and its anomalies, the budget, the CUR at scale, idle resources, a gated cleanup.

The runbook (notebooks/cost_review.ipynb) follows the cost optimization procedure (daily Cost
Explorer reports, allocation tags Environment/Service/Team, budget alerts at 80% and 100%, the
cost reduction checklist) and the weekly cost review (unexpected spending, unused resources,
NAT gateway data transfer). Its steps, in order:

- :func:`inputs`: every parameter validated (BadInputError, exit 2) before anything is read;
- :func:`connect`: the AWS session and the cost source (Cost Explorer, or the CUR when
  ``cur_path`` is given: a registry of sources, :func:`opslib.aws.cost_model.open_source`);
- :func:`spend`, :func:`anomalies`, :func:`budget`, :func:`spend_findings`: this period and the
  previous one, days above their trailing median, month-to-date and forecast against the budget;
- :func:`cur_analysis`: top resources, allocation tags, NAT usage (only with a CUR);
- :func:`idle_scan`, :func:`recommendations`: waste with its monthly cost, and the checklist
  items this run's data supports;
- :func:`cleanup_selection`, :func:`plan_cleanup`, :func:`executor`, :func:`cleaned_ids`: the
  gated cleanup of unassociated Elastic IPs and unattached volumes (read-only unless
  ``dry_run=False`` and approved).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opslib import clients
from opslib.aws import cost, idle
from opslib.aws.cost import Anomaly, BudgetStatus
from opslib.aws.cost_model import (
    CostQuery,
    CostSource,
    CostSourceKind,
    Spend,
    load_spend,
    open_source,
    parse_query,
    source_kind,
)
from opslib.aws.cost_recommendations import Recommendation, recommend, recommendations_frame
from opslib.aws.cur import CurReport, CurSource, analyse
from opslib.aws.idle import CleanupSelection, IdleKind, IdleReport
from opslib.core import executors, recorder
from opslib.core.findings import Finding
from opslib.core.plans import ApplyResult, Plan, parse_csv, unique

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    import pandas as pd
    from boto3 import Session

RUNBOOK = "cost-review"

__all__ = [
    "RUNBOOK",
    "CostReviewClients",
    "CostReviewInputs",
    "anomalies",
    "anomalies_frame",
    "budget",
    "cleaned_ids",
    "cleanup_selection",
    "connect",
    "cur_analysis",
    "describe",
    "executor",
    "idle_scan",
    "inputs",
    "period_over_period",
    "plan_cleanup",
    "recommendations",
    "recommendations_frame",
    "record_cleaned",
    "spend",
    "spend_findings",
    "spend_summary",
    "top_services",
    "week_over_week",
]


@dataclass(frozen=True)
class CostReviewInputs:
    """The validated parameters of one cost review."""

    query: CostQuery
    source: CostSourceKind
    cur_path: str = ""
    budget_monthly: float = 0.0
    anomaly_threshold_pct: float = 30.0
    regions: tuple[str, ...] = ()  # the idle scan's regions; empty: the session's region
    min_monthly_savings: float = 5.0
    cleanup: tuple[IdleKind, ...] = ()
    max_cleanup: int = 20


def inputs(
    *,
    start: str = "",
    end: str = "",
    granularity: str = "DAILY",
    group_by: str = "SERVICE",
    metric: str = "UnblendedCost",
    cur_path: str = "",
    budget_monthly: float = 0,
    anomaly_threshold_pct: float = 30,
    regions: str = "",
    min_monthly_savings: float = 5,
    cleanup: str = "",
    max_cleanup: int = 20,
    today: _dt.date | None = None,
) -> CostReviewInputs:
    """Validate the runbook parameters before anything is read or changed (BadInputError).

    The period, granularity, grouping and metric (one per run), the thresholds (none
    negative) and the cleanup kinds (only those this runbook can clean up). ``cur_path`` is
    checked by :func:`connect`, which opens it.
    """
    query = parse_query(
        start, end, granularity=granularity, group_by=group_by, metric=metric, today=today
    )
    cost.check_numbers(
        budget_monthly=budget_monthly,
        anomaly_threshold_pct=anomaly_threshold_pct,
        min_monthly_savings=min_monthly_savings,
    )
    kinds = idle.parse_cleanup(cleanup)
    return CostReviewInputs(
        query=query,
        source=source_kind(cur_path),
        cur_path=cur_path.strip(),
        budget_monthly=float(budget_monthly),
        anomaly_threshold_pct=float(anomaly_threshold_pct),
        regions=tuple(unique(parse_csv(regions))),
        min_monthly_savings=float(min_monthly_savings),
        cleanup=tuple(kinds),
        max_cleanup=int(max_cleanup),
    )


@dataclass(frozen=True)
class CostReviewClients:
    """The AWS session, the opened cost source, and the regions the idle scan covers."""

    session: Session
    source: CostSource
    regions: tuple[str, ...]


def connect(inp: CostReviewInputs) -> CostReviewClients:
    """The session (standard chain, through :mod:`opslib.clients`) and the cost source.

    Opening a CUR reads only its parquet footers; a missing or malformed CUR is refused here
    (NotFoundError, BadInputError), before any step runs.
    """
    session = clients.aws_session()
    regions = inp.regions or (session.region_name,)
    source = open_source(inp.source, inp.cur_path, session=session)
    return CostReviewClients(session=session, source=source, regions=regions)


def describe(inp: CostReviewInputs, conns: CostReviewClients) -> str:
    """One line saying what this run reads: the period, the grouping, the source, the regions."""
    q = inp.query
    return (
        f"Period {q.period} ({q.days} days, end exclusive), {q.granularity}, by {q.group_by}, "
        f"{q.metric}; source: {conns.source.label}; regions: {', '.join(conns.regions)}"
    )


# --- 1. spend, anomalies, budget ----------------------------------------------------------------


def spend(inp: CostReviewInputs, conns: CostReviewClients) -> Spend:
    """This period and the previous period of the same length, from the run's cost source."""
    return load_spend(inp.query, conns.source)


def spend_summary(inp: CostReviewInputs, data: Spend) -> str:
    cur = data.current
    return (
        f"Total {cur.total:,.2f} {cur.currency} over {inp.query.period} ({cur.source}, "
        f"{cur.pages} page(s)); previous period {data.previous.total:,.2f}"
    )


def anomalies(inp: CostReviewInputs, data: Spend) -> list[Anomaly]:
    """Days above their trailing 14-day median by more than ``anomaly_threshold_pct``."""
    return cost.find_anomalies(data.current, threshold_pct=inp.anomaly_threshold_pct)


def budget(inp: CostReviewInputs, data: Spend) -> BudgetStatus:
    """Month-to-date and the run-rate forecast against ``budget_monthly`` (80% and 100%)."""
    return cost.budget_status(data.current, inp.budget_monthly)


def spend_findings(data: Spend, found: Sequence[Anomaly], status: BudgetStatus) -> list[Finding]:
    """Findings of the spend step: anomalies per group, the budget, empty or estimated data."""
    return cost.spend_findings(data.current, found, status)


def week_over_week(data: Spend) -> pd.DataFrame:
    """Groups ranked by the change between the last 7 days and the 7 days before."""
    return cost.week_over_week(data.current)


def period_over_period(data: Spend) -> pd.DataFrame:
    """Groups ranked by the change between the previous period and this one."""
    return cost.period_over_period(data.current, data.previous)


def anomalies_frame(found: Sequence[Anomaly]) -> pd.DataFrame:
    return cost.anomalies_frame(found)


def top_services(data: Spend, n: int = 10) -> list[dict[str, object]]:
    """The top ``n`` groups of this period as ``[{name, cost}]`` (recorded as top_services)."""
    return cost.top_services(data.current, n)


# --- 2. the CUR at scale ------------------------------------------------------------------------


def cur_analysis(inp: CostReviewInputs, conns: CostReviewClients) -> CurReport | None:
    """Top resources, allocation tags, NAT usage and instance types; None without a CUR."""
    if not isinstance(conns.source, CurSource):
        return None
    return analyse(conns.source, inp.query)


# --- 3. idle and waste, 4. recommendations -------------------------------------------------------


def idle_scan(inp: CostReviewInputs, conns: CostReviewClients) -> IdleReport:
    """Every idle check in every region of the run; a failing region or check is a finding."""
    return idle.scan_idle(
        conns.regions, session=conns.session, min_monthly_savings=inp.min_monthly_savings
    )


def recommendations(
    data: Spend,
    cur: CurReport | None,
    idle_report: IdleReport,
    found: Sequence[Anomaly],
) -> list[Recommendation]:
    """The checklist items this run's data supports, each with its evidence, by savings."""
    return recommend(spend=data.current, cur=cur, idle=idle_report, anomalies=found)


# --- 5. cleanup -----------------------------------------------------------------------------------


def cleanup_selection(inp: CostReviewInputs, report: IdleReport) -> CleanupSelection:
    """What the "resources to clean up" choice offers, preselected with the ``cleanup`` kinds."""
    return idle.cleanup_selection(report, inp.cleanup)


def plan_cleanup(
    inp: CostReviewInputs, report: IdleReport, *, only_ids: Sequence[str] | None = None
) -> Plan:
    """The read-only cleanup plan for the chosen resources, within ``max_cleanup``."""
    return idle.plan_cleanup(report, inp.cleanup, max_changes=inp.max_cleanup, only_ids=only_ids)


def executor(conns: CostReviewClients) -> executors.Executor:
    """The ``execute`` for :func:`opslib.safety.gate`: the registered cleanup handlers, bound
    to this run's session, and no other action."""
    return idle.cleanup_executor(session=conns.session)


def cleaned_ids(result: ApplyResult | None) -> list[str]:
    """The resource ids an apply actually cleaned up (recorded as cleaned)."""
    return idle.cleaned_ids(result)


def record_cleaned(result: ApplyResult | None) -> list[str]:
    """``on_applied`` for :func:`opslib.safety.gate`: records ``cleaned`` when the apply happens.

    Headless, the apply cell itself applies; in JupyterLab the click on "Approve and apply"
    comes later, and this is how its ids still reach the evidence.
    """
    ids = cleaned_ids(result)
    recorder.record("cleaned", ids)
    return ids
