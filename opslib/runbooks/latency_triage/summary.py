"""The triage's key results for ``record.json``: one typed record, recorded with
``opslib.record_all(...)``. Each field is a record name; the first ten are the runbook's
original contract and keep their names and meaning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opslib.core.plans import ApplyResult, Plan
from opslib.runbooks.latency_triage.picture import LatencyPicture
from opslib.runbooks.latency_triage.remediation import Recheck, Verdict, terminated_pids
from opslib.runbooks.latency_triage.signals import DatabaseCheck, ServiceCheck


@dataclass(frozen=True)
class TriageRecord:
    """What a machine reading the run needs: the latency, the verdict, what was done."""

    p99_ms: float | None
    p99_stat: str
    breach_minutes: int  # minutes inside sustained breaches (the alarm's condition)
    verdict: str
    blocking_pids: list[int]
    terminated_pids: list[int]
    chain_cleared: bool | None
    restarting_pods: list[str]
    findings: list[dict[str, str]]
    plan_hash: str
    alarm: bool  # p99 above the threshold for alarm_minutes consecutive minutes
    spike_minutes: int  # minutes above the threshold in runs too short for the alarm
    p95_ms: float | None
    error_rate_pct: float | None  # worst sustained 5xx rate (target + load balancer)
    target_5xx: int
    elb_5xx: int
    connections_pct: float | None  # peak DatabaseConnections / max_connections
    rerun_parameters: dict[str, Any]  # a load spike's scale-out proposal ({} when none)


def summary(
    latency: LatencyPicture,
    verdict: Verdict,
    database: DatabaseCheck,
    services: ServiceCheck,
    plan: Plan,
    applied: ApplyResult | None,
    after: Recheck | None,
) -> TriageRecord:
    """The record of one triage."""
    return TriageRecord(
        p99_ms=latency.p99_ms,
        p99_stat=latency.p99_stat,
        breach_minutes=latency.breach_minutes,
        verdict=verdict.line,
        blocking_pids=database.blocking_pids,
        terminated_pids=terminated_pids(applied),
        chain_cleared=None if after is None else after.cleared,
        restarting_pods=services.restarting_pods,
        findings=verdict.summary(),
        plan_hash=plan.digest(),
        alarm=latency.alarm,
        spike_minutes=latency.spike_minutes,
        p95_ms=latency.p95_ms,
        error_rate_pct=latency.error_rate_pct,
        target_5xx=latency.target_5xx,
        elb_5xx=latency.elb_5xx,
        connections_pct=database.connections_pct,
        rerun_parameters=verdict.rerun,
    )
