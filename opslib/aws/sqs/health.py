"""Queue health for a redrive: counts, age of the oldest message, redrive policy, and findings
against the backlog thresholds of the queue-management procedure (1,000 visible messages warn,
10,000 critical), expiry risk, and failures still arriving."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opslib.aws.sqs.messages import Sample
from opslib.aws.sqs.queues import (
    QueueCounts,
    QueueRef,
    queue_attributes,
    queue_name_from,
)
from opslib.aws.sqs.target import RedriveTarget
from opslib.clients import OPTIONAL_READ_KINDS, aws_error_kind, optional_read_finding
from opslib.core.findings import Finding, Severity, error_finding

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "BACKLOG_CRITICAL",
    "BACKLOG_WARN",
    "RETENTION_ALERT_SHARE",
    "STILL_FAILING_SECONDS",
    "HealthReport",
    "QueueHealth",
    "backlog_finding",
    "fmt_age",
    "queue_health",
    "redrive_health",
]

#: Backlog thresholds (visible messages) of the queue-management procedure.
BACKLOG_WARN = 1_000
BACKLOG_CRITICAL = 10_000
#: A DLQ message younger than this means failures are still arriving.
STILL_FAILING_SECONDS = 300
#: Share of the retention period after which the oldest message is about to expire.
RETENTION_ALERT_SHARE = 0.75


@dataclass(frozen=True)
class QueueHealth:
    """One queue's health row: counts, oldest message age, redrive policy, role in the redrive."""

    role: str  # "dlq", "source", "destination", "source+destination"
    name: str
    url: str
    fifo: bool
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None
    oldest_age_from: str  # "cloudwatch", "sample", "" (unknown)
    max_receive_count: int | None
    dead_letter_target: str
    retention_seconds: int
    visibility_timeout: int


@dataclass(frozen=True)
class HealthReport:
    """Health of every queue in the redrive, with findings ranked by the backlog thresholds."""

    queues: tuple[QueueHealth, ...]
    findings: tuple[Finding, ...]

    def counts(self) -> dict[str, QueueCounts]:
        return {q.name: QueueCounts(q.name, q.visible, q.in_flight, q.delayed) for q in self.queues}

    def get(self, name: str) -> QueueHealth | None:
        return next((q for q in self.queues if q.name == name), None)

    def to_frame(self):
        import pandas as pd

        cols = [
            "role",
            "name",
            "fifo",
            "visible",
            "in_flight",
            "delayed",
            "oldest_age_seconds",
            "oldest_age_from",
            "max_receive_count",
            "dead_letter_target",
            "retention_seconds",
        ]
        return pd.DataFrame([{c: getattr(q, c) for c in cols} for q in self.queues], columns=cols)


