"""SQS queue depths and oldest-message ages for the morning check (and the queue operations runbook).

Queues are listed with the ListQueues paginator (by name prefix, 1,000 a page); one
GetQueueAttributes each (``All``) gives visible, in-flight and delayed counts (SQS has no batch form,
so ``mapper`` lets those calls overlap); the age of the oldest message is CloudWatch's
``ApproximateAgeOfOldestMessage``, read for all queues in one GetMetricData call per 500
queues. The backlog thresholds are those of :mod:`opslib.aws.sqs.health` (1,000 visible warn,
10,000 critical); an oldest message past 80 % of the queue's retention is about to be lost
(critical), past an hour it is a stalled consumer (warning).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from opslib.aws.cloudwatch import MetricQuery, get_metrics
from opslib.aws.sqs.health import BACKLOG_CRITICAL, BACKLOG_WARN
from opslib.core.findings import Finding, Severity

SOURCE = "sqs"
LIST_PAGE = 1000
AGE_WARN_S = 3600
AGE_LOSS_SHARE = 0.8  # of MessageRetentionPeriod
#: "All" rather than the five names used: the same one call on AWS, and the local AWS server
#: rebuilds every attribute (a scan of the queue's messages) for each name asked, so five names
#: on a 10,000-message queue cost ten times "All" (measured 25 s against 2.3 s)
_ATTRS = ["All"]


@dataclass(frozen=True)
class QueueDepth:
    name: str
    url: str
    visible: int
    in_flight: int
    delayed: int
    has_dlq: bool
    retention_s: int = 345_600
    oldest_age_s: float | None = None  # None: CloudWatch reported no datapoint in the window


def queue_urls(*, sqs, prefix: str = "") -> list[str]:
    kw: dict = {"PaginationConfig": {"PageSize": LIST_PAGE}}
    if prefix:
        kw["QueueNamePrefix"] = prefix
    return [
        u
        for page in sqs.get_paginator("list_queues").paginate(**kw)
        for u in page.get("QueueUrls", [])
    ]


def depths(*, sqs, prefix: str = "", mapper: Callable = map) -> list[QueueDepth]:
    """Every queue whose name starts with ``prefix``, with its counts (deepest first)."""

    def one(url: str) -> QueueDepth:
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_ATTRS).get("Attributes", {})
        return QueueDepth(
            url.rsplit("/", 1)[-1],
            url,
            int(a.get("ApproximateNumberOfMessages", 0)),
            int(a.get("ApproximateNumberOfMessagesNotVisible", 0)),
            int(a.get("ApproximateNumberOfMessagesDelayed", 0)),
            bool(a.get("RedrivePolicy")),
            int(a.get("MessageRetentionPeriod", 345_600)),
        )

    return sorted(mapper(one, queue_urls(sqs=sqs, prefix=prefix)), key=lambda q: -q.visible)


def with_oldest_ages(
    queues: list[QueueDepth], *, cloudwatch, minutes: int, end: _dt.datetime | None = None
) -> tuple[list[QueueDepth], int]:
    """``queues`` with ``oldest_age_s`` from CloudWatch (the latest Maximum); and the calls made."""
    if not queues:
        return queues, 0
    end = end or _dt.datetime.now(_dt.UTC)
    qs = [
        MetricQuery(
            f"age{i}",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": q.name},
            "Maximum",
            60 if minutes <= 60 else 300,
        )
        for i, q in enumerate(queues)
    ]
    series = get_metrics(
        qs, cloudwatch=cloudwatch, start=end - _dt.timedelta(minutes=minutes), end=end
    )
    out = []
    for i, q in enumerate(queues):
        age = float(series.series(f"age{i}").iloc[-1]) if series.has_data(f"age{i}") else None
        out.append(
            QueueDepth(
                q.name, q.url, q.visible, q.in_flight, q.delayed, q.has_dlq, q.retention_s, age
            )
        )
    return out, series.calls


def findings(queues: list[QueueDepth]) -> list[Finding]:
    """Backlogs over 1,000 (amber) / 10,000 (red); oldest messages near expiry or stalled."""
    out = []
    for q in queues:
        if q.visible >= BACKLOG_WARN:
            red = q.visible >= BACKLOG_CRITICAL
            out.append(
                Finding(
                    Severity.CRITICAL if red else Severity.WARNING,
                    f"SQS {q.name}: backlog over {BACKLOG_CRITICAL if red else BACKLOG_WARN:,} messages",
                    SOURCE,
                    f"{q.visible:,} visible, in flight {q.in_flight:,}, delayed {q.delayed:,}; "
                    f"thresholds {BACKLOG_WARN:,}/{BACKLOG_CRITICAL:,}",
                    "Scale the consumers and raise the visibility timeout (queue-ops runbook); "
                    + (
                        "if the messages are poison, see dlq-redrive."
                        if q.name.endswith("dlq")
                        else "look at the consumer's errors."
                    ),
                    {"queue": q.name, "visible": q.visible},
                )
            )
        age = q.oldest_age_s
        if age is None or age < AGE_WARN_S:
            continue
        lost = age >= AGE_LOSS_SHARE * q.retention_s
        out.append(
            Finding(
                Severity.CRITICAL if lost else Severity.WARNING,
                f"SQS {q.name}: "
                + ("oldest message close to its retention" if lost else "oldest message over 1 h"),
                SOURCE,
                f"oldest {age / 3600:.1f} h, retention {q.retention_s / 3600:.0f} h",
                "Messages are about to expire unread: scale the consumers now (queue-ops runbook)."
                if lost
                else "The consumer is stalled or too slow: check its errors and scale it.",
                {"queue": q.name, "oldest_age_s": age},
            )
        )
    return out
