"""Thresholds of the latency triage, from the high-latency alarm procedure and the monitoring
thresholds the teams alert on (p99, p95, error rate, CPU, memory, connections, Redis)."""

from __future__ import annotations

from opslib.core.findings import RANK, Finding

#: p99 critical above 1 s; error rate warning 1 %, critical 5 %
P99_CRITICAL_MS = 1000.0
P95_ALERT_MS = 1000.0  # "Response Time: Alert if p95 > 1s"
ERROR_RATE_WARN_PCT = 1.0
ERROR_RATE_CRIT_PCT = 5.0
CPU_WARN_PCT = 80.0  # "Is Aurora CPU > 80%?"
CPU_CRIT_PCT = 90.0
#: ECS service CPU: warning 70 %, critical 90 % (key metrics table); "ECS task CPU > 80%" alerts
ECS_CPU_WARN_PCT = 70.0
ECS_CPU_ALERT_PCT = 80.0
ECS_CPU_CRIT_PCT = 90.0
#: ECS service memory: warning 75 %, critical 90 %
ECS_MEM_WARN_PCT = 75.0
ECS_MEM_CRIT_PCT = 90.0
#: database connections against max_connections: warning 80 %, critical 95 %
DB_CONN_WARN_PCT = 80.0
DB_CONN_CRIT_PCT = 95.0
#: "Redis cache hit rate < 70%"
CACHE_HIT_RATE_WARN_PCT = 70.0
EVICTIONS_PER_MIN_WARN = 100.0  # "Is the Redis eviction count high?"
ALARM_MINUTES = 5  # the alarm: HighLatency > 500 ms for 5 minutes
MIN_REQUESTS = 100  # an error rate over fewer requests than this in the window says nothing
#: a load spike: requests during the breach at least this many times the rate before it
LOAD_SPIKE_RATIO = 1.25
#: "If simple load spike, manually scale ECS service desired count +2"
LOAD_SPIKE_SCALE_OUT_BY = 2

#: causes before symptoms among findings of equal severity
CAUSE_ORDER = {
    "postgres": 0,
    "k8s": 1,
    "ecs": 2,
    "rds": 3,
    "cache": 4,
    "load": 5,
    "alb": 6,
    "aws": 7,
}


def cause_first(f: Finding) -> tuple[int, int]:
    """Sort key: by severity, then causes before symptoms (the thing to act on comes first)."""
    return RANK[f.severity], CAUSE_ORDER.get(f.source, 9)
