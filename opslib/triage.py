"""High-latency triage: where does the time go? One answer from every source, ranked.

The runbook (notebooks/latency_triage.ipynb) follows seed 000 "Handling High Latency Alarms"
with 003 §2.1, 001 §3.1/§4.1/§4.3/§8.1, 002 and 004: the latency picture from the ALB, the
service health (ECS tasks, Kubernetes pods and events), the database (Aurora/RDS metrics and
PostgreSQL sessions and locks), the cache (ElastiCache), then a verdict and a gated remediation.

Every source is optional: one left empty is skipped with a visible "skipped: no X given"
finding; one that fails (unreachable, access denied, no data) becomes a finding with its error
and the triage goes on. All CloudWatch series are fetched in ONE GetMetricData call (up to 500
queries per call).

Ranking: by severity first; among equally severe findings, causes before symptoms (blocking
sessions, then pods, ECS tasks, database and cache load, and the ALB latency itself last),
because the on-call engineer needs the thing to act on, not the alarm they already know.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opslib.aws.cloudwatch import MetricQuery, MetricSeries, get_metrics
from opslib.core.errors import BadInputError, OpslibError
from opslib.core.findings import RANK, Finding, Severity, error_finding, skipped_finding
from opslib.core.plans import ApplyResult, Change, ChangeOutcome, ChangeStatus, Plan

#: seed 001 §8.1 thresholds
P99_CRITICAL_MS = 1000.0
ERROR_RATE_WARN_PCT = 1.0
ERROR_RATE_CRIT_PCT = 5.0
CPU_WARN_PCT = 80.0  # seed 000: "Is Aurora CPU > 80%?"
CPU_CRIT_PCT = 90.0
EVICTIONS_PER_MIN_WARN = 100.0  # seed 000: "Is Redis Eviction count high?"
ALARM_MINUTES = 5  # seed 000: HighLatency > 500 ms for 5 minutes

#: causes before symptoms among findings of equal severity
CAUSE_ORDER = {"postgres": 0, "k8s": 1, "ecs": 2, "rds": 3, "cache": 4, "alb": 5, "aws": 6}


# --- inputs and connections ------------------------------------------------------------------


@dataclass(frozen=True)
class TriageInputs:
    """The validated parameters of one triage, with the window fixed at validation time."""

    window_minutes: int = 60
    threshold_ms: float = 500.0
    load_balancer: str = ""
    ecs_cluster: str = ""
    ecs_service: str = ""
    db_cluster: str = ""
    cache_cluster: str = ""
    pg_dsn: str = ""
    k8s_namespace: str = ""
    k8s_selector: str = ""
    long_query_seconds: int = 300
    terminate_blocking: bool = False
    max_terminations: int = 1
    scale_out_by: int = 0
    region: str = ""
    period: int = 60
    end: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))

    @property
    def start(self) -> _dt.datetime:
        return self.end - _dt.timedelta(minutes=self.window_minutes)

    @property
    def wants_aws(self) -> bool:
        return bool(self.load_balancer or self.db_cluster or self.cache_cluster or self.ecs_service)


def inputs(
    *,
    window_minutes: int = 60,
    threshold_ms: float = 500,
    load_balancer: str = "",
    ecs_cluster: str = "",
    ecs_service: str = "",
    db_cluster: str = "",
    cache_cluster: str = "",
    pg_dsn: str = "",
    k8s_namespace: str = "",
    k8s_selector: str = "",
    long_query_seconds: int = 300,
    terminate_blocking: bool = False,
    max_terminations: int = 1,
    scale_out_by: int = 0,
    region: str = "",
) -> TriageInputs:
    """Validate the runbook parameters before anything is read or changed (BadInputError)."""
    from opslib.clients import refuse_password_in_conninfo

    refuse_password_in_conninfo(pg_dsn, parameter="pg_dsn")
    problems = []
    if not 5 <= int(window_minutes) <= 24 * 60:
        problems.append(f"window_minutes={window_minutes}: use 5..1440 (the alarm needs 5 minutes)")
    if float(threshold_ms) <= 0:
        problems.append(
            f"threshold_ms={threshold_ms}: use a positive latency in milliseconds, e.g. 500"
        )
    if int(long_query_seconds) < 0:
        problems.append(f"long_query_seconds={long_query_seconds}: use 0 or more seconds")
    if int(max_terminations) < 0:
        problems.append(
            f"max_terminations={max_terminations}: use 0 or more (0 terminates nothing)"
        )
    if int(scale_out_by) < 0:
        problems.append(
            f"scale_out_by={scale_out_by}: use 0 (no scaling) or a positive number of tasks/replicas"
        )
    if bool(ecs_cluster) != bool(ecs_service):
        problems.append(
            "ecs_cluster and ecs_service go together: give both, or neither to skip ECS"
        )
    if k8s_selector and not k8s_namespace:
        problems.append("k8s_selector needs k8s_namespace (e.g. k8s_namespace='fintech-banking')")
    if load_balancer and not load_balancer.startswith(("app/", "net/")):
        problems.append(
            f"load_balancer={load_balancer!r}: give the ALB dimension 'app/<name>/<id>'"
        )
    if problems:
        raise BadInputError(
            "Bad parameters, nothing was read or changed: " + "; ".join(problems) + "."
        )
    return TriageInputs(
        window_minutes=int(window_minutes),
        threshold_ms=float(threshold_ms),
        load_balancer=load_balancer.strip(),
        ecs_cluster=ecs_cluster.strip(),
        ecs_service=ecs_service.strip(),
        db_cluster=db_cluster.strip(),
        cache_cluster=cache_cluster.strip(),
        pg_dsn=pg_dsn.strip(),
        k8s_namespace=k8s_namespace.strip(),
        k8s_selector=k8s_selector.strip(),
        long_query_seconds=int(long_query_seconds),
        terminate_blocking=bool(terminate_blocking),
        max_terminations=int(max_terminations),
        scale_out_by=int(scale_out_by),
        region=region.strip(),
    )


@dataclass(frozen=True)
class Connections:
    """Clients for the sources that were given; a source that could not connect is None plus a finding."""

    cloudwatch: Any = None
    ecs: Any = None
    k8s: Any = None
    pg: Any = None
    findings: tuple[Finding, ...] = ()

    def close(self) -> None:
        if self.pg is not None and not self.pg.closed:
            self.pg.close()


def connect(inp: TriageInputs, *, runbook: str = "latency-triage") -> Connections:
    """Build the clients through :mod:`opslib.clients`; failures become error findings."""
    from opslib import clients

    out: dict[str, Any] = {}
    found: list[Finding] = []
    if inp.wants_aws:
        try:
            session = clients.aws_session(region=inp.region)
            out["cloudwatch"] = clients.aws_client("cloudwatch", session=session, region=inp.region)
            if inp.ecs_service:
                out["ecs"] = clients.aws_client("ecs", session=session, region=inp.region)
        except OpslibError as exc:
            found.append(error_finding("aws", exc))
    if inp.k8s_namespace:
        try:
            out["k8s"] = clients.k8s_api()
        except OpslibError as exc:
            found.append(error_finding("k8s", exc))
    if inp.pg_dsn:
        try:
            out["pg"] = clients.pg_connect(inp.pg_dsn, runbook=runbook, connect_timeout=5)
        except OpslibError as exc:
            found.append(
                error_finding(
                    "postgres",
                    exc,
                    next_action=(
                        "Check pg_dsn (host, port, dbname), that the server is up, and that the password "
                        "is in PGPASSWORD or ~/.pgpass."
                    ),
                )
            )
    return Connections(findings=tuple(found), **out)


# --- metrics ---------------------------------------------------------------------------------


_RDS_DIMS = (("c", "DBClusterIdentifier"), ("i", "DBInstanceIdentifier"))
_RDS_METRICS = (
    ("cpu", "CPUUtilization", "Average"),
    ("conns", "DatabaseConnections", "Average"),
    ("read", "ReadLatency", "Average"),
    ("write", "WriteLatency", "Average"),
)
_CACHE_METRICS = (
    ("evictions", "Evictions", "Sum"),
    ("cpu", "CPUUtilization", "Average"),
    ("engine_cpu", "EngineCPUUtilization", "Average"),
    ("conns", "CurrConnections", "Average"),
)


def metric_queries(inp: TriageInputs) -> list[MetricQuery]:
    """Every CloudWatch series the triage needs, for one GetMetricData call."""
    qs: list[MetricQuery] = []
    p = inp.period
    if inp.load_balancer:
        lb = {"LoadBalancer": inp.load_balancer}
        ns = "AWS/ApplicationELB"
        for stat in ("p50", "p90", "p99"):
            qs.append(
                MetricQuery(
                    f"alb_{stat}",
                    ns,
                    "TargetResponseTime",
                    lb,
                    stat,
                    p,
                    f"TargetResponseTime {stat}",
                )
            )
        qs.append(MetricQuery("alb_requests", ns, "RequestCount", lb, "Sum", p))
        qs.append(MetricQuery("alb_5xx", ns, "HTTPCode_Target_5XX_Count", lb, "Sum", p))
    if inp.db_cluster:
        for key, dim in _RDS_DIMS:  # Aurora cluster or RDS instance: ask both, use what has data
            for mid, metric, stat in _RDS_METRICS:
                qs.append(
                    MetricQuery(
                        f"rds_{key}_{mid}", "AWS/RDS", metric, {dim: inp.db_cluster}, stat, p
                    )
                )
    if inp.cache_cluster:
        for mid, metric, stat in _CACHE_METRICS:
            qs.append(
                MetricQuery(
                    f"cache_{mid}",
                    "AWS/ElastiCache",
                    metric,
                    {"CacheClusterId": inp.cache_cluster},
                    stat,
                    p,
                )
            )
    return qs


@dataclass(frozen=True)
class Metrics:
    """The one CloudWatch fetch of the triage, or the error that stopped it."""

    series: MetricSeries | None
    findings: tuple[Finding, ...] = ()

    def has(self, query_id: str) -> bool:
        return self.series is not None and self.series.has_data(query_id)


def fetch_metrics(inp: TriageInputs, *, cloudwatch) -> Metrics:
    """ALB, RDS and ElastiCache series in one GetMetricData call; errors become a finding."""
    qs = metric_queries(inp)
    if not qs:
        return Metrics(None)
    if cloudwatch is None:
        return Metrics(
            None,
            (
                Finding(
                    Severity.ERROR,
                    "CloudWatch metrics not read: no AWS client",
                    "aws",
                    "see the aws connection finding",
                    "Fix the AWS credentials or endpoint.",
                ),
            ),
        )
    try:
        return Metrics(get_metrics(qs, cloudwatch=cloudwatch, start=inp.start, end=inp.end))
    except Exception as exc:  # noqa: BLE001 - unreachable/denied: a finding; the triage goes on
        return Metrics(
            None,
            (
                error_finding(
                    "aws",
                    exc,
                    next_action="Check AWS credentials, region and "
                    "cloudwatch:GetMetricData permission.",
                ),
            ),
        )


def _col(metrics: Metrics, qid: str):
    import pandas as pd

    if metrics.series is None or qid not in metrics.series.frame:
        return pd.Series(dtype="float64")
    return metrics.series.frame[qid]


def _no_data(source: str, what: str, metrics: Metrics, qid: str, name: str) -> Finding:
    note = metrics.series.note(qid) if metrics.series is not None else ""
    return Finding(
        Severity.INFO,
        f"{what}: no datapoints for {name} in the window",
        source,
        note,
        f"Check the {source} identifier, the region, and that the metric is published.",
    )


# --- 1. latency picture ----------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyPicture:
    """ALB latency and errors over the window, with the periods above the threshold."""

    load_balancer: str
    threshold_ms: float
    frame: Any  # DataFrame: p50_ms, p90_ms, p99_ms, requests, errors_5xx, error_rate_pct
    p99_ms: float | None  # peak in the window
    breach_minutes: int
    longest_breach_minutes: int
    breaches: tuple[tuple[str, str], ...]  # (start, end) ISO of each run of breaching periods
    p99_stat: str  # "p99" or "Maximum" when the endpoint rejected percentiles
    findings: tuple[Finding, ...] = ()
    skipped: bool = False


def latency_picture(inp: TriageInputs, metrics: Metrics) -> LatencyPicture:
    """p50/p90/p99 in ms, 5xx rate, breach minutes; findings with the seeds' next actions."""
    import pandas as pd

    if not inp.load_balancer:
        return LatencyPicture(
            "",
            inp.threshold_ms,
            pd.DataFrame(),
            None,
            0,
            0,
            (),
            "",
            (skipped_finding("alb", "load_balancer"),),
            skipped=True,
        )
    if metrics.series is None:
        return LatencyPicture(
            inp.load_balancer,
            inp.threshold_ms,
            pd.DataFrame(),
            None,
            0,
            0,
            (),
            "",
            metrics.findings,
        )
    frame = pd.DataFrame(
        {
            "p50_ms": _col(metrics, "alb_p50") * 1000,
            "p90_ms": _col(metrics, "alb_p90") * 1000,
            "p99_ms": _col(metrics, "alb_p99") * 1000,
            "requests": _col(metrics, "alb_requests"),
            "errors_5xx": _col(metrics, "alb_5xx"),
        }
    )
    req = frame["requests"].where(frame["requests"] > 0)
    frame["error_rate_pct"] = (frame["errors_5xx"].fillna(0) / req * 100).round(2)
    frame = frame.dropna(how="all", subset=["p50_ms", "p90_ms", "p99_ms", "requests", "errors_5xx"])
    p99_stat = metrics.series.stats.get("alb_p99", "p99")
    found: list[Finding] = []
    p99 = frame["p99_ms"].dropna()
    step = inp.period / 60
    breaching = p99 > inp.threshold_ms
    runs: list[tuple[Any, Any]] = []
    run_start = prev = None
    for ts, hot in breaching.items():
        if hot and run_start is None:
            run_start = ts
        if not hot and run_start is not None:
            runs.append((run_start, prev))
            run_start = None
        prev = ts
    if run_start is not None:
        runs.append((run_start, prev))
    longest = max((int(breaching.loc[a:b].sum()) for a, b in runs), default=0)
    breach_minutes = int(breaching.sum() * step)
    peak = float(p99.max()) if len(p99) else None
    measured = (
        "p99" if p99_stat == "p99" else f"{p99_stat} (endpoint rejected p99; an upper bound of p99)"
    )
    if peak is None:
        found.append(
            _no_data("alb", f"ALB {inp.load_balancer}", metrics, "alb_p99", "TargetResponseTime")
        )
    elif breach_minutes:
        sev = Severity.CRITICAL if peak >= P99_CRITICAL_MS else Severity.WARNING
        found.append(
            Finding(
                sev,
                f"ALB p99 peaked at {peak:.0f} ms, above {inp.threshold_ms:.0f} ms for {breach_minutes} min",
                "alb",
                f"{measured}; longest run {int(longest * step)} min (alarm: {ALARM_MINUTES} min); "
                f"{len(runs)} breach period(s), last from {runs[-1][0]:%H:%M} to {runs[-1][1]:%H:%M} UTC",
                "Find the cause below (blocking sessions, restarting tasks/pods, DB CPU, cache evictions); "
                "for a plain load spike scale the ECS service desired count +2 (scale_out_by=2).",
                {"p99_ms": peak, "breach_minutes": breach_minutes},
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
    if not metrics.has("alb_requests"):
        found.append(
            _no_data("alb", f"ALB {inp.load_balancer}", metrics, "alb_requests", "RequestCount")
        )
    else:
        rate = frame["error_rate_pct"].dropna()
        peak_rate = float(rate.max()) if len(rate) else 0.0
        total_err = float(frame["errors_5xx"].fillna(0).sum())
        total_req = float(frame["requests"].fillna(0).sum())
        if peak_rate >= ERROR_RATE_WARN_PCT:
            sev = Severity.CRITICAL if peak_rate >= ERROR_RATE_CRIT_PCT else Severity.WARNING
            found.append(
                Finding(
                    sev,
                    f"ALB 5xx rate peaked at {peak_rate:.1f}%",
                    "alb",
                    f"{total_err:.0f} target 5xx of {total_req:.0f} requests in the window",
                    "Check the application logs in CloudWatch; roll back the deployment if a change is recent.",
                    {"peak_error_rate_pct": peak_rate},
                )
            )
    return LatencyPicture(
        load_balancer=inp.load_balancer,
        threshold_ms=inp.threshold_ms,
        frame=frame,
        p99_ms=peak,
        breach_minutes=breach_minutes,
        longest_breach_minutes=int(longest * step),
        breaches=tuple((a.isoformat(), b.isoformat()) for a, b in runs),
        p99_stat=p99_stat,
        findings=tuple(found),
    )


# --- 2. service health -----------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceCheck:
    """ECS service health and Kubernetes pods, events and deployments."""

    ecs: Any = None  # opslib.aws.ecs.ServiceHealth
    pods: tuple = ()  # opslib.k8s.workloads.PodHealth
    events: tuple = ()  # opslib.k8s.events.K8sEvent
    deployments: tuple = ()  # opslib.k8s.workloads.DeploymentInfo
    findings: tuple[Finding, ...] = ()

    @property
    def restarting_pods(self) -> list[str]:
        from opslib.k8s.workloads import restarting

        return restarting(self.pods)


def service_health(inp: TriageInputs, *, ecs=None, k8s=None) -> ServiceCheck:
    """ECS running vs desired and stopped tasks; Kubernetes pods and Warning events."""
    from opslib.aws import ecs as ecs_mod
    from opslib.k8s import events as ev_mod
    from opslib.k8s import workloads

    found: list[Finding] = []
    health = None
    pods: tuple = ()
    events: tuple = ()
    deps: tuple = ()
    if not inp.ecs_service:
        found.append(skipped_finding("ecs", "ecs_cluster/ecs_service"))
    elif ecs is not None:
        try:
            health = ecs_mod.service_health(
                ecs=ecs, cluster=inp.ecs_cluster, service=inp.ecs_service
            )
            found += ecs_mod.findings(health)
        except Exception as exc:  # noqa: BLE001 - becomes a finding; the other sources go on
            found.append(error_finding("ecs", exc))
    if not inp.k8s_namespace:
        found.append(skipped_finding("k8s", "k8s_namespace"))
    elif k8s is not None:
        try:
            pods = workloads.pod_health(
                api=k8s, namespace=inp.k8s_namespace, selector=inp.k8s_selector
            )
            found += workloads.findings(
                pods, namespace=inp.k8s_namespace, selector=inp.k8s_selector
            )
            names = tuple(p.name for p in pods) if inp.k8s_selector else None
            events = ev_mod.warning_events(
                api=k8s, namespace=inp.k8s_namespace, since_minutes=inp.window_minutes, names=names
            )
            found += ev_mod.findings(events, namespace=inp.k8s_namespace)
            deps = workloads.deployments(
                api=k8s, namespace=inp.k8s_namespace, selector=inp.k8s_selector
            )
        except Exception as exc:  # noqa: BLE001 - becomes a finding; the other sources go on
            found.append(error_finding("k8s", exc))
    return ServiceCheck(health, pods, events, deps, tuple(sorted(found, key=_key)))


# --- 3. database -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseCheck:
    """Aurora/RDS metrics and the PostgreSQL activity snapshot."""

    frame: Any  # DataFrame: cpu_pct, connections, read_latency_ms, write_latency_ms
    dimension: str  # DBClusterIdentifier or DBInstanceIdentifier (whichever had data)
    activity: Any = None  # opslib.pg.activity.Activity
    findings: tuple[Finding, ...] = ()

    @property
    def blocking_pids(self) -> list[int]:
        return list(self.activity.root_blockers) if self.activity is not None else []


def database(inp: TriageInputs, metrics: Metrics, *, conn=None) -> DatabaseCheck:
    """CPU, connections and latency from CloudWatch; sessions, locks and statements from PostgreSQL."""
    import pandas as pd

    from opslib.pg import activity as act

    found: list[Finding] = []
    frame = pd.DataFrame()
    dimension = ""
    if not inp.db_cluster:
        found.append(skipped_finding("rds", "db_cluster"))
    elif metrics.series is None:
        found += [f for f in metrics.findings]
    else:
        key = next((k for k, _ in _RDS_DIMS if metrics.has(f"rds_{k}_cpu")), "")
        if not key:
            found.append(
                _no_data(
                    "rds", f"Aurora/RDS {inp.db_cluster}", metrics, "rds_c_cpu", "CPUUtilization"
                )
            )
        else:
            dimension = dict(_RDS_DIMS)[key]
            frame = pd.DataFrame(
                {
                    "cpu_pct": _col(metrics, f"rds_{key}_cpu"),
                    "connections": _col(metrics, f"rds_{key}_conns"),
                    "read_latency_ms": _col(metrics, f"rds_{key}_read") * 1000,
                    "write_latency_ms": _col(metrics, f"rds_{key}_write") * 1000,
                }
            ).round(2)
            cpu = frame["cpu_pct"].dropna()
            recent = float(cpu.tail(5).mean())
            peak = float(cpu.max())
            if recent > CPU_WARN_PCT:
                sev = Severity.CRITICAL if recent >= CPU_CRIT_PCT else Severity.WARNING
                found.append(
                    Finding(
                        sev,
                        f"Aurora/RDS {inp.db_cluster}: CPU at {recent:.0f}% (last 5 min)",
                        "rds",
                        f"peak {peak:.0f}%; {dimension}={inp.db_cluster}",
                        "Check long-running queries and blocking sessions (PostgreSQL section); if the load is "
                        "legitimate, scale up the instance class (needs a failover/downtime if not Multi-AZ).",
                        {"cpu_pct": recent},
                    )
                )
            else:
                found.append(
                    Finding(
                        Severity.OK,
                        f"Aurora/RDS {inp.db_cluster}: CPU at {recent:.0f}%",
                        "rds",
                        f"peak {peak:.0f}%",
                    )
                )
            lat = frame[["read_latency_ms", "write_latency_ms"]].dropna(how="all")
            if len(lat):
                found.append(
                    Finding(
                        Severity.INFO,
                        f"Aurora/RDS {inp.db_cluster}: read {lat['read_latency_ms'].max():.1f} ms, "
                        f"write {lat['write_latency_ms'].max():.1f} ms peak latency",
                        "rds",
                        f"connections peak {frame['connections'].max():.0f}",
                    )
                )
    activity = None
    if not inp.pg_dsn:
        found.append(skipped_finding("postgres", "pg_dsn"))
    elif conn is not None:
        try:
            activity = act.snapshot(conn=conn, long_query_seconds=inp.long_query_seconds)
            found += act.findings(activity)
        except Exception as exc:  # noqa: BLE001 - becomes a finding; the other sources go on
            found.append(error_finding("postgres", exc))
    return DatabaseCheck(frame, dimension, activity, tuple(sorted(found, key=_key)))


# --- 4. cache --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheCheck:
    """ElastiCache evictions, CPU and connections."""

    cache_cluster: str
    frame: Any  # DataFrame: evictions, cpu_pct, engine_cpu_pct, connections
    findings: tuple[Finding, ...] = ()


def cache(inp: TriageInputs, metrics: Metrics) -> CacheCheck:
    """Seed 000: "Is Redis Eviction count high? If yes, cache is thrashing. Upscale Redis cluster." """
    import pandas as pd

    if not inp.cache_cluster:
        return CacheCheck("", pd.DataFrame(), (skipped_finding("cache", "cache_cluster"),))
    if metrics.series is None:
        return CacheCheck(inp.cache_cluster, pd.DataFrame(), metrics.findings)
    frame = pd.DataFrame(
        {
            "evictions": _col(metrics, "cache_evictions"),
            "cpu_pct": _col(metrics, "cache_cpu"),
            "engine_cpu_pct": _col(metrics, "cache_engine_cpu"),
            "connections": _col(metrics, "cache_conns"),
        }
    ).round(2)
    found: list[Finding] = []
    name = f"ElastiCache {inp.cache_cluster}"
    ev = frame["evictions"].dropna()
    if not len(ev):
        found.append(_no_data("cache", name, metrics, "cache_evictions", "Evictions"))
    else:
        per_min = float(ev.tail(5).mean()) * 60 / inp.period
        if per_min >= EVICTIONS_PER_MIN_WARN:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"{name}: {per_min:.0f} evictions/min (cache thrashing)",
                    "cache",
                    f"{ev.sum():.0f} evictions in the window",
                    "The cache is thrashing: upscale the Redis cluster (larger node type or more shards) and "
                    "review key TTLs.",
                    {"evictions_per_min": per_min},
                )
            )
        else:
            found.append(Finding(Severity.OK, f"{name}: {per_min:.0f} evictions/min", "cache"))
    cpu = frame["engine_cpu_pct"].dropna()
    if not len(cpu):
        cpu = frame["cpu_pct"].dropna()
    if len(cpu) and float(cpu.tail(5).mean()) >= CPU_WARN_PCT:
        recent = float(cpu.tail(5).mean())
        found.append(
            Finding(
                Severity.CRITICAL if recent >= CPU_CRIT_PCT else Severity.WARNING,
                f"{name}: CPU at {recent:.0f}%",
                "cache",
                "",
                "Upscale the Redis node type; look for hot keys or expensive commands.",
            )
        )
    return CacheCheck(inp.cache_cluster, frame, tuple(found))


