"""High-latency triage: where does the time go? One answer from every source, ranked.

The runbook (notebooks/latency_triage.ipynb) follows the high-latency alarm procedure
(HighLatency: p99 > 500 ms for 5 minutes) and the checks the teams run beside it: the latency
picture from the ALB, the service health (ECS tasks, Kubernetes pods and events), the database
(Aurora/RDS metrics and PostgreSQL sessions, locks and long queries), the cache (ElastiCache
evictions and CPU), then a verdict and a gated remediation (terminate the root blockers, scale
out).

Every source is optional: one left empty is skipped with a visible "skipped: no X given"
finding; one that fails (unreachable, access denied, no data) becomes a finding with its error
and the triage goes on. All CloudWatch series are fetched in ONE GetMetricData call (up to 500
queries per call).

Ranking: by severity first; among equally severe findings, causes before symptoms (blocking
sessions, then pods, ECS tasks, database and cache load, and the ALB latency itself last),
because the on-call engineer needs the thing to act on, not the alarm they already know.

A breach is sustained, as CloudWatch evaluates the alarm (``alarm_minutes`` consecutive
periods above the threshold); shorter runs are reported as spikes. A plain load spike makes the
verdict propose the procedure's +2 with the exact parameters to run again (``scale_out_by``
itself stays 0 by default: nothing scales unless asked).

Modules: :mod:`.inputs` (validation, connections), :mod:`.alarm` (sustained runs and windowed
error rates), :mod:`.picture` (the latency picture), :mod:`.signals` (the other checks; max_connections from
:mod:`opslib.aws.rds_params`), :mod:`.remediation` (verdict, plan, executor, re-check),
:mod:`.thresholds`.
"""

from __future__ import annotations

from opslib.runbooks.latency_triage.inputs import Connections, TriageInputs, connect, inputs
from opslib.runbooks.latency_triage.picture import (
    LatencyPicture,
    latency_picture,
    rerun_command,
    rerun_parameters,
)
from opslib.runbooks.latency_triage.remediation import (
    ACTIONS,
    Recheck,
    Verdict,
    blocker_selection,
    executor,
    plan_remediation,
    recheck_blocking,
    terminated_pids,
    verdict,
)
from opslib.runbooks.latency_triage.signals import (
    CacheCheck,
    DatabaseCheck,
    Metrics,
    ServiceCheck,
    cache,
    database,
    fetch_metrics,
    metric_queries,
    service_health,
)
from opslib.runbooks.latency_triage.summary import TriageRecord, summary

RUNBOOK = "latency-triage"

__all__ = [
    "ACTIONS",
    "RUNBOOK",
    "CacheCheck",
    "Connections",
    "DatabaseCheck",
    "LatencyPicture",
    "Metrics",
    "Recheck",
    "ServiceCheck",
    "TriageInputs",
    "TriageRecord",
    "Verdict",
    "blocker_selection",
    "cache",
    "connect",
    "database",
    "executor",
    "fetch_metrics",
    "inputs",
    "latency_picture",
    "metric_queries",
    "plan_remediation",
    "recheck_blocking",
    "rerun_command",
    "rerun_parameters",
    "service_health",
    "summary",
    "terminated_pids",
    "verdict",
]
