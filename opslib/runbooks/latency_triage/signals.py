"""What every source says: the one CloudWatch fetch, the latency picture, the services
(ECS tasks, Kubernetes pods and events), the database (Aurora/RDS metrics, PostgreSQL
sessions and locks) and the cache. Each check turns its failures into findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opslib.aws import ecs as ecs_mod
from opslib.aws.cloudwatch import MetricQuery, MetricSeries, get_metrics
from opslib.aws.rds_params import MaxConnections, from_parameter_group
from opslib.core.findings import Finding, Severity, error_finding, skipped_finding
from opslib.k8s import events as ev_mod
from opslib.k8s import workloads
from opslib.k8s.workloads import restarting
from opslib.pg import activity as act
from opslib.runbooks.latency_triage.alarm import datapoints_to_alarm
from opslib.runbooks.latency_triage.inputs import TriageInputs
from opslib.runbooks.latency_triage.thresholds import (
    CACHE_HIT_RATE_WARN_PCT,
    CPU_CRIT_PCT,
    CPU_WARN_PCT,
    DB_CONN_CRIT_PCT,
    DB_CONN_WARN_PCT,
    ECS_CPU_ALERT_PCT,
    ECS_CPU_CRIT_PCT,
    ECS_CPU_WARN_PCT,
    ECS_MEM_CRIT_PCT,
    ECS_MEM_WARN_PCT,
    EVICTIONS_PER_MIN_WARN,
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
    ("hits", "CacheHits", "Sum"),
    ("misses", "CacheMisses", "Sum"),
)
_ECS_METRICS = (("cpu", "CPUUtilization"), ("mem", "MemoryUtilization"))


def metric_queries(inp: TriageInputs) -> list[MetricQuery]:
    """Every CloudWatch series the triage needs, for one GetMetricData call."""
    qs: list[MetricQuery] = []
    p = inp.period
    if inp.load_balancer:
        lb = {"LoadBalancer": inp.load_balancer}
        ns = "AWS/ApplicationELB"
        for stat in ("p50", "p90", "p95", "p99"):
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
        qs.append(MetricQuery("alb_elb_5xx", ns, "HTTPCode_ELB_5XX_Count", lb, "Sum", p))
    if inp.ecs_service:
        dims = {"ClusterName": inp.ecs_cluster, "ServiceName": inp.ecs_service}
        for mid, metric in _ECS_METRICS:
            qs.append(MetricQuery(f"ecs_{mid}", "AWS/ECS", metric, dims, "Average", p))
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


def col(metrics: Metrics, qid: str):
    """One query's column (an empty Series when it was not fetched)."""
    import pandas as pd

    if metrics.series is None or qid not in metrics.series.frame:
        return pd.Series(dtype="float64")
    return metrics.series.frame[qid]


