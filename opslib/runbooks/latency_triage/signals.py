"""What every source says: the one CloudWatch fetch, the latency picture, the services
(ECS tasks, Kubernetes pods and events), the database (Aurora/RDS metrics, PostgreSQL
sessions and locks) and the cache. Each check turns its failures into findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opslib.aws import ecs as ecs_mod
from opslib.aws.cloudwatch import MetricQuery, MetricSeries, get_metrics
from opslib.core.findings import Finding, Severity, error_finding, skipped_finding
from opslib.k8s import events as ev_mod
from opslib.k8s import workloads
from opslib.k8s.workloads import restarting
from opslib.pg import activity as act
from opslib.runbooks.latency_triage.inputs import TriageInputs
from opslib.runbooks.latency_triage.thresholds import (
    ALARM_MINUTES,
    CPU_CRIT_PCT,
    CPU_WARN_PCT,
    ERROR_RATE_CRIT_PCT,
    ERROR_RATE_WARN_PCT,
    EVICTIONS_PER_MIN_WARN,
    P99_CRITICAL_MS,
    cause_first,
)

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
    """p50/p90/p99 in ms, 5xx rate, breach minutes; findings with the procedures' next actions."""
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

        return restarting(self.pods)


def service_health(inp: TriageInputs, *, ecs=None, k8s=None) -> ServiceCheck:
    """ECS running vs desired and stopped tasks; Kubernetes pods and Warning events."""

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
    return ServiceCheck(health, pods, events, deps, tuple(sorted(found, key=cause_first)))


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
    return DatabaseCheck(frame, dimension, activity, tuple(sorted(found, key=cause_first)))


# --- 4. cache --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheCheck:
    """ElastiCache evictions, CPU and connections."""

    cache_cluster: str
    frame: Any  # DataFrame: evictions, cpu_pct, engine_cpu_pct, connections
    findings: tuple[Finding, ...] = ()


def cache(inp: TriageInputs, metrics: Metrics) -> CacheCheck:
    """The high-latency procedure: "Is Redis Eviction count high? If yes, cache is thrashing. Upscale Redis cluster." """
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
