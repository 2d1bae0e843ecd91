"""AWS cost review: spend and its anomalies, the budget, the CUR at scale, idle resources, a gated cleanup.

The runbook (notebooks/cost_review.ipynb) follows the cost optimization procedure (daily Cost
Explorer reports, allocation tags Environment/Service/Team, budget alerts at 80% and 100%, the
cost reduction checklist) and the weekly cost review (unexpected spending, unused resources,
NAT gateway data transfer). Its steps, in order:

- :func:`prepare`: :func:`inputs` (every parameter validated, BadInputError, exit 2, before
  anything is read) then :func:`connect` (the AWS session and the cost source: Cost Explorer, or
  the CUR when ``cur_path`` is given, through the registry of sources,
  :func:`opslib.aws.cost_model.open_source`), as one :class:`CostReview` every step takes;
- :func:`spend`, :func:`budget`, :func:`spend_findings`: this period and the previous one, days
  above their trailing median, month-to-date and forecast against the budget;
- :func:`cur_analysis`: top resources, allocation tags, NAT usage, the compute mix (only with a
  CUR);
- :func:`idle_scan`, :func:`recommendations`, :func:`savings_estimates`: waste with its monthly
  cost, the checklist items this run's data supports, the Graviton and Fargate Spot estimates
  (from the CUR; "not estimated", None, with Cost Explorer only);
- :func:`cleanup_selection`, :func:`plan_cleanup`, :func:`executor`, :func:`cleaned_ids`: the
  gated cleanup of unassociated Elastic IPs and unattached volumes (read-only unless
  ``dry_run=False`` and approved);
- :func:`summary`: the record (``opslib.record_all``), one typed result.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opslib import clients
from opslib.aws import cost, cost_recommendations, idle
from opslib.aws.cost import Anomaly, BudgetStatus
from opslib.aws.cost_model import (
    CostData,
    CostQuery,
    CostSource,
    CostSourceKind,
    Spend,
    load_spend,
    open_source,
    parse_query,
    source_kind,
)
from opslib.aws.cost_recommendations import (
    Recommendation,
    SavingsEstimate,
    recommend,
    recommendations_frame,
)
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
    "CostReview",
    "CostReviewClients",
    "CostReviewInputs",
    "CostReviewRecord",
    "SpendReview",
    "budget",
    "cleaned_ids",
    "cleanup_selection",
    "connect",
    "cur_analysis",
    "describe",
    "executor",
    "idle_scan",
    "inputs",
    "plan_cleanup",
    "prepare",
    "recommendations",
    "recommendations_frame",
    "record_cleaned",
    "savings_estimates",
    "spend",
    "spend_findings",
    "summary",
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


@dataclass(frozen=True)
class CostReview:
    """A prepared run: the validated inputs and the clients, the cost source already opened.

    What every later step takes, so the notebook never decides which source to read (the
    registry did, in :func:`connect`) and never reshapes a result itself.
    """

    inputs: CostReviewInputs
    clients: CostReviewClients

    @property
    def query(self) -> CostQuery:
        return self.inputs.query

    @property
    def has_cur(self) -> bool:
        return isinstance(self.clients.source, CurSource)

    def describe(self) -> str:
        """One line saying what this run reads: the period, the grouping, the source, the regions."""
        q, c = self.inputs.query, self.clients
        return (
            f"Period {q.period} ({q.days} days, end exclusive), {q.granularity}, by {q.group_by}, "
            f"{q.metric}; source: {c.source.label}; regions: {', '.join(c.regions)}"
        )


def describe(run: CostReview) -> str:
    """One line saying what this run reads (:meth:`CostReview.describe`)."""
    return run.describe()


def prepare(
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
) -> CostReview:
    """The notebook's first call: :func:`inputs` (refused with BadInputError before anything is
    read), then :func:`connect` (the session, and the cost source the registry opens for
    ``cur_path``: the CUR when given, else Cost Explorer)."""
    inp = inputs(
        start=start,
        end=end,
        granularity=granularity,
        group_by=group_by,
        metric=metric,
        cur_path=cur_path,
        budget_monthly=budget_monthly,
        anomaly_threshold_pct=anomaly_threshold_pct,
        regions=regions,
        min_monthly_savings=min_monthly_savings,
        cleanup=cleanup,
        max_cleanup=max_cleanup,
        today=today,
    )
    return CostReview(inp, connect(inp))


# --- 1. spend, anomalies, budget ----------------------------------------------------------------


@dataclass(frozen=True)
class SpendReview:
    """The spend step: this period and the previous one, and the anomaly days."""

    query: CostQuery
    data: Spend
    anomalies: tuple[Anomaly, ...]
    threshold_pct: float

    @property
    def current(self) -> CostData:
        return self.data.current

    @property
    def previous(self) -> CostData:
        return self.data.previous

    def summary(self) -> str:
        cur = self.current
        return (
            f"Total {cur.total:,.2f} {cur.currency} over {self.query.period} ({cur.source}, "
            f"{cur.pages} page(s)); previous period {self.previous.total:,.2f}"
        )

    def by_group(self) -> pd.DataFrame:
        return self.current.by_group()

    def week_over_week(self) -> pd.DataFrame:
        """Groups ranked by the change between the last 7 days and the 7 days before."""
        return cost.week_over_week(self.current)

    def period_over_period(self) -> pd.DataFrame:
        """Groups ranked by the change between the previous period and this one."""
        return cost.period_over_period(self.current, self.previous)

    def anomalies_frame(self) -> pd.DataFrame:
        return cost.anomalies_frame(self.anomalies)

    def top_services(self, n: int = 10) -> list[dict[str, object]]:
        """The top ``n`` groups of this period as ``[{name, cost}]`` (recorded as top_services)."""
        return cost.top_services(self.current, n)


def spend(run: CostReview) -> SpendReview:
    """This period and the previous period of the same length, from the run's cost source, and
    the days above their trailing 14-day median by more than ``anomaly_threshold_pct``."""
    data = load_spend(run.query, run.clients.source)
    found = cost.find_anomalies(data.current, threshold_pct=run.inputs.anomaly_threshold_pct)
    return SpendReview(run.query, data, tuple(found), run.inputs.anomaly_threshold_pct)


def budget(run: CostReview, sp: SpendReview) -> BudgetStatus:
    """Month-to-date and the run-rate forecast against ``budget_monthly`` (80% and 100%)."""
    return cost.budget_status(sp.current, run.inputs.budget_monthly)


def spend_findings(sp: SpendReview, status: BudgetStatus) -> list[Finding]:
    """Findings of the spend step: anomalies per group, the budget, empty or estimated data."""
    return cost.spend_findings(sp.current, sp.anomalies, status)


# --- 2. the CUR at scale ------------------------------------------------------------------------


def cur_analysis(run: CostReview) -> CurReport | None:
    """Top resources, allocation tags, NAT usage, instance types and the compute mix (x86/ARM,
    Fargate on-demand/Spot by environment); None without a CUR."""
    if not isinstance(run.clients.source, CurSource):
        return None
    return analyse(run.clients.source, run.query)


# --- 3. idle and waste, 4. recommendations -------------------------------------------------------


def idle_scan(run: CostReview) -> IdleReport:
    """Every idle check in every region of the run; a failing region or check is a finding."""
    return idle.scan_idle(
        run.clients.regions,
        session=run.clients.session,
        min_monthly_savings=run.inputs.min_monthly_savings,
    )


def recommendations(
    sp: SpendReview, cur: CurReport | None, idle_report: IdleReport
) -> list[Recommendation]:
    """The checklist items this run's data supports, each with its evidence, by savings
    (estimated ones first; "not estimated" is None, never 0)."""
    return recommend(spend=sp.current, cur=cur, idle=idle_report, anomalies=sp.anomalies)


def savings_estimates(sp: SpendReview, cur: CurReport | None) -> list[SavingsEstimate]:
    """Graviton (20% of x86 EC2 + Fargate) and Fargate Spot (up to 70% of non-production
    on-demand Fargate), from the CUR; "not estimated" (None) with Cost Explorer only."""
    return cost_recommendations.savings_estimates(cur, sp.current)


# --- 5. cleanup -----------------------------------------------------------------------------------


def cleanup_selection(run: CostReview, report: IdleReport) -> CleanupSelection:
    """What the "resources to clean up" choice offers, preselected with the ``cleanup`` kinds."""
    return idle.cleanup_selection(report, run.inputs.cleanup)


def plan_cleanup(
    run: CostReview, report: IdleReport, *, only_ids: Sequence[str] | None = None
) -> Plan:
    """The read-only cleanup plan for the chosen resources, within ``max_cleanup``."""
    return idle.plan_cleanup(
        report, run.inputs.cleanup, max_changes=run.inputs.max_cleanup, only_ids=only_ids
    )


def executor(run: CostReview) -> executors.Executor:
    """The ``execute`` for :func:`opslib.safety.gate`: the registered cleanup handlers, bound
    to this run's session, and no other action."""
    return idle.cleanup_executor(session=run.clients.session)


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


