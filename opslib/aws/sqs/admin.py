"""SQS queue administration for the queue-ops runbook: selection by name or prefix, oldest age
and flow metrics from CloudWatch, a non-consuming peek, the visibility timeout and the purge.

The backlog procedure says: look at depth, age and flow; scale the consumers and raise the
visibility timeout; purge only in an emergency. The reads here feed the report; the two
changes (``SetQueueAttributes VisibilityTimeout`` and ``PurgeQueue``) are planned by
:func:`plan_visibility` / :func:`plan_purge` and performed by the handlers registered below,
each re-reading the queue first so an approval never applies to a world that moved.

Why the peek receives with ``VisibilityTimeout=0`` (one call, at most 10 messages) instead of
:func:`opslib.aws.sqs.messages.sample_messages` (receive, hold, then release): a purge preview
runs on a live queue, and a zero timeout never hides a message from its consumers, even for a
moment, nor depends on a release call that can fail. Both raise each message's
``ApproximateReceiveCount`` by one, which SQS offers no way around; on a queue whose redrive
policy has a small ``maxReceiveCount`` that could send a message to the DLQ early, so the peek
is skipped there (see :data:`PEEK_MIN_RECEIVE_COUNT`).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from opslib.aws.sqs.messages import error_shape, redact_body
from opslib.aws.sqs.queues import (
    QueueCounts,
    QueueRef,
    is_missing_queue,
    queue_attributes,
    queue_counts,
    resolve_queue,
)
from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan, check_limit
from opslib.core.progress import ProgressFactory, default_progress
from opslib.core.waits import poll_until

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "MAX_VISIBILITY_TIMEOUT",
    "PEEK_MIN_RECEIVE_COUNT",
    "PURGE_ACTION",
    "PURGE_WAIT_ENV",
    "PURGE_WINDOW_SECONDS",
    "VISIBILITY_ACTION",
    "Flow",
    "Peek",
    "PeekedMessage",
    "dead_letter_source_names",
    "flow",
    "oldest_age",
    "peek",
    "plan_purge",
    "plan_visibility",
    "purge",
    "purge_wait_seconds",
    "select_queues",
    "set_visibility",
]

VISIBILITY_ACTION = "sqs:SetQueueAttributes VisibilityTimeout"
PURGE_ACTION = "sqs:PurgeQueue"
#: SQS's bound on VisibilityTimeout (12 hours)
MAX_VISIBILITY_TIMEOUT = 43_200
#: SQS deletes a purged queue's messages within this window (and allows one purge per window)
PURGE_WINDOW_SECONDS = 60
#: env var that shortens the purge wait (seconds, 0..60): for the sandbox, whose purge is instant
PURGE_WAIT_ENV = "OPSLIB_SQS_PURGE_WAIT_SECONDS"
#: no peek on a queue whose redrive policy would dead-letter a message after fewer receives
PEEK_MIN_RECEIVE_COUNT = 3
PEEK_SIZE = 10


# --- selection -------------------------------------------------------------------------------


def _list(prefix: str, *, sqs: SQSClient) -> list[str]:
    kw = {"QueueNamePrefix": prefix} if prefix else {}
    return [
        u
        for page in sqs.get_paginator("list_queues").paginate(**kw)
        for u in page.get("QueueUrls", [])
    ]


def select_queues(patterns: Sequence[str], *, sqs: SQSClient) -> tuple[QueueRef, ...]:
    """Resolve exact names (NotFoundError, exit 2, when one does not exist) and ``prefix*``
    patterns (ListQueues by prefix); no pattern means every queue of the region. Sorted, unique.
    """
    urls: list[str] = []
    for p in patterns or ("*",):
        if p.endswith("*"):
            urls += _list(p[:-1], sqs=sqs)
        else:
            try:
                urls.append(resolve_queue(p, sqs=sqs, parameter="queues").url)
            except NotFoundError as exc:
                if _list(p, sqs=sqs):  # a prefix written without its *: say so, never guess
                    raise NotFoundError(
                        f"queues: no queue is named {p!r}, but some start with it: write "
                        f"{p + '*'!r} to select them by prefix."
                    ) from exc
                raise
    out: dict[str, QueueRef] = {}
    for u in dict.fromkeys(urls):
        try:
            q = resolve_queue(u, sqs=sqs, parameter="queues")
        except NotFoundError:  # deleted between the list and the read: nothing to report on it
            continue
        out[q.name] = q
    return tuple(out[n] for n in sorted(out))


def dead_letter_source_names(queue: QueueRef, *, sqs: SQSClient) -> tuple[str, ...]:
    """Names of the queues that dead-letter into ``queue`` (empty: it is no one's DLQ)."""
    names: list[str] = []
    kw: dict[str, Any] = {"QueueUrl": queue.url, "MaxResults": 1000}
    while True:
        page = sqs.list_dead_letter_source_queues(**kw)
        names += [u.rstrip("/").rsplit("/", 1)[-1] for u in page.get("queueUrls", [])]
        if not page.get("NextToken"):
            return tuple(names)
        kw["NextToken"] = page["NextToken"]


# --- CloudWatch ------------------------------------------------------------------------------


def _stat(name: str, metric: str, stat: str, minutes: int, *, cloudwatch) -> list[dict]:
    now = _dt.datetime.now(_dt.UTC)
    resp = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName=metric,
        Dimensions=[{"Name": "QueueName", "Value": name}],
        StartTime=now - _dt.timedelta(minutes=minutes),
        EndTime=now,
        Period=60,
        Statistics=[stat],
    )
    return sorted(resp.get("Datapoints", []), key=lambda p: p["Timestamp"])


