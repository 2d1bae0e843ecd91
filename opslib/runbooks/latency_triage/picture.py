"""The latency picture: the ALB's percentiles, the alarm as CloudWatch evaluates it, the 5xx of
the targets and of the load balancer itself, and whether the breach is a plain load spike.

A breach is a run of at least ``alarm_minutes`` consecutive periods with p99 above the
threshold; shorter runs are spikes, reported as such (INFO), never as the alarm. The error rate
is the worst over any ``alarm_minutes`` window holding at least ``min_requests`` requests.
Target 5xx (the application answered 5xx) and load-balancer 5xx (502/503/504 the ALB generated
because targets were gone or too slow) are counted separately: they point at different fixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opslib.core.findings import Finding, Severity, skipped_finding
from opslib.runbooks.latency_triage import alarm
from opslib.runbooks.latency_triage.inputs import TriageInputs
from opslib.runbooks.latency_triage.signals import Metrics, col, no_data
from opslib.runbooks.latency_triage.thresholds import (
    ERROR_RATE_CRIT_PCT,
    ERROR_RATE_WARN_PCT,
    LOAD_SPIKE_RATIO,
    LOAD_SPIKE_SCALE_OUT_BY,
    P95_ALERT_MS,
    P99_CRITICAL_MS,
)

#: the parameters that name what a rerun must read again (the scale-out proposal repeats them)
_SOURCE_PARAMS = (
    "window_minutes",
    "threshold_ms",
    "load_balancer",
    "ecs_cluster",
    "ecs_service",
    "db_cluster",
    "cache_cluster",
    "pg_dsn",
    "k8s_namespace",
    "k8s_selector",
    "region",
)


@dataclass(frozen=True)
class LatencyPicture:
    """ALB latency and errors over the window: sustained breaches (the alarm) and spikes."""

    load_balancer: str
    threshold_ms: float
    frame: Any  # DataFrame: p50/p90/p95/p99_ms, requests, target_5xx, elb_5xx, errors_5xx, error_rate_pct
    p99_ms: float | None  # peak in the window
    breach_minutes: int  # minutes inside sustained breaches (runs >= alarm_minutes)
    longest_breach_minutes: int
    breaches: tuple[tuple[str, str], ...]  # (start, end) ISO of each sustained breach
    p99_stat: str  # "p99" or "Maximum" when the endpoint rejected percentiles
    findings: tuple[Finding, ...] = ()
    skipped: bool = False
    alarm_minutes: int = 5
    spike_minutes: int = 0  # minutes above the threshold in runs too short for the alarm
    spikes: tuple[tuple[str, str], ...] = ()
    p95_ms: float | None = None
    error_rate_pct: float | None = None  # worst sustained (target + ELB) 5xx rate
    target_5xx: int = 0
    elb_5xx: int = 0
    load_spike_ratio: float | None = None  # requests during the breach / before it
    rerun: dict[str, Any] = field(default_factory=dict)  # the scale-out proposal's parameters

    @property
    def alarm(self) -> bool:
        """True when the alarm's condition held: p99 above the threshold for alarm_minutes."""
        return bool(self.breaches)


def _empty(
    inp: TriageInputs, findings: tuple[Finding, ...], skipped: bool = False
) -> LatencyPicture:
    import pandas as pd

    return LatencyPicture(
        inp.load_balancer,
        inp.threshold_ms,
        pd.DataFrame(),
        None,
        0,
        0,
        (),
        "",
        findings,
        skipped=skipped,
        alarm_minutes=inp.alarm_minutes,
    )


def rerun_parameters(
    inp: TriageInputs, scale_out_by: int = LOAD_SPIKE_SCALE_OUT_BY
) -> dict[str, Any]:
    """The parameters of this run that name its sources, plus the proposed ``scale_out_by``."""
    defaults = TriageInputs()
    out = {
        k: getattr(inp, k)
        for k in _SOURCE_PARAMS
        if getattr(inp, k) != getattr(defaults, k) and getattr(inp, k) != ""
    }
    out["scale_out_by"] = scale_out_by
    return out


def rerun_command(params: dict[str, Any]) -> str:
    """``opslib run latency-triage -p name value ...`` for the proposal (dry run: shows the plan)."""
    import shlex

    parts = ["opslib", "run", "latency-triage"]
    for k, v in params.items():
        parts += ["-p", k, shlex.quote(str(v))]
    return " ".join(parts)


