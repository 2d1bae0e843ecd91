"""Thresholds of the latency triage, from the high-latency alarm procedure and the monitoring
thresholds the teams alert on (p99, error rate, CPU, Redis evictions)."""

from __future__ import annotations

from opslib.core.findings import RANK, Finding

#: p99 critical above 1 s; error rate warning 1 %, critical 5 %
P99_CRITICAL_MS = 1000.0
ERROR_RATE_WARN_PCT = 1.0
ERROR_RATE_CRIT_PCT = 5.0
CPU_WARN_PCT = 80.0  # "Is Aurora CPU > 80%?"
CPU_CRIT_PCT = 90.0
EVICTIONS_PER_MIN_WARN = 100.0  # "Is the Redis eviction count high?"
ALARM_MINUTES = 5  # the alarm: HighLatency > 500 ms for 5 minutes

#: causes before symptoms among findings of equal severity
CAUSE_ORDER = {"postgres": 0, "k8s": 1, "ecs": 2, "rds": 3, "cache": 4, "alb": 5, "aws": 6}


def cause_first(f: Finding) -> tuple[int, int]:
    """Sort key: by severity, then causes before symptoms (the thing to act on comes first)."""
    return RANK[f.severity], CAUSE_ORDER.get(f.source, 9)