# --- 5. verdict ------------------------------------------------------------------------------


def _key(f: Finding) -> tuple[int, int]:
    return RANK[f.severity], CAUSE_ORDER.get(f.source, 9)


@dataclass(frozen=True)
class Verdict:
    """All findings ranked (causes before symptoms at equal severity) and the one-line verdict."""

    findings: tuple[Finding, ...]
    line: str

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def to_frame(self):
        from opslib.core.findings import to_frame

        return to_frame(self.findings)

    def summary(self) -> list[dict[str, str]]:
        """[{severity, title}] for the evidence record."""
        return [{"severity": f.severity.value, "title": f.title} for f in self.findings]


def verdict(*parts: Any) -> Verdict:
    """Rank the findings of every part (anything with ``.findings``, or findings themselves)."""
    allf: list[Finding] = []
    for p in parts:
        if isinstance(p, Finding):
            allf.append(p)
        elif isinstance(p, Iterable) and not hasattr(p, "findings"):
            allf += [f for f in p if isinstance(f, Finding)]
        else:
            allf += list(getattr(p, "findings", ()))
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in allf:  # a metrics error may be attached to several sections: show it once
        if (f.source, f.title) not in seen:
            seen.add((f.source, f.title))
            unique.append(f)
    ranked = sorted(unique, key=_key)
    if not ranked or ranked[0].severity in (Severity.OK, Severity.INFO):
        line = "No problem found in the sources given" + (
            f"; {sum(f.title.startswith('skipped') for f in ranked)} source(s) skipped"
            if ranked
            else ""
        )
    else:
        top = ranked[0]
        line = f"{top.severity.value.upper()}: {top.title}"
        if top.next_action:
            line += f" -> {top.next_action}"
    return Verdict(tuple(ranked), line)