def _load_spike(
    inp: TriageInputs, frame, sustained: list[alarm.Run]
) -> tuple[float | None, Finding | None, dict]:
    """Requests during the sustained breaches against the periods before the first one."""
    if not sustained or "requests" not in frame:
        return None, None, {}
    req = frame["requests"].dropna()
    before = req[req.index < sustained[0].start]
    during = [req.loc[r.start : r.end] for r in sustained]
    import pandas as pd

    during_s = pd.concat(during) if during else req.iloc[0:0]
    if len(before) < 3 or not len(during_s) or float(before.mean()) <= 0:
        return None, None, {}
    ratio = round(float(during_s.mean()) / float(before.mean()), 2)
    if ratio < LOAD_SPIKE_RATIO:
        return ratio, None, {}
    per_min = 60 / inp.period
    evidence = (
        f"{during_s.mean() * per_min:.0f} requests/min during the breach vs "
        f"{before.mean() * per_min:.0f}/min before it (x{ratio:.2f}; a load spike from x{LOAD_SPIKE_RATIO})"
    )
    if inp.scale_out_by:
        return (
            ratio,
            Finding(
                Severity.WARNING,
                f"Load spike: requests x{ratio:.2f} during the breach",
                "load",
                evidence,
                f"scale_out_by={inp.scale_out_by} is in the remediation plan below.",
                {"load_ratio": ratio},
            ),
            {},
        )
    params = rerun_parameters(inp)
    cmd = rerun_command(params)
    return (
        ratio,
        Finding(
            Severity.WARNING,
            f"Load spike: requests x{ratio:.2f} during the breach",
            "load",
            evidence,
            f"If nothing above explains it (no blocking session, restarting tasks, DB or cache load), "
            f"scale out the ECS service desired count +{LOAD_SPIKE_SCALE_OUT_BY}: rerun with "
            f"scale_out_by={LOAD_SPIKE_SCALE_OUT_BY} ({cmd}); the dry run shows the plan, then add "
            "-p dry_run False -p approved_by <you> to apply.",
            {"load_ratio": ratio, "rerun": params},
        ),
        params,
    )


