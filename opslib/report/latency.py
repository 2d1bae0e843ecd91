"""Figures and tables of the high-latency triage. Imports no client: it shows what it is given.

One chart answers "how bad, since when": p99 against the threshold with the sustained breaches
(the alarm) shaded and isolated spikes marked apart, and the 5xx rate (target and load balancer)
beneath on the same time axis (a latency breach with a 5xx bump points at the targets, one
without at a slow dependency).
"""

from __future__ import annotations

from typing import Any

from opslib.k8s.events import events_frame
from opslib.k8s.workloads import pods_frame
from opslib.report import _display, show_findings, show_heading, show_table


def latency_figure(picture: Any):
    """The matplotlib Figure for a :class:`opslib.runbooks.latency_triage.LatencyPicture` (None without data)."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    frame = picture.frame
    if frame is None or len(frame) == 0 or frame["p99_ms"].notna().sum() == 0:
        return None
    p99 = frame["p99_ms"]
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    label = "p99" if picture.p99_stat in ("p99", "") else f"{picture.p99_stat} (p99 rejected)"
    ax1.plot(frame.index, p99, color="tab:red", lw=1.8, label=f"TargetResponseTime {label}")
    if frame["p50_ms"].notna().any() and picture.p99_stat == "p99":
        ax1.plot(frame.index, frame["p50_ms"], color="tab:blue", lw=1, alpha=0.7, label="p50")
        if "p95_ms" in frame and frame["p95_ms"].notna().any():
            ax1.plot(frame.index, frame["p95_ms"], color="tab:purple", lw=1, alpha=0.7, label="p95")
    ax1.axhline(
        picture.threshold_ms,
        color="black",
        ls="--",
        lw=1,
        label=f"threshold {picture.threshold_ms:.0f} ms",
    )
    import pandas as pd

    hot = pd.Series(False, index=frame.index)
    for start, end in picture.breaches:  # the sustained breaches only: spikes are not the alarm
        hot |= (frame.index >= pd.Timestamp(start)) & (frame.index <= pd.Timestamp(end))
    for start, _end in getattr(picture, "spikes", ()):
        ax1.axvline(pd.Timestamp(start), color="tab:orange", lw=1, ls=":", alpha=0.9)
    ax1.fill_between(
        frame.index,
        0,
        1,
        where=hot.to_numpy(),
        transform=ax1.get_xaxis_transform(),
        color="tab:red",
        alpha=0.12,
        step="mid",
        label=f"breach (>= {getattr(picture, 'alarm_minutes', 5)} min)",
    )
    ax2.fill_between(
        frame.index,
        0,
        1,
        where=hot.to_numpy(),
        transform=ax2.get_xaxis_transform(),
        color="tab:red",
        alpha=0.12,
        step="mid",
    )
    ax1.set_ylabel("ms")
    ax1.set_ylim(bottom=0)
    ax1.legend(loc="upper left", fontsize=8)
    peak = f"{picture.p99_ms:.0f} ms" if picture.p99_ms is not None else "n/a"
    ax1.set_title(
        f"{picture.load_balancer}: p99 peak {peak}, {picture.breach_minutes} min in sustained "
        f"breaches, {getattr(picture, 'spike_minutes', 0)} min of spikes"
    )
    rate = frame["error_rate_pct"]
    ax2.bar(
        frame.index,
        rate.fillna(0),
        width=(1 / 24 / 60) * 0.8,
        color="tab:orange",
        label="5xx rate (target + ELB)",
    )
    ax2.set_ylabel("5xx %")
    ax2.set_ylim(bottom=0)
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax2.set_xlabel("UTC")
    fig.tight_layout()
    return fig


def show_latency(picture: Any) -> None:
    """Chart (inline), the per-period table's worst rows, and the ALB findings."""
    if picture.skipped:
        show_findings(picture.findings, title="Latency picture")
        print("skipped: no load_balancer given")
        return
    fig = latency_figure(picture)
    if fig is not None:
        import matplotlib.pyplot as plt

        _display(fig)
        plt.close(fig)
    else:
        print("no latency datapoints to chart")
    if len(picture.frame):
        worst = picture.frame.sort_values("p99_ms", ascending=False).head(5).round(1)
        show_table(worst, title="Worst periods")
    show_findings(picture.findings, title="Latency findings")


def _skips(findings) -> None:
    for f in findings:
        if f.title.startswith("skipped: "):
            print(f.title)


def show_services(check: Any) -> None:
    """ECS service table and stopped tasks; Kubernetes pods and Warning events."""
    _skips(check.findings)
    if check.ecs is not None:
        show_table(check.ecs.to_frame(), title="ECS service")
    util = getattr(check, "utilisation", None)
    if util is not None and len(util):
        show_table(util.tail(5), title="ECS service CPU and memory (last 5 periods)")
    if check.ecs is not None:
        show_table(check.ecs.stopped_frame(), title="ECS recently stopped tasks", max_rows=10)
    if check.pods:
        show_table(pods_frame(check.pods), title="Kubernetes pods")
    if check.events:
        show_table(events_frame(check.events), title="Kubernetes Warning events", max_rows=15)
    show_findings(
        [f for f in check.findings if not f.title.startswith("skipped: ")], title="Service findings"
    )


def show_database(check: Any) -> None:
    """Aurora/RDS metrics, then the PostgreSQL blocking tree, long queries, idle transactions."""
    _skips(check.findings)
    if len(check.frame):
        show_table(
            check.frame.tail(5), title=f"Aurora/RDS metrics (last 5 periods, {check.dimension})"
        )
    a = check.activity
    if a is not None:
        show_table(a.blocking_frame(), title="Blocking tree (root blockers marked)")
        show_table(
            a.long_queries_frame(), title=f"Queries running longer than {a.long_query_seconds}s"
        )
        show_table(a.idle_frame(), title="Sessions idle in transaction")
        show_table(a.connections_frame(), title="Connections")
        if a.statements:
            show_table(a.statements_frame(), title="Top statements by mean time")
        else:
            print(a.statements_note)
    show_findings(
        [f for f in check.findings if not f.title.startswith("skipped: ")],
        title="Database findings",
    )


def show_cache(check: Any) -> None:
    """ElastiCache evictions, CPU and connections."""
    _skips(check.findings)
    if len(check.frame):
        show_table(check.frame.tail(5), title=f"ElastiCache {check.cache_cluster} (last 5 periods)")
    show_findings(
        [f for f in check.findings if not f.title.startswith("skipped: ")], title="Cache findings"
    )


def show_verdict(v: Any) -> None:
    """All findings ranked, then the verdict in bold."""
    show_findings(v.findings, title="All findings, most urgent first")
    show_heading(f"Verdict: {v.line}")
    if getattr(v, "rerun", None):
        print("Load spike: to plan the +2 scale-out, run again with", v.rerun)


__all__ = [
    "latency_figure",
    "show_cache",
    "show_database",
    "show_latency",
    "show_services",
    "show_verdict",
]