# --- 6. remediation --------------------------------------------------------------------------


def blocker_selection(
    inp: TriageInputs, db: DatabaseCheck
) -> tuple[list[tuple[str, int]], list[int]]:
    """Options and preselection of the "root blockers to terminate" choice in the runbook.

    Options: the root blockers that may be terminated, labelled with pid, user, application and
    how many sessions wait on them. Preselected from the parameters exactly as a headless plan
    would pick them: the first ``max_terminations`` when ``terminate_blocking``, else none.
    """
    from opslib.pg import activity as act

    options = act.root_options(db.activity) if db.activity is not None else []
    chosen = (
        [pid for _label, pid in options][: inp.max_terminations] if inp.terminate_blocking else []
    )
    return options, chosen


def plan_remediation(
    inp: TriageInputs,
    *,
    db: DatabaseCheck,
    services: ServiceCheck,
    only_pids: Sequence[int] | None = None,
) -> Plan:
    """One plan: terminate root blockers (if asked) and scale ECS / the deployments (if asked).

    ``only_pids`` is the final choice of root blockers (see :func:`blocker_selection`): those
    are planned (within ``max_terminations``) even when ``terminate_blocking`` is False, since
    the engineer picked them; roots left out are named in the plan's warnings. None keeps the
    parameters' behaviour (the first ``max_terminations`` roots when ``terminate_blocking``).
    """
    from opslib.aws import ecs as ecs_mod
    from opslib.k8s import workloads
    from opslib.pg import activity as act

    changes: list[Change] = []
    warnings: list[str] = []
    limits: dict[str, Any] = {
        "max_terminations": inp.max_terminations,
        "scale_out_by": inp.scale_out_by,
    }
    if only_pids and db.activity is None:
        raise BadInputError(
            f"root blockers {list(only_pids)} were chosen but there is no PostgreSQL snapshot "
            "(no pg_dsn, or it failed): give pg_dsn and re-run the database step."
        )
    if db.activity is not None:
        if inp.terminate_blocking or only_pids:
            p = act.plan_terminate(
                db.activity, max_terminations=inp.max_terminations, only_pids=only_pids
            )
            changes += p.changes
            warnings += p.warnings
        elif db.activity.root_blockers:
            warnings.append(
                f"{len(db.activity.root_blockers)} root blocking session(s) {list(db.activity.root_blockers)} "
                "not planned: set terminate_blocking=True to terminate them"
            )
    elif inp.terminate_blocking:
        warnings.append(
            "terminate_blocking=True but no PostgreSQL snapshot (no pg_dsn, or it failed)"
        )
    if inp.scale_out_by:
        if services.ecs is not None:
            p = ecs_mod.plan_scale(services.ecs, scale_out_by=inp.scale_out_by)
            changes += p.changes
            warnings += p.warnings
        if inp.k8s_namespace and (services.deployments or services.pods):
            p = workloads.plan_scale(services.deployments, scale_out_by=inp.scale_out_by)
            changes += p.changes
            warnings += p.warnings
        if services.ecs is None and not services.deployments:
            warnings.append(
                "scale_out_by > 0 but neither an ECS service nor a Kubernetes deployment was found"
            )
    return Plan(
        title="High-latency remediation",
        changes=tuple(changes),
        warnings=tuple(warnings),
        limits=limits,
    )