def no_data(source: str, what: str, metrics: Metrics, qid: str, name: str) -> Finding:
    """An INFO finding for a series with no datapoints, with the query's status."""
    note = metrics.series.note(qid) if metrics.series is not None else ""
    return Finding(
        Severity.INFO,
        f"{what}: no datapoints for {name} in the window",
        source,
        note,
        f"Check the {source} identifier, the region, and that the metric is published.",
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
    utilisation: Any = None  # DataFrame: ECS service cpu_pct, memory_pct (CloudWatch AWS/ECS)

    @property
    def restarting_pods(self) -> list[str]:

        return restarting(self.pods)


def recent(series, inp: TriageInputs) -> float | None:
    """Mean of the last ``alarm_minutes`` of a series: a sustained level, not one period's peak."""
    s = series.dropna()
    if not len(s):
        return None
    return float(s.tail(datapoints_to_alarm(inp.alarm_minutes, inp.period)).mean())


def _level(value: float, warn: float, crit: float) -> Severity:
    if value >= crit:
        return Severity.CRITICAL
    return Severity.WARNING if value >= warn else Severity.OK


def ecs_utilisation(inp: TriageInputs, metrics: Metrics | None) -> tuple[Any, list[Finding]]:
    """ECS service CPU and memory (AWS/ECS, per service) over the last ``alarm_minutes``.

    CPU: warning at 70 %, the teams' "task CPU > 80%" alert named, critical at 90 %; memory:
    warning at 75 %, critical at 90 % (an OOM kill is near).
    """
    import pandas as pd

    if metrics is None or metrics.series is None or not inp.ecs_service:
        return pd.DataFrame(), []
    frame = pd.DataFrame(
        {"cpu_pct": col(metrics, "ecs_cpu"), "memory_pct": col(metrics, "ecs_mem")}
    ).round(1)
    name = f"ECS {inp.ecs_cluster}/{inp.ecs_service}"
    out: list[Finding] = []
    for column, what, qid, warn, crit, action in (
        (
            "cpu_pct",
            "CPU",
            "ecs_cpu",
            ECS_CPU_WARN_PCT,
            ECS_CPU_CRIT_PCT,
            "Scale out the service (scale_out_by) or raise the task CPU allocation; check for a hot loop "
            "in the application.",
        ),
        (
            "memory_pct",
            "memory",
            "ecs_mem",
            ECS_MEM_WARN_PCT,
            ECS_MEM_CRIT_PCT,
            "Raise the task memory or find the leak: tasks near their limit are OOM-killed.",
        ),
    ):
        level = recent(frame[column], inp)
        if level is None:
            out.append(no_data("ecs", name, metrics, qid, f"{what} utilization"))
            continue
        sev = _level(level, warn, crit)
        peak = float(frame[column].max())
        alert = ""
        if column == "cpu_pct" and level > ECS_CPU_ALERT_PCT:
            alert = f"; above the {ECS_CPU_ALERT_PCT:.0f}% task CPU alert"
        out.append(
            Finding(
                sev,
                f"{name}: {what} at {level:.0f}% (last {inp.alarm_minutes} min)",
                "ecs",
                f"peak {peak:.0f}%; thresholds {warn:.0f}/{crit:.0f}%{alert}",
                action if sev is not Severity.OK else "",
                {column: round(level, 1)},
            )
        )
    return frame, out


def service_health(
    inp: TriageInputs, *, ecs=None, k8s=None, metrics: Metrics | None = None
) -> ServiceCheck:
    """ECS running vs desired, stopped tasks, CPU and memory; Kubernetes pods and Warning events."""

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
    util, util_findings = ecs_utilisation(inp, metrics)
    found += util_findings
    return ServiceCheck(
        health, pods, events, deps, tuple(sorted(found, key=cause_first)), utilisation=util
    )


# --- 3. database -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseCheck:
    """Aurora/RDS metrics and the PostgreSQL activity snapshot."""

    frame: Any  # DataFrame: cpu_pct, connections, read_latency_ms, write_latency_ms
    dimension: str  # DBClusterIdentifier or DBInstanceIdentifier (whichever had data)
    activity: Any = None  # opslib.pg.activity.Activity
    findings: tuple[Finding, ...] = ()
    max_connections: MaxConnections | None = None
    connections_pct: float | None = None  # peak DatabaseConnections / max_connections

    @property
    def blocking_pids(self) -> list[int]:
        return list(self.activity.root_blockers) if self.activity is not None else []


def connections_finding(
    inp: TriageInputs, frame, ceiling: MaxConnections
) -> tuple[float | None, Finding | None]:
    """Peak CloudWatch DatabaseConnections against max_connections: warning 80 %, critical 95 %."""
    if "connections" not in frame or not frame["connections"].notna().any():
        return None, None
    peak = float(frame["connections"].max())
    name = f"Aurora/RDS {inp.db_cluster}"
    if ceiling.value is None:
        return None, Finding(
            Severity.WARNING if ceiling.error_kind else Severity.INFO,
            f"{name}: {peak:.0f} connections at peak; max_connections not known",
            "rds",
            ceiling.note,
            "Give pg_dsn (SHOW max_connections), or grant rds:DescribeDBInstances and "
            "rds:DescribeDBParameters, to compare connections with the ceiling.",
        )
    pct = round(100.0 * peak / ceiling.value, 1) if ceiling.value else None
    if pct is None:
        return None, None
    sev = _level(pct, DB_CONN_WARN_PCT, DB_CONN_CRIT_PCT)
    return pct, Finding(
        sev,
        f"{name}: connections at {pct:.0f}% of max_connections ({peak:.0f} of {ceiling.value})",
        "rds",
        f"peak DatabaseConnections over the window; max_connections from {ceiling.source}; "
        f"thresholds {DB_CONN_WARN_PCT:.0f}/{DB_CONN_CRIT_PCT:.0f}%",
        "Near the ceiling new connections fail: find the idle and idle-in-transaction sessions "
        "(PostgreSQL section), check the application's pool size, add a pooler (RDS Proxy)."
        if sev is not Severity.OK
        else "",
        {"connections": peak, "max_connections": ceiling.value, "connections_pct": pct},
    )


def database(inp: TriageInputs, metrics: Metrics, *, conn=None, rds=None) -> DatabaseCheck:
    """CPU, connections (against max_connections) and latency from CloudWatch; sessions, locks
    and statements from PostgreSQL."""
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
                no_data(
                    "rds", f"Aurora/RDS {inp.db_cluster}", metrics, "rds_c_cpu", "CPUUtilization"
                )
            )
        else:
            dimension = dict(_RDS_DIMS)[key]
            frame = pd.DataFrame(
                {
                    "cpu_pct": col(metrics, f"rds_{key}_cpu"),
                    "connections": col(metrics, f"rds_{key}_conns"),
                    "read_latency_ms": col(metrics, f"rds_{key}_read") * 1000,
                    "write_latency_ms": col(metrics, f"rds_{key}_write") * 1000,
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
    ceiling = None
    pct = None
    if len(frame) and frame["connections"].notna().any():
        if activity is not None:
            ceiling = MaxConnections(activity.max_connections, "SHOW max_connections")
        elif rds is not None:
            ceiling = from_parameter_group(inp.db_cluster, rds=rds)
        else:
            ceiling = MaxConnections(None, "", "no PostgreSQL session and no RDS client")
        pct, f = connections_finding(inp, frame, ceiling)
        if f is not None:
            found.append(f)
    return DatabaseCheck(
        frame,
        dimension,
        activity,
        tuple(sorted(found, key=cause_first)),
        max_connections=ceiling,
        connections_pct=pct,
    )


# --- 4. cache --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheCheck:
    """ElastiCache evictions, CPU and connections."""

    cache_cluster: str
    frame: Any  # DataFrame: evictions, cpu_pct, engine_cpu_pct, connections, hits, misses, hit_rate_pct
    findings: tuple[Finding, ...] = ()
    hit_rate_pct: float | None = None  # the last period's


def cache(inp: TriageInputs, metrics: Metrics) -> CacheCheck:
    """The high-latency procedure: "Is Redis Eviction count high? If yes, cache is thrashing. Upscale Redis cluster." """
    import pandas as pd

    if not inp.cache_cluster:
        return CacheCheck("", pd.DataFrame(), (skipped_finding("cache", "cache_cluster"),))
    if metrics.series is None:
        return CacheCheck(inp.cache_cluster, pd.DataFrame(), metrics.findings)
    frame = pd.DataFrame(
        {
            "evictions": col(metrics, "cache_evictions"),
            "cpu_pct": col(metrics, "cache_cpu"),
            "engine_cpu_pct": col(metrics, "cache_engine_cpu"),
            "connections": col(metrics, "cache_conns"),
            "hits": col(metrics, "cache_hits"),
            "misses": col(metrics, "cache_misses"),
        }
    ).round(2)
    looked = frame["hits"].fillna(0) + frame["misses"].fillna(0)
    frame["hit_rate_pct"] = (frame["hits"].fillna(0) / looked.where(looked > 0) * 100).round(1)
    found: list[Finding] = []
    name = f"ElastiCache {inp.cache_cluster}"
    ev = frame["evictions"].dropna()
    if not len(ev):
        found.append(no_data("cache", name, metrics, "cache_evictions", "Evictions"))
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
    found.append(_hit_rate(inp, frame, metrics, name))
    hr = frame["hit_rate_pct"].dropna()
    return CacheCheck(
        inp.cache_cluster, frame, tuple(found), float(hr.iloc[-1]) if len(hr) else None
    )


def _hit_rate(inp: TriageInputs, frame, metrics: Metrics, name: str) -> Finding:
    """CacheHits / (CacheHits + CacheMisses) over the last ``alarm_minutes``; below 70 % warns."""
    n = datapoints_to_alarm(inp.alarm_minutes, inp.period)
    hits = frame["hits"].dropna().tail(n).sum()
    misses = frame["misses"].dropna().tail(n).sum()
    if hits + misses <= 0:
        return no_data("cache", name, metrics, "cache_hits", "CacheHits/CacheMisses")
    rate = 100.0 * hits / (hits + misses)
    if rate < CACHE_HIT_RATE_WARN_PCT:
        return Finding(
            Severity.WARNING,
            f"{name}: cache hit rate {rate:.0f}% (last {inp.alarm_minutes} min)",
            "cache",
            f"{hits:.0f} hits, {misses:.0f} misses; alert below {CACHE_HIT_RATE_WARN_PCT:.0f}%",
            "Review the cache key TTLs; if the working set no longer fits, increase the Redis memory.",
            {"hit_rate_pct": round(rate, 1)},
        )
    return Finding(
        Severity.OK,
        f"{name}: cache hit rate {rate:.0f}%",
        "cache",
        f"{hits:.0f} hits, {misses:.0f} misses",
    )