def oldest_age(name: str, *, cloudwatch: CloudWatchClient) -> float | None:
    """ApproximateAgeOfOldestMessage (seconds, latest minute in the last 15), None without data.

    SQS has no API call that dates the oldest message; the metric is the only honest source
    (a peek sees some messages, not necessarily the oldest).
    """
    points = _stat(name, "ApproximateAgeOfOldestMessage", "Maximum", 15, cloudwatch=cloudwatch)
    return float(points[-1]["Maximum"]) if points else None


@dataclass(frozen=True)
class Flow:
    """Messages sent and deleted over the window (CloudWatch sums); None fields: no metrics."""

    window_minutes: int
    sent: float | None
    deleted: float | None

    @property
    def known(self) -> bool:
        return self.sent is not None and self.deleted is not None

    @property
    def net_per_minute(self) -> float | None:
        """Outflow minus inflow per minute (positive: the backlog shrinks)."""
        if not self.known:
            return None
        return (float(self.deleted) - float(self.sent)) / self.window_minutes

    def drain_seconds(self, backlog: int) -> float | None:
        """Time to drain ``backlog`` at the window's net rate; None: no metrics or not draining."""
        net = self.net_per_minute
        if net is None:
            return None
        if backlog <= 0:
            return 0.0
        return backlog / net * 60.0 if net > 0 else None


def flow(name: str, *, cloudwatch: CloudWatchClient, window_minutes: int = 60) -> Flow:
    """NumberOfMessagesSent and NumberOfMessagesDeleted summed over the window.

    A metric with no datapoint at all is ``None`` (no metrics), never 0: an idle queue that
    CloudWatch watches reports zeros, a queue CloudWatch has nothing for reports nothing.
    """
    sums = []
    for metric in ("NumberOfMessagesSent", "NumberOfMessagesDeleted"):
        points = _stat(name, metric, "Sum", window_minutes, cloudwatch=cloudwatch)
        sums.append(sum(float(p["Sum"]) for p in points) if points else None)
    return Flow(window_minutes, sums[0], sums[1])


# --- peek ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeekedMessage:
    """One message seen by the peek, as fit for the evidence (body redacted and truncated)."""

    message_id: str
    sent_at: str
    age_seconds: float
    receive_count: int
    size_bytes: int
    shape: str
    body: str


@dataclass(frozen=True)
class Peek:
    """What a non-consuming peek saw, or why it did not look (``skipped``)."""

    queue: str
    messages: tuple[PeekedMessage, ...] = ()
    skipped: str = ""

    def to_frame(self):
        import pandas as pd

        cols = ["message_id", "sent_at", "age_seconds", "receive_count", "size_bytes", "shape"]
        cols.append("body")
        return pd.DataFrame([{c: getattr(m, c) for c in cols} for m in self.messages], columns=cols)