def _cloudwatch_oldest_age(name: str, *, cloudwatch: CloudWatchClient) -> float | None:
    now = _dt.datetime.now(_dt.UTC)
    resp = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": name}],
        StartTime=now - _dt.timedelta(minutes=15),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(resp.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def fmt_age(seconds: float | None) -> str:
    """An age for people: 45s, 12min, 3.5h, 2.0d, or "unknown"."""
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def backlog_finding(
    name: str, role: str, visible: int, in_flight: int, evidence: str, data: dict | None = None
) -> Finding:
    """The backlog thresholds as a finding: >= 10,000 critical, >= 1,000 warning."""
    source = f"sqs:{name}"
    data = data or {}
    if visible >= BACKLOG_CRITICAL:
        return Finding(
            Severity.CRITICAL,
            f"{name}: backlog {visible:,} >= {BACKLOG_CRITICAL:,}",
            source,
            evidence,
            "Scale consumers before redriving more into it; find the failure cause.",
            data,
        )
    if visible >= BACKLOG_WARN:
        return Finding(
            Severity.WARNING,
            f"{name}: backlog {visible:,} >= {BACKLOG_WARN:,}",
            source,
            evidence,
            "Watch the backlog drain; scale consumers if it keeps growing.",
            data,
        )
    if "dlq" in role and visible + in_flight > 0:
        return Finding(
            Severity.INFO,
            f"{name}: {visible + in_flight:,} message(s) in the DLQ",
            source,
            evidence,
            "Inspect the sample below, fix the cause, then redrive.",
            data,
        )
    return Finding(Severity.OK, f"{name}: backlog {visible:,}", source, evidence, "", data)


def _oldest_age(
    queue: QueueRef, cloudwatch: CloudWatchClient | None, sample: Sample | None, findings: list
) -> tuple[float | None, str]:
    age: float | None = None
    age_from = ""
    if cloudwatch is not None:
        try:
            age = _cloudwatch_oldest_age(queue.name, cloudwatch=cloudwatch)
            age_from = "cloudwatch" if age is not None else ""
        except Exception as exc:  # noqa: BLE001 - shown as a finding; the sample is the fallback
            if aws_error_kind(exc) in OPTIONAL_READ_KINDS:
                what = f"cloudwatch:GetMetricStatistics ApproximateAgeOfOldestMessage {queue.name}"
                findings.append(optional_read_finding(exc, what, source=f"cloudwatch:{queue.name}"))
            else:
                findings.append(error_finding(f"cloudwatch:{queue.name}", exc))
    if age is None and sample is not None and sample.queue == queue.name and sample.messages:
        age = max(m.age_seconds for m in sample.messages)
        age_from = "sample"
    return age, age_from


def queue_health(
    queue: QueueRef,
    *,
    sqs: SQSClient,
    role: str,
    cloudwatch: CloudWatchClient | None = None,
    sample: Sample | None = None,
) -> tuple[QueueHealth, list[Finding]]:
    """One queue's health and its findings (backlog thresholds, expiry risk, failures arriving).

    The oldest message's age comes from CloudWatch's ApproximateAgeOfOldestMessage when a
    ``cloudwatch`` client is given and has data, else from the sample's oldest SentTimestamp
    (a lower bound: the sample may miss the oldest message).
    """
    source = f"sqs:{queue.name}"
    findings: list[Finding] = []
    attrs = queue_attributes(queue.url, sqs=sqs)
    visible = int(attrs.get("ApproximateNumberOfMessages", 0))
    in_flight = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
    delayed = int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))
    age, age_from = _oldest_age(queue, cloudwatch, sample, findings)
    ref = QueueRef(queue.name, queue.url, queue.arn, queue.fifo, attrs)
    retention = int(attrs.get("MessageRetentionPeriod", 345600))
    health = QueueHealth(
        role=role,
        name=queue.name,
        url=queue.url,
        fifo=queue.fifo,
        visible=visible,
        in_flight=in_flight,
        delayed=delayed,
        oldest_age_seconds=age,
        oldest_age_from=age_from,
        max_receive_count=ref.max_receive_count,
        dead_letter_target=queue_name_from(ref.dead_letter_target_arn)
        if ref.dead_letter_target_arn
        else "",
        retention_seconds=retention,
        visibility_timeout=int(attrs.get("VisibilityTimeout", 30)),
    )
    evidence = (
        f"visible={visible} in_flight={in_flight} delayed={delayed} "
        f"oldest={fmt_age(age)}{' (' + age_from + ')' if age_from else ''}"
    )
    data: dict[str, Any] = {
        "visible": visible,
        "in_flight": in_flight,
        "delayed": delayed,
        "oldest_age_seconds": age,
    }
    findings.append(backlog_finding(queue.name, role, visible, in_flight, evidence, data))
    if age is not None and retention and age >= RETENTION_ALERT_SHARE * retention:
        findings.append(
            Finding(
                Severity.CRITICAL,
                f"{queue.name}: oldest message ({fmt_age(age)}) expires within "
                f"{fmt_age(max(retention - age, 0))}",
                source,
                f"MessageRetentionPeriod={retention}s",
                "Redrive (or export) now: SQS deletes messages older than the retention period.",
                data,
            )
        )
    if "destination" in role and visible > 0 and in_flight == 0:
        findings.append(
            Finding(
                Severity.WARNING,
                f"{queue.name}: {visible:,} visible and none in flight: no consumer appears to be reading",
                source,
                evidence,
                "Check the consumer deployment (kubectl get deploy) before moving messages into it.",
                data,
            )
        )
    return health, findings


def redrive_health(
    target: RedriveTarget,
    *,
    sqs: SQSClient,
    cloudwatch: CloudWatchClient | None = None,
    sample: Sample | None = None,
) -> HealthReport:
    """Health of the DLQ, its source queues and the destination; errors per queue become findings."""
    roles: dict[str, tuple[QueueRef, list[str]]] = {}

    def add(q: QueueRef, role: str) -> None:
        roles.setdefault(q.arn or q.url, (q, []))[1].append(role)

    add(target.dlq, "dlq")
    for s in target.sources:
        add(s, "source")
    for d in target.destinations:
        add(d, "destination")
    rows: list[QueueHealth] = []
    findings: list[Finding] = list(target.findings)  # preflight's: a denied API, the fall-back
    for q, rs in roles.values():
        try:
            h, fs = queue_health(
                q, sqs=sqs, role="+".join(rs), cloudwatch=cloudwatch, sample=sample
            )
        except Exception as exc:  # noqa: BLE001 - per-queue errors are shown, the others still reported
            findings.append(error_finding(f"sqs:{q.name}", exc))
            continue
        rows.append(h)
        findings += fs
    if sample is not None:
        findings += sample.errors
        newest = min((m.age_seconds for m in sample.messages), default=None)
        if newest is not None and newest < STILL_FAILING_SECONDS:
            findings.append(
                Finding(
                    Severity.WARNING,
                    f"{target.dlq.name}: failures still arriving (newest sampled message {fmt_age(newest)} old)",
                    f"sqs:{target.dlq.name}",
                    "",
                    "Fix the consumer first: redriven messages would fail again and come back.",
                )
            )
    return HealthReport(queues=tuple(rows), findings=tuple(findings))