def latency_picture(inp: TriageInputs, metrics: Metrics) -> LatencyPicture:
    """p50/p90/p95/p99 in ms, sustained breaches and spikes, 5xx (target and ELB), load spike."""
    import pandas as pd

    if not inp.load_balancer:
        return _empty(inp, (skipped_finding("alb", "load_balancer"),), skipped=True)
    if metrics.series is None:
        return _empty(inp, metrics.findings)
    frame = pd.DataFrame(
        {
            "p50_ms": col(metrics, "alb_p50") * 1000,
            "p90_ms": col(metrics, "alb_p90") * 1000,
            "p95_ms": col(metrics, "alb_p95") * 1000,
            "p99_ms": col(metrics, "alb_p99") * 1000,
            "requests": col(metrics, "alb_requests"),
            "target_5xx": col(metrics, "alb_5xx"),
            "elb_5xx": col(metrics, "alb_elb_5xx"),
        }
    )
    frame = frame.dropna(how="all")
    frame["errors_5xx"] = frame["target_5xx"].fillna(0) + frame["elb_5xx"].fillna(0)
    req = frame["requests"].where(frame["requests"] > 0)
    frame["error_rate_pct"] = (frame["errors_5xx"] / req * 100).round(2)
    p99_stat = metrics.series.stats.get("alb_p99", "p99")
    found: list[Finding] = []
    p99 = frame["p99_ms"].dropna()
    sustained, spikes = alarm.split_runs(
        p99, inp.threshold_ms, alarm_minutes=inp.alarm_minutes, period_s=inp.period
    )
    breach_minutes = sum(r.minutes for r in sustained)
    spike_minutes = sum(r.minutes for r in spikes)
    longest = max((r.minutes for r in sustained), default=0)
    peak = float(p99.max()) if len(p99) else None
    measured = (
        "p99" if p99_stat == "p99" else f"{p99_stat} (endpoint rejected p99; an upper bound of p99)"
    )
    spike_text = (
        f"{len(spikes)} isolated spike(s) ({spike_minutes} min) shorter than the alarm's "
        f"{inp.alarm_minutes} min"
        if spikes
        else "no isolated spikes"
    )
    if peak is None:
        found.append(
            no_data("alb", f"ALB {inp.load_balancer}", metrics, "alb_p99", "TargetResponseTime")
        )
    elif sustained:
        worst = max(sustained, key=lambda r: alarm.sustained_min(p99, r))
        floor = alarm.sustained_min(p99, worst)
        crit = any(
            r.periods >= alarm.datapoints_to_alarm(inp.alarm_minutes, inp.period)
            for r in alarm.runs(alarm.grid(p99, inp.period) > P99_CRITICAL_MS, inp.period)
        )
        last = sustained[-1]
        found.append(
            Finding(
                Severity.CRITICAL if crit else Severity.WARNING,
                f"ALB p99 above {inp.threshold_ms:.0f} ms for {longest} consecutive min "
                f"(alarm: {inp.alarm_minutes} min), peak {peak:.0f} ms",
                "alb",
                f"{measured}; {len(sustained)} sustained breach(es), {breach_minutes} min in all, "
                f"the last from {last.start:%H:%M} to {last.end:%H:%M} UTC; p99 stayed above "
                f"{floor:.0f} ms through the worst one; {spike_text}",
                "Find the cause below (blocking sessions, restarting tasks/pods, DB CPU, cache); "
                f"for a plain load spike scale the ECS service desired count +{LOAD_SPIKE_SCALE_OUT_BY}.",
                {
                    "p99_ms": peak,
                    "breach_minutes": breach_minutes,
                    "longest_breach_minutes": longest,
                },
            )
        )
    elif spikes:
        found.append(
            Finding(
                Severity.INFO,
                f"ALB p99 spiked to {peak:.0f} ms but never stayed above {inp.threshold_ms:.0f} ms "
                f"for {inp.alarm_minutes} min (no alarm)",
                "alb",
                f"{measured}; {spike_text}; longest spike {max(r.minutes for r in spikes)} min",
                "Isolated spikes are not the alarm: watch them; if they grow into a sustained breach "
                "the checks below say where.",
                {"p99_ms": peak, "spike_minutes": spike_minutes},
            )
        )
    else:
        found.append(
            Finding(
                Severity.OK,
                f"ALB p99 peaked at {peak:.0f} ms, under {inp.threshold_ms:.0f} ms",
                "alb",
                measured,
            )
        )
    p95 = frame["p95_ms"].dropna()
    p95_peak = float(p95.max()) if len(p95) else None
    if len(p95) and metrics.series.stats.get("alb_p95", "p95") == "p95":
        p95_runs, _ = alarm.split_runs(
            p95, P95_ALERT_MS, alarm_minutes=inp.alarm_minutes, period_s=inp.period
        )
        if p95_runs:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"ALB p95 above {P95_ALERT_MS:.0f} ms for {max(r.minutes for r in p95_runs)} "
                    "consecutive min",
                    "alb",
                    f"peak p95 {p95_peak:.0f} ms (response time alert: p95 > 1 s)",
                    "Most requests are slow, not only the tail: look at the shared dependencies below.",
                    {"p95_ms": p95_peak},
                )
            )
    rate = None
    target_5xx = int(frame["target_5xx"].fillna(0).sum())
    elb_5xx = int(frame["elb_5xx"].fillna(0).sum())
    if not metrics.has("alb_requests"):
        found.append(
            no_data("alb", f"ALB {inp.load_balancer}", metrics, "alb_requests", "RequestCount")
        )
    else:
        er = alarm.sustained_error_rate(
            frame["errors_5xx"],
            frame["requests"],
            alarm_minutes=inp.alarm_minutes,
            period_s=inp.period,
            min_requests=inp.min_requests,
        )
        rate = er.rate_pct
        split = f"{target_5xx} target 5xx and {elb_5xx} load-balancer 5xx of {frame['requests'].sum():.0f} requests in the window"
        if rate is None:
            found.append(
                Finding(
                    Severity.INFO,
                    f"ALB 5xx rate not judged: no {inp.alarm_minutes}-min window had {inp.min_requests} requests",
                    "alb",
                    f"{split}; worst single period {er.peak_minute_pct:.1f}%",
                    "Too little traffic for a rate; lower min_requests to judge it anyway.",
                )
            )
        elif rate >= ERROR_RATE_WARN_PCT:
            found.append(
                Finding(
                    Severity.CRITICAL if rate >= ERROR_RATE_CRIT_PCT else Severity.WARNING,
                    f"ALB 5xx rate {rate:.1f}% over {inp.alarm_minutes} min",
                    "alb",
                    f"worst window to {er.window_end:%H:%M} UTC: {er.errors:.0f} of {er.requests:.0f} requests; "
                    f"{split}; worst single period {er.peak_minute_pct:.1f}%",
                    "Check the application logs in CloudWatch; roll back the deployment if a change is recent.",
                    {"error_rate_pct": rate, "target_5xx": target_5xx, "elb_5xx": elb_5xx},
                )
            )
        else:
            found.append(
                Finding(
                    Severity.OK,
                    f"ALB 5xx rate {rate:.1f}% over {inp.alarm_minutes} min at worst",
                    "alb",
                    f"{split}; worst single period {er.peak_minute_pct:.1f}%",
                )
            )
        if elb_5xx:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"Load balancer generated {elb_5xx} 5xx (502/503/504) itself",
                    "alb",
                    f"HTTPCode_ELB_5XX_Count {elb_5xx} beside {target_5xx} target 5xx",
                    "The ALB had no healthy or fast-enough target: check the target group's healthy "
                    "host count and the ECS tasks / pods below.",
                    {"elb_5xx": elb_5xx},
                )
            )
    ratio, spike_finding, rerun = _load_spike(inp, frame, sustained)
    if spike_finding is not None:
        found.append(spike_finding)
    return LatencyPicture(
        load_balancer=inp.load_balancer,
        threshold_ms=inp.threshold_ms,
        frame=frame,
        p99_ms=peak,
        breach_minutes=breach_minutes,
        longest_breach_minutes=longest,
        breaches=tuple((r.start.isoformat(), r.end.isoformat()) for r in sustained),
        p99_stat=p99_stat,
        findings=tuple(found),
        alarm_minutes=inp.alarm_minutes,
        spike_minutes=spike_minutes,
        spikes=tuple((r.start.isoformat(), r.end.isoformat()) for r in spikes),
        p95_ms=p95_peak,
        error_rate_pct=rate,
        target_5xx=target_5xx,
        elb_5xx=elb_5xx,
        load_spike_ratio=ratio,
        rerun=rerun,
    )