def peek(queue: QueueRef, *, sqs: SQSClient, size: int = PEEK_SIZE) -> Peek:
    """Up to ``size`` (<= 10) messages received with VisibilityTimeout=0: they stay visible to
    the consumers; each one's receive count goes up by one (see the module docstring)."""
    mrc = queue.max_receive_count
    if mrc is not None and mrc < PEEK_MIN_RECEIVE_COUNT:
        return Peek(
            queue.name,
            skipped=f"not peeked: the redrive policy dead-letters after maxReceiveCount={mrc}, "
            "and a peek counts as a receive",
        )
    resp = sqs.receive_message(
        QueueUrl=queue.url,
        MaxNumberOfMessages=max(1, min(size, 10)),
        VisibilityTimeout=0,
        WaitTimeSeconds=1,
        MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
    )
    now = time.time()
    out: dict[str, PeekedMessage] = {}
    for m in resp.get("Messages", []):
        a = m.get("Attributes", {})
        sent = int(a.get("SentTimestamp", now * 1000)) / 1000
        out.setdefault(
            m["MessageId"],
            PeekedMessage(
                message_id=m["MessageId"],
                sent_at=_dt.datetime.fromtimestamp(sent, _dt.UTC)
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z"),
                age_seconds=round(max(now - sent, 0.0), 1),
                receive_count=int(a.get("ApproximateReceiveCount", 0)),
                size_bytes=len(m["Body"].encode()),
                shape=error_shape(m["Body"])[0],
                body=redact_body(m["Body"]),
            ),
        )
    return Peek(queue.name, tuple(out.values()))


# --- visibility timeout ----------------------------------------------------------------------


def plan_visibility(queues: Sequence[QueueRef], *, timeout: int, max_queues: int) -> Plan:
    """One SetQueueAttributes per queue whose VisibilityTimeout is not ``timeout`` already."""
    if not 1 <= timeout <= MAX_VISIBILITY_TIMEOUT:
        raise BadInputError(f"visibility_timeout={timeout}: give 1..{MAX_VISIBILITY_TIMEOUT}")
    check_limit("max_queues", len(queues), max_queues)
    changes, same = [], []
    for q in queues:
        cur = int(q.attributes.get("VisibilityTimeout", 30))
        if cur == timeout:
            same.append(q.name)
            continue
        changes.append(
            Change(
                action=VISIBILITY_ACTION,
                target=q.name,
                effect=f"VisibilityTimeout {cur}s -> {timeout}s",
                params={"queue_url": q.url, "from": cur, "visibility_timeout": timeout},
            )
        )
    warnings = [f"{', '.join(same)}: already {timeout}s, left alone"] if same else []
    warnings.append(
        "A longer timeout stops slow consumers' messages from being redelivered (and processed "
        "twice) while they work; it also delays the retry of a message whose consumer crashed."
    )
    return Plan(
        title=f"Set the visibility timeout to {timeout}s on {len(changes)} queue(s)",
        changes=tuple(changes),
        warnings=tuple(warnings),
        limits={"max_queues": max_queues},
    )


def _visibility(url: str, *, sqs: SQSClient) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    return int(attrs.get("Attributes", {}).get("VisibilityTimeout", 30))


@executors.register(VISIBILITY_ACTION)
def set_visibility(change: Change, *, sqs: SQSClient) -> ChangeOutcome:
    """Set one queue's VisibilityTimeout if it is still what the plan saw, then read it back."""
    p = change.params
    try:
        have = _visibility(p["queue_url"], sqs=sqs)
        if have != int(p["from"]):
            return ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.SKIPPED,
                f"VisibilityTimeout changed since the plan ({p['from']}s -> {have}s); plan again",
            )
        sqs.set_queue_attributes(
            QueueUrl=p["queue_url"],
            Attributes={"VisibilityTimeout": str(int(p["visibility_timeout"]))},
        )
        after = _visibility(p["queue_url"], sqs=sqs)
    except botocore.exceptions.ClientError as exc:
        raise translate_aws_error(exc, f"sqs:SetQueueAttributes {change.target}") from exc
    ok = after == int(p["visibility_timeout"])
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED if ok else ChangeStatus.FAILED,
        f"VisibilityTimeout {p['from']}s -> {after}s" + ("" if ok else " (not what was set)"),
        {"visibility_timeout": after},
    )


# --- purge -----------------------------------------------------------------------------------


def purge_wait_seconds(environ: dict[str, str] | None = None) -> float:
    """How long the purge handler waits out SQS's purge window: 60 s, or ``PURGE_WAIT_ENV``
    (clamped to 0..60) on an endpoint whose purge is instant (the sandbox)."""
    raw = (environ if environ is not None else os.environ).get(PURGE_WAIT_ENV, "").strip()
    if not raw:
        return float(PURGE_WINDOW_SECONDS)
    try:
        return min(max(float(raw), 0.0), float(PURGE_WINDOW_SECONDS))
    except ValueError as exc:
        raise BadInputError(f"{PURGE_WAIT_ENV}={raw!r}: give seconds, 0..60") from exc