# --- 6. the record ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostReviewRecord:
    """What the run records (``opslib.record_all``): each field is a record name, in this order.

    The first thirteen are the runbook's contract since its first version; the estimates
    follow. ``graviton_monthly_savings`` and ``fargate_spot_monthly_savings`` are None when
    not estimated (Cost Explorer only), a number (possibly 0) when the CUR was read.
    """

    period: str
    group_by: str
    source: str
    total_cost: float
    currency: str
    top_services: list[dict[str, object]]
    anomalies: list[dict[str, object]]
    budget: dict[str, object]
    idle_findings: int
    monthly_savings: float
    idle_errors: int
    recommendations: list[str]
    cleaned: list[str]
    savings_estimates: list[dict[str, object]]
    graviton_monthly_savings: float | None
    fargate_spot_monthly_savings: float | None


def summary(
    sp: SpendReview,
    status: BudgetStatus,
    cur: CurReport | None,
    idle_report: IdleReport,
    recs: Sequence[Recommendation],
    result: ApplyResult | None,
) -> CostReviewRecord:
    """The run's key results for ``record.json``, from the typed results of the steps."""
    estimates = {e.item: e for e in savings_estimates(sp, cur)}

    def rounded(item: str) -> float | None:
        v = estimates[item].monthly_savings
        return None if v is None else round(v, 2)

    return CostReviewRecord(
        period=sp.query.period,
        group_by=sp.query.group_by,
        source=str(sp.current.source),
        total_cost=round(sp.current.total, 2),
        currency=sp.current.currency,
        top_services=sp.top_services(),
        anomalies=[a.to_dict() for a in sp.anomalies],
        budget=status.to_frame().to_dict("records")[0],
        idle_findings=len(idle_report.resources),
        monthly_savings=idle_report.monthly_savings,
        idle_errors=len(idle_report.errors),
        recommendations=[r.item for r in recs],
        cleaned=cleaned_ids(result),
        savings_estimates=[e.to_dict() for e in estimates.values()],
        graviton_monthly_savings=rounded(cost_recommendations.GRAVITON_ITEM),
        fargate_spot_monthly_savings=rounded(cost_recommendations.FARGATE_SPOT_ITEM),
    )
