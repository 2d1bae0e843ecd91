"""Figures for the cost review: stacked daily spend with anomalies marked, and the budget gauge.

matplotlib only, no clients: these draw what :mod:`opslib.aws.cost` computed. The spend chart
stacks the top groups (the rest as "Other") so a spike reads as one band growing, and marks
each anomaly day with its group; the budget chart puts month-to-date, the run-rate forecast
and the 80%/100% alert thresholds on one bar.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from opslib.aws.cost_recommendations import recommendations_frame
from opslib.report import _display, show_skipped, show_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.figure import Figure

    from opslib.aws.cost import Anomaly, BudgetStatus
    from opslib.aws.cost_model import CostData
    from opslib.aws.cost_recommendations import Recommendation
    from opslib.aws.cur import CurReport
    from opslib.aws.idle import IdleReport
    from opslib.core.plans import ApplyResult
    from opslib.runbooks.cost_review import SpendReview


def spend_figure(
    data: CostData, anomalies: Iterable[Anomaly] = (), *, top: int = 8, title: str = ""
) -> Figure:
    """Stacked daily spend by group (top ``top`` + Other), anomaly days marked in red."""
    import matplotlib.pyplot as plt

    daily = data.daily()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    if daily.shape[1] == 0:
        ax.text(
            0.5,
            0.5,
            "no cost data for the period",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    else:
        shown = daily.iloc[:, :top].copy()
        if daily.shape[1] > top:
            shown["Other"] = daily.iloc[:, top:].sum(axis=1)
        ax.stackplot(
            shown.index, shown.T.to_numpy(), labels=[str(c)[:40] for c in shown.columns], alpha=0.85
        )
        totals = daily.sum(axis=1)
        marked = set()
        for a in anomalies:
            day = totals.index[totals.index.strftime("%Y-%m-%d") == a.date]
            if not len(day):
                continue
            y = float(totals[day[0]])
            ax.scatter(
                [day[0]],
                [y],
                color="red",
                marker="v",
                s=60,
                zorder=5,
                label="anomaly" if not marked else None,
            )
            if a.group not in marked:
                ax.annotate(
                    str(a.group)[:28],
                    (day[0], y),
                    textcoords="offset points",
                    xytext=(0, 8),
                    ha="center",
                    fontsize=8,
                    color="red",
                )
            marked.add(a.group)
        ax.set_ylim(0, float(totals.max()) * 1.18 or 1)  # room for the anomaly labels
        ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax.set_ylabel(f"{data.query.metric} ({data.currency})")
    ax.set_title(
        title or f"Daily spend by {data.query.group_by}, {data.query.period} ({data.source})"
    )
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def budget_figure(status: BudgetStatus) -> Figure:
    """One horizontal bar: month-to-date, forecast, and the 80%/100% budget lines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 1.8))
    ax.barh([0], [status.forecast], color="#f4b183", label=f"forecast {status.forecast:,.0f}")
    ax.barh(
        [0],
        [status.month_to_date],
        color="#5b9bd5",
        label=f"month to date {status.month_to_date:,.0f}",
    )
    if status.budget > 0:
        for pct, style in ((80, ":"), (100, "-")):
            x = status.budget * pct / 100
            ax.axvline(x, color="red", linestyle=style, linewidth=1.5)
            ax.text(x, 0.45, f"{pct}%", color="red", ha="center", fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(0, max(status.forecast, status.budget, 1) * 1.1)
    ax.set_title(f"Budget {status.month}: {status.message}", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def show_figure(fig: Figure) -> None:
    """Display a figure once (inline in the notebook and the HTML) and free it."""
    import matplotlib.pyplot as plt

    _display(fig)
    plt.close(fig)


def show_spend(spend: SpendReview) -> None:
    """The spend step: the stacked daily chart with anomalies, the totals line, spend by group."""
    show_figure(spend_figure(spend.current, spend.anomalies))
    print(spend.summary())
    show_table(spend.by_group(), title=f"Spend by {spend.query.group_by}", max_rows=15)


def show_movers(spend: SpendReview) -> None:
    """Week over week, period over period, and the anomaly days."""
    show_table(spend.week_over_week(), title="Week over week")
    show_table(
        spend.period_over_period(),
        title=f"Period over period (previous: {spend.query.previous().period})",
    )
    show_table(
        spend.anomalies_frame(),
        title=f"Anomalies (> {spend.threshold_pct:g}% above the trailing median)",
    )


def show_budget(status: BudgetStatus) -> None:
    show_figure(budget_figure(status))


def show_cur(cur_report: CurReport | None) -> None:
    """The CUR step's tables, or the visible 'skipped: no cur_path given' line."""
    if cur_report is None:
        show_skipped("cur_path")
        return
    show_table(cur_report.top_resources, title="Top resources by cost")
    show_table(cur_report.tags, title="Cost by allocation tag (Environment, Service, Team)")
    show_table(cur_report.instance_types, title="EC2 instance types by cost", max_rows=15)
    if cur_report.compute is not None:
        mix = (
            cur_report.compute.groupby(["kind", "arch"], as_index=False)["cost"]
            .sum()
            .sort_values("cost", ascending=False, kind="stable")
        )
        show_table(mix, title="Compute by kind and architecture (Graviton, Fargate Spot)")
    print(
        f"NAT gateway usage over the period: {cur_report.nat_cost:,.2f}; source: {cur_report.source}"
    )


def show_idle(report: IdleReport) -> None:
    """Idle resources with their monthly cost (and the price table's date), and the kinds."""
    p = report.prices
    show_table(
        report.to_frame(),
        title=f"Idle resources: ~{report.monthly_savings:,.2f} {p.currency}/month "
        f"(prices as of {p.as_of}, {p.region})",
    )
    show_table(report.by_kind(), title="By kind")


def show_recommendations(recs: Sequence[Recommendation]) -> None:
    """The checklist items with their evidence; a saving the data cannot estimate says so."""
    show_table(recommendations_frame(recs), title="Recommendations")


def show_applied(result: ApplyResult | None) -> None:
    show_table(result.to_frame() if result else None, title="Applied changes")