def executor(conns: Connections) -> Callable[[Change], ChangeOutcome]:
    """The ``execute`` callable for ``opslib.safety.gate``: dispatches each change to its domain."""
    from opslib.aws import ecs as ecs_mod
    from opslib.k8s import workloads
    from opslib.pg import activity as act

    def execute(change: Change) -> ChangeOutcome:
        if change.action == "pg_terminate_backend":
            return act.terminate(change, conn=conns.pg)
        if change.action == "ecs:UpdateService":
            return ecs_mod.scale(change, ecs=conns.ecs)
        if change.action.startswith("k8s:"):
            return workloads.scale(change, api=conns.k8s)
        return ChangeOutcome(change.action, change.target, ChangeStatus.FAILED, "unknown action")

    return execute


def terminated_pids(result: ApplyResult | None) -> list[int]:
    """PIDs that pg_terminate_backend actually ended in this run."""
    if result is None:
        return []
    return [
        int(o.data["pid"])
        for o in result.outcomes
        if o.action == "pg_terminate_backend"
        and o.status is ChangeStatus.APPLIED
        and "pid" in o.data
    ]


@dataclass(frozen=True)
class Recheck:
    """The blocking chain after remediation."""

    blocking_pids: tuple[int, ...]
    waiting_pids: tuple[int, ...]
    seconds: float
    activity: Any = None

    @property
    def cleared(self) -> bool:
        return not self.blocking_pids and not self.waiting_pids


def recheck_blocking(
    conns: Connections,
    result: ApplyResult | None,
    *,
    timeout_s: float = 15.0,
    long_query_seconds: int = 300,
) -> Recheck | None:
    """After terminations, poll (bounded) until the waiters are through; None when nothing was terminated."""
    from opslib.pg import activity as act

    if conns.pg is None or not terminated_pids(result):
        return None
    t0 = time.monotonic()
    snap = act.snapshot(conn=conns.pg, long_query_seconds=long_query_seconds)
    while (snap.root_blockers or snap.waiting) and time.monotonic() - t0 < timeout_s:
        time.sleep(0.25)
        snap = act.snapshot(conn=conns.pg, long_query_seconds=long_query_seconds)
    return Recheck(snap.root_blockers, snap.waiting, round(time.monotonic() - t0, 2), snap)