def plan_purge(
    queue: QueueRef, counts: QueueCounts, *, dlq_sources: Sequence[str], peeked: Peek
) -> Plan:
    """One PurgeQueue. The counts and the peek go into the plan's warnings (the evidence), not
    into the change: the approval binds the queue, not a depth that moves every second."""
    warnings = [
        f"IRREVERSIBLE: every message in {queue.name} is deleted, about {counts.total:,} now "
        f"(visible {counts.visible:,}, in flight {counts.in_flight:,}, delayed {counts.delayed:,}); "
        "messages sent during the next 60 s may be deleted too.",
        f"Peeked {len(peeked.messages)} message(s) for the evidence"
        + (f" ({peeked.skipped})" if peeked.skipped else "")
        + "; see attachments/purge-preview-*.json.",
    ]
    if dlq_sources or queue.name.lower().endswith(("dlq", "dlq.fifo", "dead-letter")):
        warnings.append(
            f"{queue.name} is a dead-letter queue"
            + (f" (of {', '.join(dlq_sources)})" if dlq_sources else "")
            + ": the dlq-redrive runbook moves its messages back instead of deleting them."
        )
    return Plan(
        title=f"Purge {queue.name}",
        changes=(
            Change(
                action=PURGE_ACTION,
                target=queue.name,
                effect="delete every message (irreversible), wait out the purge window, verify empty",
                params={"queue_url": queue.url},
            ),
        ),
        warnings=tuple(warnings),
        limits={"queues_per_purge": 1, "counts_at_plan": counts.total},
    )


@executors.register(PURGE_ACTION)
def purge(
    change: Change,
    *,
    sqs: SQSClient,
    purge_wait_s: float = PURGE_WINDOW_SECONDS,
    progress: ProgressFactory = default_progress,
) -> ChangeOutcome:
    """PurgeQueue, then wait out the purge window (bounded) and count what is left.

    ``purged_count`` is the total counted just before the call (SQS does not say how many it
    deleted); ``remaining`` is the total after the window. A non-zero remainder is reported,
    not hidden: producers may still be sending.
    """
    url = change.params["queue_url"]
    name = change.target
    ref = QueueRef(name, url, "", name.endswith(".fifo"))
    try:
        before = queue_counts(ref, sqs=sqs)
        sqs.purge_queue(QueueUrl=url)
    except botocore.exceptions.ClientError as exc:
        if is_missing_queue(exc):
            raise NotFoundError(f"{name} no longer exists; nothing was purged") from exc
        if aws_error_kind(exc) is AwsErrorKind.CONFLICT or "PurgeQueueInProgress" in str(exc):
            return ChangeOutcome(
                change.action,
                name,
                ChangeStatus.FAILED,
                "PurgeQueueInProgress: this queue was purged less than 60 s ago; wait and run again",
            )
        raise translate_aws_error(exc, f"sqs:PurgeQueue {name}") from exc
    started = time.monotonic()

    def check():
        elapsed = time.monotonic() - started
        c = queue_counts(ref, sqs=sqs)
        return elapsed >= purge_wait_s, c, f"{c.total:,} left"

    after = poll_until(
        check,
        timeout_s=purge_wait_s + 5,
        poll_s=min(5.0, max(purge_wait_s, 0.5)),
        desc=f"purge window of {name}",
        on_timeout=lambda c, s: f"{name}: purge window not over ({s}); count it again",
        progress=progress,
    )
    data = {
        "purged_count": before.total,
        "before": {"visible": before.visible, "in_flight": before.in_flight},
        "remaining": after.total,
        "waited_s": round(time.monotonic() - started, 1),
    }
    detail = f"purged about {before.total:,}; {after.total:,} left after {data['waited_s']}s"
    return ChangeOutcome(change.action, name, ChangeStatus.APPLIED, detail, data)


def counts_now(queue: QueueRef, *, sqs: SQSClient) -> QueueCounts:
    """Counts of one queue (the verify step's read)."""
    return queue_counts(queue, sqs=sqs)


def visibility_now(queue: QueueRef, *, sqs: SQSClient) -> int:
    """The queue's VisibilityTimeout now (the verify step's read)."""
    return int(queue_attributes(queue.url, sqs=sqs).get("VisibilityTimeout", 30))
