"""SQS dead-letter-queue redrive: resolve, inspect, filter, plan, verify.

The seed procedure (001 §5.4) redrives with a loop that sends and deletes one message at a
time, drops message attributes, never checks partial failures and cannot say afterwards what
it moved. This module is the read-only half of the replacement: it resolves queues, reports
queue health against the seed's backlog thresholds, samples a DLQ without consuming it,
validates the operator's filter before anything moves, and builds the :class:`Plan` that the
notebook shows and :func:`opslib.safety.gate` applies. The move itself (copy and native
strategies) lives in :mod:`opslib.aws.sqs_move`; :func:`redrive_executor` binds it to a plan.

Every function takes the SQS client as a keyword-only ``sqs`` (see :mod:`opslib.clients`).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opslib.core.errors import BadInputError, NotFoundError, PreflightError
from opslib.core.findings import Finding, Severity, error_finding
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan

#: The seed's backlog thresholds (001 §5.1/5.2): visible messages.
BACKLOG_WARN = 1_000
BACKLOG_CRITICAL = 10_000
#: A DLQ message younger than this means failures are still arriving.
STILL_FAILING_SECONDS = 300
#: Share of the retention period after which the oldest message is about to expire.
RETENTION_ALERT_SHARE = 0.75

#: Client settings for a redrive (pass to ``clients.aws_client("sqs", **MOVER_CLIENT_CONFIG)``):
#: a move is thousands of small calls, so client-side parameter validation (the server validates
#: anyway) and the adaptive retry mode's client-side rate limiter cost ~20% of the throughput;
#: the mover does its own backoff and counts throttling, and ``rate_limit_per_second`` is the
#: way to be gentle with a shared queue. The pool is sized for the largest ``concurrency``.
#: A fixed User-Agent skips botocore's per-request rebuild of it (~10% of a call's Python CPU).
MOVER_CLIENT_CONFIG: dict[str, Any] = {
    "parameter_validation": False,
    "user_agent": "opslib-redrive",
    "retries": {"mode": "standard", "max_attempts": 5},
    "max_pool_connections": 34,
}

STRATEGIES = ("auto", "copy", "native")
COPY_ACTION = "sqs:ReceiveMessage+SendMessageBatch+DeleteMessageBatch"
NATIVE_ACTION = "sqs:StartMessageMoveTask"

_NOT_FOUND_CODES = {
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NonExistentQueue",
}


def _client_error():
    import botocore.exceptions

    return botocore.exceptions.ClientError


def _error_code(exc: BaseException) -> str:
    resp = getattr(exc, "response", None) or {}
    err = resp.get("Error", {}) if isinstance(resp, dict) else {}
    return str(err.get("Code", "")) or type(exc).__name__


# --------------------------------------------------------------------------------------------
# queues


@dataclass(frozen=True)
class QueueRef:
    """A resolved queue: name, URL, ARN, FIFO flag and the attributes read at resolve time."""

    name: str
    url: str
    arn: str
    fifo: bool
    attributes: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def redrive_policy(self) -> dict[str, Any]:
        raw = self.attributes.get("RedrivePolicy", "")
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    @property
    def dead_letter_target_arn(self) -> str:
        return str(self.redrive_policy.get("deadLetterTargetArn", ""))

    @property
    def max_receive_count(self) -> int | None:
        v = self.redrive_policy.get("maxReceiveCount")
        return int(v) if v is not None else None


def queue_name_from(url_or_arn: str) -> str:
    """The queue name from a URL (``.../123456789012/orders``) or an ARN (``arn:...:orders``)."""
    if url_or_arn.startswith("arn:"):
        return url_or_arn.rsplit(":", 1)[-1]
    return url_or_arn.rstrip("/").rsplit("/", 1)[-1]


def _attributes(url: str, *, sqs) -> dict[str, str]:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})


def resolve_queue(name_url_or_arn: str, *, sqs, parameter: str = "queue") -> QueueRef:
    """Resolve a queue given by name, URL or ARN; NotFoundError (exit 2) when it does not exist.

    Why resolve up front: a typo must stop the runbook before anything is read or moved, with
    a message naming the parameter, not fail half-way through a move.
    """
    value = (name_url_or_arn or "").strip()
    if not value:
        raise BadInputError(f"{parameter} is empty: give a queue name, URL or ARN.")
    try:
        if value.startswith(("http://", "https://")):
            url = value
        elif value.startswith("arn:"):
            parts = value.split(":")
            if len(parts) != 6 or parts[2] != "sqs":
                raise BadInputError(f"{parameter}={value!r} is not an SQS queue ARN.")
            url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
        else:
            url = sqs.get_queue_url(QueueName=value)["QueueUrl"]
        attrs = _attributes(url, sqs=sqs)
    except _client_error() as exc:
        if _error_code(exc) in _NOT_FOUND_CODES:
            raise NotFoundError(
                f"{parameter}: queue {value!r} does not exist in this account/region. Check the "
                f"name (aws sqs list-queues --queue-name-prefix {queue_name_from(value)[:20]}) and "
                "the region parameter."
            ) from exc
        raise
    name = queue_name_from(url)
    arn = attrs.get("QueueArn", "")
    return QueueRef(
        name=name,
        url=url,
        arn=arn,
        fifo=attrs.get("FifoQueue", "false").lower() == "true" or name.endswith(".fifo"),
        attributes=dict(attrs),
    )


def dead_letter_sources(dlq: QueueRef, *, sqs) -> tuple[QueueRef, ...]:
    """The queues whose redrive policy names ``dlq`` as their dead-letter target."""
    urls: list[str] = []
    kwargs: dict[str, Any] = {"QueueUrl": dlq.url, "MaxResults": 1000}
    while True:
        page = sqs.list_dead_letter_source_queues(**kwargs)
        urls += page.get("queueUrls", [])
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    return tuple(resolve_queue(u, sqs=sqs, parameter="source queue") for u in urls)


# --------------------------------------------------------------------------------------------
# filter


@dataclass(frozen=True)
class MessageFilter:
    """Which DLQ messages to move: JMESPath over JSON bodies, or ``re:<regex>`` over the text.

    An empty expression matches everything. A JMESPath filter matches a message when the
    expression is truthy on its JSON body (JMESPath truthiness: null, false, "", [] and {}
    are false); bodies that are not JSON never match it. A ``re:`` filter searches the raw
    body text, JSON or not. Non-matching messages stay in the DLQ.
    """

    expression: str = ""
    _compiled: Any = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        if not self.expression:
            return "all"
        return "regex" if self.expression.startswith("re:") else "jmespath"

    def matches(self, body: str) -> bool:
        if self._compiled is None:
            return True
        if self.kind == "regex":
            return self._compiled.search(body) is not None
        try:
            doc = json.loads(body)
        except ValueError:
            return False
        result = self._compiled.search(doc)
        return result not in (None, False, "", [], {})


def parse_filter(expression: str) -> MessageFilter:
    """Compile a filter up front; BadInputError (exit 2, nothing moved) when it does not parse."""
    expr = (expression or "").strip()
    if not expr:
        return MessageFilter("")
    if expr.startswith("re:"):
        try:
            return MessageFilter(expr, re.compile(expr[3:]))
        except re.error as exc:
            raise BadInputError(
                f"filter_expression {expr!r}: the regular expression does not compile ({exc}). "
                "Fix it, or use a JMESPath expression (without the re: prefix) for JSON bodies."
            ) from exc
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return MessageFilter(expr, jmespath.compile(expr))
    except JMESPathError as exc:
        raise BadInputError(
            f"filter_expression {expr!r} is not valid JMESPath ({str(exc).splitlines()[0]}). "
            "Example: error.type == 'Timeout' (strings in single quotes); for non-JSON bodies use "
            "re:<regex>."
        ) from exc


# --------------------------------------------------------------------------------------------
# preflight


@dataclass(frozen=True)
class RedriveTarget:
    """Everything resolved and validated before a redrive: DLQ, sources, destination, filter."""

    dlq: QueueRef
    sources: tuple[QueueRef, ...]
    destination: QueueRef | None  # None: each message goes back to the queue it came from
    message_filter: MessageFilter = field(default_factory=MessageFilter)

    @property
    def destination_label(self) -> str:
        if self.destination is not None:
            return self.destination.name
        if len(self.sources) == 1:
            return self.sources[0].name
        return "source queue of each message (" + ", ".join(s.name for s in self.sources) + ")"

    @property
    def routes(self) -> dict[str, str]:
        """Source queue ARN -> URL, for per-message routing by DeadLetterQueueSourceArn."""
        return {s.arn: s.url for s in self.sources}

    @property
    def destination_is_source(self) -> bool:
        return self.destination is None or any(self.destination.arn == s.arn for s in self.sources)


def preflight(
    dlq: str,
    destination: str = "",
    filter_expression: str = "",
    *,
    sqs,
    strategy: str = "auto",
    max_messages: int = 0,
    sample_size: int = 20,
    rate_limit_per_second: float = 0,
    concurrency: int = 4,
) -> RedriveTarget:
    """Validate every parameter and resolve the queues; raises a BadInputError subclass.

    Refuses, before anything is read or moved: a missing DLQ or destination (NotFoundError), a
    queue given as ``dlq`` that no queue uses as its dead-letter target, a filter that does not
    parse, a FIFO/standard mismatch, the DLQ as its own destination, and out-of-range limits.
    """
    if strategy not in STRATEGIES:
        raise BadInputError(f"strategy={strategy!r}: use one of {', '.join(STRATEGIES)}.")
    if max_messages < 0:
        raise BadInputError("max_messages must be >= 0 (0 = all messages).")
    if sample_size < 0 or sample_size > 100:
        raise BadInputError("sample_size must be between 0 and 100.")
    if rate_limit_per_second < 0:
        raise BadInputError("rate_limit_per_second must be >= 0 (0 = unlimited).")
    if concurrency < 1 or concurrency > 32:
        raise BadInputError("concurrency must be between 1 and 32.")
    message_filter = parse_filter(filter_expression)
    q = resolve_queue(dlq, sqs=sqs, parameter="dlq")
    sources = dead_letter_sources(q, sqs=sqs)
    if not sources:
        raise BadInputError(
            f"dlq={q.name!r} is not a dead-letter queue: no queue names it as deadLetterTargetArn "
            "in its redrive policy. Give the DLQ (e.g. orders-dlq), not the main queue; to move "
            "messages between ordinary queues, this runbook is the wrong tool."
        )
    dest: QueueRef | None = None
    if destination.strip():
        dest = resolve_queue(destination, sqs=sqs, parameter="destination")
        if dest.arn == q.arn:
            raise BadInputError(
                "destination is the DLQ itself: give the queue to move messages to."
            )
    if dest is not None:
        fifo_pairs = [(dest.fifo, dest.name)]
    else:
        fifo_pairs = [(s.fifo, s.name) for s in sources]
    for dest_fifo, dest_name in fifo_pairs:
        if dest_fifo != q.fifo:
            kind = "FIFO" if q.fifo else "standard"
            raise BadInputError(
                f"dlq {q.name!r} is a {kind} queue but destination {dest_name!r} is not: moving "
                "between FIFO and standard queues would lose or invent ordering. Pick a "
                f"destination of the same type."
            )
    return RedriveTarget(dlq=q, sources=sources, destination=dest, message_filter=message_filter)


# --------------------------------------------------------------------------------------------
# health


@dataclass(frozen=True)
class QueueCounts:
    """Approximate message counts of one queue at one moment."""

    name: str
    visible: int
    in_flight: int
    delayed: int
    at: str = ""

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def queue_counts(queue: QueueRef, *, sqs) -> QueueCounts:
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    ).get("Attributes", {})
    return QueueCounts(
        name=queue.name,
        visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        at=_now_iso(),
    )


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
    """Health of every queue in the redrive, with findings ranked by the seed's thresholds."""

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


def _cloudwatch_oldest_age(name: str, *, cloudwatch) -> float | None:
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


def _fmt_age(seconds: float | None) -> str:
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
    """The seed's backlog thresholds as a finding: >= 10,000 critical, >= 1,000 warning."""
    source = f"sqs:{name}"
    data = data or {}
    if visible >= BACKLOG_CRITICAL:
        return Finding(
            Severity.CRITICAL,
            f"{name}: backlog {visible:,} >= {BACKLOG_CRITICAL:,}",
            source,
            evidence,
            "Scale consumers (001 §5.2) before redriving more into it; find the failure cause.",
            data,
        )
    if visible >= BACKLOG_WARN:
        return Finding(
            Severity.WARNING,
            f"{name}: backlog {visible:,} >= {BACKLOG_WARN:,}",
            source,
            evidence,
            "Watch the backlog drain; scale consumers if it keeps growing (001 §5.2).",
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


def queue_health(
    queue: QueueRef, *, sqs, role: str, cloudwatch=None, sample: Sample | None = None
) -> tuple[QueueHealth, list[Finding]]:
    """One queue's health and its findings (backlog thresholds, expiry risk, failures arriving).

    The oldest message's age comes from CloudWatch's ApproximateAgeOfOldestMessage when a
    ``cloudwatch`` client is given and has data, else from the sample's oldest SentTimestamp
    (a lower bound: the sample may miss the oldest message).
    """
    source = f"sqs:{queue.name}"
    findings: list[Finding] = []
    attrs = _attributes(queue.url, sqs=sqs)
    visible = int(attrs.get("ApproximateNumberOfMessages", 0))
    in_flight = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
    delayed = int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))
    age: float | None = None
    age_from = ""
    if cloudwatch is not None:
        try:
            age = _cloudwatch_oldest_age(queue.name, cloudwatch=cloudwatch)
            age_from = "cloudwatch" if age is not None else ""
        except Exception as exc:  # noqa: BLE001 - shown as a finding; the sample is the fallback
            findings.append(error_finding(f"cloudwatch:{queue.name}", exc))
    if age is None and sample is not None and sample.queue == queue.name and sample.messages:
        age = max(m.age_seconds for m in sample.messages)
        age_from = "sample"
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
        f"oldest={_fmt_age(age)}{' (' + age_from + ')' if age_from else ''}"
    )
    data = {
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
                f"{queue.name}: oldest message ({_fmt_age(age)}) expires within "
                f"{_fmt_age(max(retention - age, 0))}",
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
    target: RedriveTarget, *, sqs, cloudwatch=None, sample: Sample | None = None
) -> HealthReport:
    """Health of the DLQ, its source queues and the destination; errors per queue become findings."""
    roles: dict[str, tuple[QueueRef, list[str]]] = {}

    def add(q: QueueRef, role: str) -> None:
        roles.setdefault(q.arn or q.url, (q, []))[1].append(role)

    add(target.dlq, "dlq")
    for s in target.sources:
        add(s, "source")
    if target.destination is not None:
        add(target.destination, "destination")
    else:
        for s in target.sources:
            add(s, "destination")
    rows: list[QueueHealth] = []
    findings: list[Finding] = []
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
                    f"{target.dlq.name}: failures still arriving (newest sampled message {_fmt_age(newest)} old)",
                    f"sqs:{target.dlq.name}",
                    "",
                    "Fix the consumer first: redriven messages would fail again and come back.",
                )
            )
    return HealthReport(queues=tuple(rows), findings=tuple(findings))


# --------------------------------------------------------------------------------------------
# sample

_ERROR_KEYS = (
    "error",
    "errorType",
    "error_type",
    "errorCode",
    "error_code",
    "exception",
    "reason",
    "failure",
    "errorMessage",
    "error_message",
)
_DIGIT_RUN = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")  # card-number-shaped digit runs
_SENSITIVE_KEY = re.compile(r"(?i)pass|secret|token|card|pan|cvv|iban|ssn|authorization|api.?key")


def error_shape(body: str) -> tuple[str, str]:
    """(shape, error) of a message body: sorted JSON keys plus an error field, or a text prefix.

    Why: a DLQ usually holds a handful of failure kinds; grouping by the keys and the error
    field shows them at a glance without reading every body.
    """
    try:
        doc = json.loads(body)
    except ValueError:
        text = re.sub(r"\d+", "#", body.strip())[:40]
        return f"text: {text}", ""
    if not isinstance(doc, dict):
        return f"json {type(doc).__name__}", ""
    shape = "{" + ",".join(sorted(doc)) + "}"
    error = ""
    for key in _ERROR_KEYS:
        if key in doc and doc[key] not in (None, ""):
            v = doc[key]
            if isinstance(v, dict):
                v = (
                    v.get("type")
                    or v.get("code")
                    or v.get("name")
                    or v.get("message")
                    or ",".join(sorted(v))
                )
            error = str(v)[:80]
            break
    return shape, error


def redact_body(body: str, limit: int = 300) -> str:
    """A body fit to show: secret-looking JSON fields and card-shaped numbers masked, then the
    shared evidence redactor, then truncated."""
    from opslib.core.redact import MASK, redact_text

    try:
        doc = json.loads(body)
    except ValueError:
        doc = None

    def mask(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (MASK if _SENSITIVE_KEY.search(str(k)) else mask(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [mask(x) for x in v]
        return v

    text = json.dumps(mask(doc), separators=(",", ":")) if doc is not None else body
    text = _DIGIT_RUN.sub(MASK, redact_text(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _jp_field(name: str) -> str:
    """A JMESPath identifier for a body key (quoted unless it is a bare identifier)."""
    return name if _IDENT.match(name) else json.dumps(name)


def _jp_literal(value: Any) -> str:
    """A JMESPath literal: a raw string ('...') when plain, else JSON in backticks (escaped)."""
    if isinstance(value, str) and not re.search(r"['\\]", value):
        return f"'{value}'"
    return "`" + json.dumps(value, separators=(",", ":")).replace("`", "\\`") + "`"


def error_selector(body: str) -> str:
    """A JMESPath predicate that selects the messages with this body's error kind, or "".

    Why: the redrive widget lets the engineer pick error kinds from the sample, and the move
    filters on bodies only; this is the filter, built from the raw (unredacted, untruncated)
    body, following exactly the field :func:`error_shape` reports. For a JSON object without an
    error field it selects the same set of keys; non-JSON bodies have no selector.
    """
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    for key in _ERROR_KEYS:
        if key in doc and doc[key] not in (None, ""):
            v, path = doc[key], _jp_field(key)
            if isinstance(v, dict):
                sub = next((k for k in ("type", "code", "name", "message") if v.get(k)), None)
                if sub is None:
                    return f"join(',', sort(keys({path}))) == {_jp_literal(','.join(sorted(v)))}"
                path, v = f"{path}.{sub}", v[sub]
            if isinstance(v, str):
                return f"{path} == {_jp_literal(v)}"
            return f"to_string({path}) == {_jp_literal(json.dumps(v, separators=(',', ':')))}"
    return f"sort(keys(@)) == {_jp_literal(sorted(doc))}"


def _group_keys(body: str, group_id: str) -> tuple[str, ...]:
    if not group_id:
        return ()
    try:
        doc = json.loads(body)
    except ValueError:
        return ()
    if not isinstance(doc, dict):
        return ()
    return tuple(sorted(k for k, v in doc.items() if v == group_id))


@dataclass(frozen=True)
class SampledMessage:
    """One sampled DLQ message, as shown (body redacted and truncated)."""

    message_id: str
    sent_at: str
    age_seconds: float
    receive_count: int
    size_bytes: int
    shape: str
    error: str
    group_id: str
    source_queue: str
    attribute_names: tuple[str, ...]
    matches_filter: bool
    body: str
    #: JMESPath predicate selecting this message's error kind (see :func:`error_selector`).
    selector: str = ""
    #: Top-level body keys whose value is the MessageGroupId (FIFO; for group selection).
    group_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    """Messages read from a queue without consuming them (released right after reading)."""

    queue: str
    requested: int
    messages: tuple[SampledMessage, ...]
    filter_expression: str = ""
    errors: tuple[Finding, ...] = ()

    @property
    def matched(self) -> int:
        return sum(m.matches_filter for m in self.messages)

    def to_frame(self):
        import pandas as pd

        cols = [
            "message_id",
            "sent_at",
            "age_seconds",
            "receive_count",
            "size_bytes",
            "shape",
            "error",
            "group_id",
            "source_queue",
            "matches_filter",
            "body",
        ]
        return pd.DataFrame([{c: getattr(m, c) for c in cols} for m in self.messages], columns=cols)

    def shapes_frame(self):
        """Messages grouped by error shape: count, ages, receive counts, size, filter matches."""
        import pandas as pd

        cols = [
            "shape",
            "error",
            "count",
            "matched",
            "oldest_age_s",
            "newest_age_s",
            "max_receive_count",
            "mean_size_bytes",
            "example_id",
        ]
        frame = self.to_frame()
        if frame.empty:
            return pd.DataFrame(columns=cols)
        g = frame.groupby(["shape", "error"], sort=False)
        out = g.agg(
            count=("message_id", "size"),
            matched=("matches_filter", "sum"),
            oldest_age_s=("age_seconds", "max"),
            newest_age_s=("age_seconds", "min"),
            max_receive_count=("receive_count", "max"),
            mean_size_bytes=("size_bytes", "mean"),
            example_id=("message_id", "first"),
        ).reset_index()
        out["mean_size_bytes"] = out["mean_size_bytes"].round(0).astype(int)
        return out.sort_values("count", ascending=False, kind="stable")[cols].reset_index(drop=True)


def _release(url: str, handles: Sequence[str], *, sqs) -> list[str]:
    """Make received messages visible again now (ChangeMessageVisibility 0); returns failures."""
    failures: list[str] = []
    for i in range(0, len(handles), 10):
        chunk = handles[i : i + 10]
        resp = sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(j), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for j, h in enumerate(chunk)
            ],
        )
        failures += [f"{f.get('Code', '')}: {f.get('Message', '')}" for f in resp.get("Failed", [])]
    return failures


def sample_messages(
    queue: QueueRef,
    *,
    sqs,
    size: int = 20,
    message_filter: MessageFilter | None = None,
    hold_seconds: int = 30,
) -> Sample:
    """Read up to ``size`` messages without consuming them: receive with a short visibility
    timeout, then release them at once with ChangeMessageVisibility 0 (also on error).

    Reading raises each message's ApproximateReceiveCount by one; a DLQ has no redrive policy
    of its own, so that moves nothing.
    """
    message_filter = message_filter or MessageFilter("")
    got: list[dict[str, Any]] = []
    handles: list[str] = []
    errors: list[Finding] = []
    try:
        empty = 0
        while len(got) < size and empty < 2:
            resp = sqs.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=min(10, size - len(got)),
                VisibilityTimeout=hold_seconds,
                WaitTimeSeconds=0 if got else 1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            msgs = resp.get("Messages", [])
            if not msgs:
                empty += 1
                continue
            empty = 0
            for m in msgs:
                handles.append(m["ReceiptHandle"])
                got.append(m)
    finally:
        if handles:
            try:
                failed = _release(queue.url, handles, sqs=sqs)
            except Exception as exc:  # noqa: BLE001 - shown: those messages reappear after hold_seconds anyway
                errors.append(
                    error_finding(
                        f"sqs:{queue.name}",
                        exc,
                        next_action=(
                            f"Sampled messages become visible again after {hold_seconds}s."
                        ),
                    )
                )
            else:
                if failed:
                    errors.append(
                        Finding(
                            Severity.WARNING,
                            f"{queue.name}: {len(failed)} sampled message(s) not released",
                            f"sqs:{queue.name}",
                            "; ".join(failed[:3]),
                            f"They become visible again after {hold_seconds}s.",
                        )
                    )
    now = time.time()
    seen: set[str] = set()
    out: list[SampledMessage] = []
    for m in got:
        if m["MessageId"] in seen:
            continue
        seen.add(m["MessageId"])
        a = m.get("Attributes", {})
        sent = int(a.get("SentTimestamp", now * 1000)) / 1000
        shape, error = error_shape(m["Body"])
        src = a.get("DeadLetterQueueSourceArn", "")
        out.append(
            SampledMessage(
                message_id=m["MessageId"],
                sent_at=_dt.datetime.fromtimestamp(sent, _dt.UTC)
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z"),
                age_seconds=round(max(now - sent, 0.0), 1),
                receive_count=int(a.get("ApproximateReceiveCount", 0)),
                size_bytes=len(m["Body"].encode()),
                shape=shape,
                error=error,
                group_id=a.get("MessageGroupId", ""),
                source_queue=queue_name_from(src) if src else "",
                attribute_names=tuple(sorted(m.get("MessageAttributes", {}))),
                matches_filter=message_filter.matches(m["Body"]),
                body=redact_body(m["Body"]),
                selector=error_selector(m["Body"]),
                group_keys=_group_keys(m["Body"], a.get("MessageGroupId", "")),
            )
        )
    return Sample(queue.name, size, tuple(out), message_filter.expression, tuple(errors))


# --------------------------------------------------------------------------------------------
# plan


class _ProbeRefused(Exception):
    """Internal: the endpoint answered the probe with an error; carries the code."""


def native_supported(dlq: QueueRef, *, sqs) -> tuple[bool, str]:
    """Whether the endpoint supports message move tasks (ListMessageMoveTasks answers).

    Emulators without it answer 4xx/5xx; botocore would retry a 5xx several times with backoff,
    so the probe stops after the first attempt (a one-off handler on this call only).
    Returns (supported, why) where ``why`` is "" or the reason it is not usable.
    """

    def no_retry(response=None, caught_exception=None, **_: Any):
        if caught_exception is not None:
            raise _ProbeRefused(type(caught_exception).__name__)
        if response is not None and response[0].status_code >= 400:
            raise _ProbeRefused(str(response[0].status_code))
        return None

    event = "needs-retry.sqs.ListMessageMoveTasks"
    sqs.meta.events.register_first(event, no_retry, unique_id="opslib-native-probe")
    try:
        resp = sqs.list_message_move_tasks(SourceArn=dlq.arn, MaxResults=10)
    except _ProbeRefused as exc:
        return False, f"the endpoint does not support message move tasks (HTTP/{exc})"
    except _client_error() as exc:
        return False, f"ListMessageMoveTasks refused: {_error_code(exc)}"
    finally:
        sqs.meta.events.unregister(event, unique_id="opslib-native-probe")
    running = [t for t in resp.get("Results", []) if t.get("Status") == "RUNNING"]
    if running:
        raise PreflightError(
            f"A message move task is already RUNNING on {dlq.name} (handle "
            f"{running[0].get('TaskHandle', '?')[:24]}...). Wait for it or cancel it "
            "(aws sqs cancel-message-move-task) before starting another redrive."
        )
    return True, ""


def choose_strategy(
    target: RedriveTarget, *, sqs, strategy: str = "auto", max_messages: int = 0
) -> tuple[str, str]:
    """Resolve ``auto`` to ``native`` or ``copy``; returns (strategy, reason).

    Native (StartMessageMoveTask) is server-side and fastest but moves everything, unfiltered,
    back to the source queues, and keeps no per-message journal; so it is chosen only when
    there is no filter, no max_messages, the destination is the source queue, the queue is
    standard, and the endpoint supports it.
    """
    blockers = []
    if target.message_filter.expression:
        blockers.append("a filter is set")
    if max_messages:
        blockers.append("max_messages is set")
    if not target.destination_is_source:
        blockers.append("the destination is not the source queue")
    if target.dlq.fifo:
        blockers.append("FIFO queues are moved by copy to keep group order")
    if strategy == "copy":
        return "copy", "requested"
    if blockers:
        if strategy == "native":
            raise BadInputError(
                "strategy='native' cannot be used here: "
                + "; ".join(blockers)
                + ". Use strategy='auto' or 'copy'."
            )
        return "copy", "; ".join(blockers)
    ok, why = native_supported(target.dlq, sqs=sqs)
    if ok:
        return "native", "no filter, destination is the source queue, endpoint supports it"
    if strategy == "native":
        raise BadInputError(f"strategy='native' is not available: {why}. Use strategy='copy'.")
    return "copy", why


@dataclass(frozen=True)
class _Option:
    key: str  # the value the widget returns: a group id (FIFO) or an error selector/shape
    label: str
    count: int
    predicate: str  # the JMESPath selecting it ("" when none can: non-JSON bodies)


def _options(target: RedriveTarget, sample: Sample | None) -> list[_Option]:
    """The sample's message groups (FIFO) or error kinds (standard) among the filter's matches."""
    fifo = target.dlq.fifo
    found: dict[str, list[SampledMessage]] = {}
    for m in sample.messages if sample is not None else ():
        if m.matches_filter:
            found.setdefault(m.group_id if fifo else (m.selector or m.shape), []).append(m)
    total = len(sample.messages) if sample is not None else 0
    names = {k: (k if fifo else (ms[0].error or ms[0].shape)) for k, ms in found.items()}
    clash = {n for n in names.values() if list(names.values()).count(n) > 1}
    out = []
    for key, ms in found.items():
        name = names[key] + (f" [{key}]" if names[key] in clash else "")
        out.append(
            _Option(
                key,
                f"{name} ({len(ms)} of {total} sampled)",
                len(ms),
                "" if fifo else ms[0].selector,
            )
        )
    if fifo:
        return sorted(out, key=lambda o: o.key)
    return sorted(out, key=lambda o: (-o.count, o.label))


def redrive_selection(
    target: RedriveTarget, sample: Sample | None
) -> tuple[list[tuple[str, str]], list[str], str]:
    """(options, preselection, description) for the "what to redrive" widget.

    FIFO DLQs: the sampled message groups; standard: the sampled error kinds (as
    :meth:`Sample.shapes_frame` groups them). Only messages the ``filter_expression`` already
    selects are offered, and all of them are preselected, so the parameters' choice (and a
    headless run) is "everything the filter selects" and the plan is exactly today's. The
    choice can narrow the filter, never widen it; pass it to :func:`plan_redrive` as ``only``.
    """
    opts = _options(target, sample)
    what = "Message groups" if target.dlq.fifo else "Error kinds"
    return [(o.label, o.key) for o in opts], [o.key for o in opts], f"{what} to redrive"


def _narrow(
    target: RedriveTarget, sample: Sample | None, only: Sequence[str]
) -> tuple[RedriveTarget, Sample | None, list[_Option] | None]:
    """Apply a widget choice: (target with the narrowed filter, sample re-marked, chosen options).

    The move filters on message bodies only (:class:`MessageFilter`), so the choice becomes a
    JMESPath filter ANDed with ``filter_expression``: for FIFO, ``contains([...groups], <key>)``
    over the body field that carries the MessageGroupId (found in every sampled body); for
    standard queues, the OR of the chosen error kinds' :func:`error_selector` predicates.
    Returns the inputs unchanged (and None) when everything offered is chosen.
    """
    opts = _options(target, sample)
    by_key = {o.key: o for o in opts}
    wanted = set(only)
    unknown = sorted(wanted - set(by_key))
    if unknown:
        raise BadInputError(
            f"only: {', '.join(unknown)} not among the sampled choices "
            f"({', '.join(by_key) or 'none'}); re-run the inspect and choice cells, then the plan."
        )
    if wanted == set(by_key):
        return target, sample, None
    chosen = [o for o in opts if o.key in wanted]
    if not chosen:
        return target, sample, []
    user = target.message_filter
    if user.kind == "regex":
        raise BadInputError(
            f"filter_expression {user.expression!r} is a re: filter, which the choice cannot "
            "narrow: select everything in the widget, or write the whole filter in JMESPath."
        )
    assert sample is not None  # chosen is not empty, so the sample had messages
    if target.dlq.fifo:
        common = set.intersection(*(set(m.group_keys) for m in sample.messages))
        if not common:
            raise BadInputError(
                f"{target.dlq.name}: the message bodies do not carry their MessageGroupId in a "
                "field, and the move selects messages by body, so it cannot redrive only some "
                "groups. Select all groups, or set filter_expression (JMESPath) to select them."
            )
        field_ = _jp_field(sorted(common)[0])
        predicate = f"contains({_jp_literal([o.key for o in chosen])}, {field_})"
    else:
        blind = [o.label for o in chosen if not o.predicate]
        if blind:
            raise BadInputError(
                f"{', '.join(blind)}: non-JSON messages can be redriven only with every kind "
                "selected, or with filter_expression='re:<regex>'."
            )
        predicate = " || ".join(f"({o.predicate})" for o in chosen)
        if len(chosen) == 1:
            predicate = chosen[0].predicate
    combined = f"({user.expression}) && ({predicate})" if user.expression else predicate
    narrowed = replace(target, message_filter=parse_filter(combined))
    keys = {o.key for o in chosen}
    fifo = target.dlq.fifo
    messages = tuple(
        replace(
            m,
            matches_filter=m.matches_filter
            and (m.group_id if fifo else (m.selector or m.shape)) in keys,
        )
        for m in sample.messages
    )
    return narrowed, replace(sample, messages=messages, filter_expression=combined), chosen


def plan_redrive(
    target: RedriveTarget,
    *,
    sqs,
    sample: Sample | None = None,
    health: HealthReport | None = None,
    max_messages: int = 0,
    rate_limit_per_second: float = 0,
    concurrency: int = 4,
    strategy: str = "auto",
    only: Sequence[str] | None = None,
) -> Plan:
    """Read-only: how many messages would move, to where, by which strategy, and the warnings.

    The change's params hold every argument of the move, so the approval (bound to the plan
    hash) covers exactly this DLQ, destination, filter, count and limits.

    ``only`` is the widget's choice from :func:`redrive_selection` (message groups for FIFO,
    error kinds for standard queues). None, or everything offered, gives exactly the plan (and
    hash) of the parameters alone; a narrower choice is ANDed into the plan's filter (see
    :func:`_narrow`), so the approval covers it and the move honours it.
    """
    picked: list[_Option] | None = None
    if only is not None:
        target, sample, picked = _narrow(target, sample, only)
    counts = queue_counts(target.dlq, sqs=sqs)
    if picked == []:
        return Plan(
            title=f"Redrive {target.dlq.name} -> {target.destination_label}: nothing selected",
            warnings=(
                "Nothing was selected in the widget: select what to redrive and re-run the plan cell.",
            ),
            limits={"max_messages": max_messages or "all"},
        )
    chosen, why = choose_strategy(target, sqs=sqs, strategy=strategy, max_messages=max_messages)
    available = counts.visible
    to_consider = min(available, max_messages) if max_messages else available
    warnings: list[str] = []
    if picked:
        warnings.append(
            "Chosen in the widget: only "
            + ", ".join(o.label.rsplit(" (", 1)[0] for o in picked)
            + f" (filter {target.message_filter.expression!r}); the rest stay in the DLQ."
        )
    filt = target.message_filter
    if filt.expression and sample is not None and sample.messages:
        share = sample.matched / len(sample.messages)
        estimate = (
            f"about {round(available * share):,} of {available:,} match the filter "
            f"({sample.matched}/{len(sample.messages)} in the sample)"
        )
        if sample.matched == 0:
            warnings.append(
                f"The filter {filt.expression!r} matched none of the {len(sample.messages)} sampled messages: probably nothing will move."
            )
    elif filt.expression:
        estimate = f"those of {available:,} that match the filter"
    else:
        estimate = f"{to_consider:,} message(s)"
    if max_messages and available > max_messages:
        warnings.append(
            f"Blast radius: at most max_messages={max_messages:,} of {available:,} will move; "
            "run again for the rest."
        )
    if counts.in_flight:
        warnings.append(
            f"{counts.in_flight:,} message(s) are in flight in {target.dlq.name} (another reader, "
            "this notebook's sample, or an interrupted run): they are not moved now; they become "
            "visible after their visibility timeout and a re-run moves them."
        )
    if target.dlq.fifo:
        warnings.append(
            "FIFO: one worker keeps the order within each message group; messages are re-sent with "
            "their MessageGroupId and MessageDeduplicationId, so a re-send within 5 minutes is "
            "deduplicated by SQS."
        )
    else:
        warnings.append(
            "Duplicates possible on retry: SQS is at-least-once; a send whose outcome is unknown "
            "(timeout, 5xx) or a delete that fails after a successful send leaves a message in both "
            "queues. Such messages are listed as possible duplicates by id."
        )
    dests = [target.destination] if target.destination is not None else list(target.sources)
    if target.destination is None and len(target.sources) > 1:
        warnings.append(
            f"{target.dlq.name} serves {len(target.sources)} source queues: each message goes back "
            "to the queue named by its DeadLetterQueueSourceArn; a message without it stays in the "
            "DLQ and is counted as failed (give destination to send them all to one queue)."
        )
    for d in dests:
        if d.dead_letter_target_arn == target.dlq.arn:
            warnings.append(
                f"{d.name} sends its failures back to {target.dlq.name} after "
                f"maxReceiveCount={d.max_receive_count}: fix the consumer first or they return here."
            )
        elif d.dead_letter_target_arn:
            own = queue_name_from(d.dead_letter_target_arn)
            try:
                c = queue_counts(resolve_queue(d.dead_letter_target_arn, sqs=sqs), sqs=sqs)
            except Exception as exc:  # noqa: BLE001 - shown as a warning, the plan still stands
                warnings.append(f"Could not read {d.name}'s own DLQ {own}: {type(exc).__name__}.")
            else:
                if c.total:
                    warnings.append(
                        f"{d.name}'s own DLQ {own} already holds {c.total:,} message(s): its "
                        "consumer is failing now; moved messages may end up there."
                    )
    if health is not None:
        for f in health.findings:
            if f.severity in (Severity.WARNING, Severity.CRITICAL) and any(
                f.source == f"sqs:{d.name}" for d in dests
            ):
                warnings.append(f"destination: {f.title}")
            if "still arriving" in f.title:
                warnings.append(f.title + ".")
    if chosen == "native":
        warnings.append(
            "Native move task: SQS moves the messages server-side to their source queues; no "
            "per-message journal (the bundle keeps the task handle and counts); it is cancelled if "
            "the run is interrupted."
        )
    limits = {
        "max_messages": max_messages or "all",
        "rate_limit_per_second": rate_limit_per_second or "unlimited",
        "concurrency": 1 if target.dlq.fifo else concurrency,
    }
    title = f"Redrive {target.dlq.name} -> {target.destination_label}"
    if available == 0:
        return Plan(title=title + ": nothing to move", warnings=tuple(warnings), limits=limits)
    params = {
        "dlq_url": target.dlq.url,
        "dlq_arn": target.dlq.arn,
        "destination_url": target.destination.url if target.destination else "",
        "destination_arn": target.destination.arn if target.destination else "",
        "routes": target.routes,
        "fifo": target.dlq.fifo,
        "filter_expression": filt.expression,
        "max_messages": max_messages,
        "planned_count": available,
        "rate_limit_per_second": rate_limit_per_second,
        "concurrency": 1 if target.dlq.fifo else concurrency,
        "strategy": chosen,
        "strategy_reason": why,
    }
    action = NATIVE_ACTION if chosen == "native" else COPY_ACTION
    effect = (
        f"move {estimate} from {target.dlq.name} to {target.destination_label} ({chosen}: {why})"
    )
    change = Change(
        action=action,
        target=f"{target.dlq.name} -> {target.destination_label}",
        effect=effect,
        params=params,
    )
    return Plan(title=title, changes=(change,), warnings=tuple(warnings), limits=limits)


def plan_strategy(plan: Plan) -> str:
    """The strategy a plan will use ("copy", "native"), or "none" for an empty plan."""
    return str(plan.changes[0].params.get("strategy", "copy")) if plan.changes else "none"


# --------------------------------------------------------------------------------------------
# apply + verify


def redrive_executor(
    *, sqs, journal_name: str = "redrive-journal.jsonl", progress: bool = True
) -> Callable[[Change], ChangeOutcome]:
    """The ``execute`` for :func:`opslib.safety.gate`: performs one planned redrive change.

    The journal goes to the run's evidence attachments (:func:`opslib.evidence.attachment_path`).
    """
    from opslib.aws import sqs_move
    from opslib.evidence import attachment_path

    def execute(change: Change) -> ChangeOutcome:
        p = dict(change.params)
        journal = attachment_path(journal_name)
        if p.get("strategy") == "native":
            result = sqs_move.native_move(
                p["dlq_arn"],
                p.get("destination_arn", ""),
                sqs=sqs,
                rate_limit_per_second=float(p.get("rate_limit_per_second") or 0),
                journal_path=journal,
                expected=int(p.get("planned_count") or 0),
                show_progress=progress,
            )
        else:
            result = sqs_move.move_messages(
                p["dlq_url"],
                p.get("destination_url", ""),
                sqs=sqs,
                routes=p.get("routes") or {},
                fifo=bool(p.get("fifo")),
                message_filter=parse_filter(p.get("filter_expression", "")),
                max_messages=int(p.get("max_messages") or 0),
                planned_count=int(p.get("planned_count") or 0),
                rate_limit_per_second=float(p.get("rate_limit_per_second") or 0),
                concurrency=int(p.get("concurrency") or 1),
                journal_path=journal,
                show_progress=progress,
                # standard queues with concurrency > 1 also move in worker processes (both cores)
                sqs_factory=sqs_move.worker_client_factory(sqs.meta.region_name),
            )
        status = (
            ChangeStatus.APPLIED
            if result.failed == 0 and not result.errors
            else ChangeStatus.FAILED
        )
        detail = (
            f"moved {result.moved}, failed {result.failed}, skipped {result.skipped}, "
            f"possible duplicates {len(result.possible_duplicates)}, "
            f"retries {result.send_retries + result.delete_retries}, throttled {result.throttled}, "
            f"{result.rate:.0f} msg/s"
        )
        if result.errors:
            detail += "; errors: " + "; ".join(result.errors[:3])
        return ChangeOutcome(
            change.action, change.target, status, detail, {"move": result.to_dict()}
        )

    return execute


@dataclass(frozen=True)
class RedriveVerification:
    """After the move: counts before/after, what moved, what did not, and what may be duplicated."""

    dlq: str
    destinations: tuple[str, ...]
    strategy: str
    applied: bool
    before: tuple[QueueCounts, ...]
    after: tuple[QueueCounts, ...]
    moved: int
    failed: int
    skipped: int
    remaining: int
    possible_duplicates: tuple[str, ...]
    failed_ids: tuple[str, ...]
    retries: int
    throttled: int
    journal: str
    findings: tuple[Finding, ...]

    @property
    def destination(self) -> str:
        return ",".join(self.destinations)

    def to_frame(self):
        """Counts before and after per queue, with the change."""
        import pandas as pd

        b = {c.name: c for c in self.before}
        rows = []
        for a in self.after:
            prev = b.get(a.name)
            rows.append(
                {
                    "queue": a.name,
                    "role": "dlq" if a.name == self.dlq else "destination",
                    "visible_before": prev.visible if prev else None,
                    "in_flight_before": prev.in_flight if prev else None,
                    "visible_after": a.visible,
                    "in_flight_after": a.in_flight,
                    "delta_visible": (a.visible - prev.visible) if prev else None,
                }
            )
        return pd.DataFrame(rows)

    def summary_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "strategy": self.strategy,
                    "applied": self.applied,
                    "moved": self.moved,
                    "failed": self.failed,
                    "skipped": self.skipped,
                    "remaining": self.remaining,
                    "possible_duplicates": len(self.possible_duplicates),
                    "retries": self.retries,
                    "throttled": self.throttled,
                }
            ]
        )


def before_counts(target: RedriveTarget, *, sqs) -> tuple[QueueCounts, ...]:
    """Counts of the DLQ and every destination, taken just before the apply cell."""
    qs = [target.dlq] + ([target.destination] if target.destination else list(target.sources))
    return tuple(queue_counts(q, sqs=sqs) for q in qs)


def verify_redrive(
    target: RedriveTarget,
    plan: Plan,
    result: Any,
    *,
    sqs,
    before: Iterable[QueueCounts],
) -> RedriveVerification:
    """Compare counts before and after and read the move's own account from the apply result.

    ``result`` is what the apply cell got from :func:`opslib.safety.gate` (None when nothing
    was applied: dry run, or no approval).
    """
    before = tuple(before)
    after = tuple(
        queue_counts(
            next(
                q
                for q in [target.dlq, target.destination, *target.sources]
                if q is not None and q.name == c.name
            ),
            sqs=sqs,
        )
        for c in before
    )
    move: dict[str, Any] = {}
    outcomes = getattr(result, "outcomes", ()) or ()
    for o in outcomes:
        if isinstance(o.data, Mapping) and "move" in o.data:
            move = dict(o.data["move"])
    dlq_after = next(c for c in after if c.name == target.dlq.name)
    dlq_before = next(c for c in before if c.name == target.dlq.name)
    moved = int(move.get("moved", 0))
    failed = int(move.get("failed", 0))
    skipped = int(move.get("skipped", 0))
    dups = tuple(move.get("possible_duplicates", ()))
    findings: list[Finding] = []
    src = f"sqs:{target.dlq.name}"
    if not move:
        findings.append(
            Finding(
                Severity.INFO,
                "Nothing applied (dry run or no approval): nothing moved",
                src,
                f"{dlq_after.total:,} message(s) in {target.dlq.name}",
                "Review the plan; to apply set dry_run=False and approved_by.",
            )
        )
    else:
        findings.append(
            Finding(
                Severity.OK if failed == 0 and not dups else Severity.WARNING,
                f"moved {moved:,}, failed {failed:,}, skipped {skipped:,}, remaining {dlq_after.total:,}",
                src,
                f"{target.dlq.name}: {dlq_before.total:,} -> {dlq_after.total:,}",
                "" if failed == 0 else "Failed messages stay in the DLQ; re-run to retry them.",
            )
        )
        if dups:
            findings.append(
                Finding(
                    Severity.WARNING,
                    f"{len(dups)} possible duplicate(s): sent but not deleted from the DLQ",
                    src,
                    ", ".join(dups[:10]) + (" ..." if len(dups) > 10 else ""),
                    "Their copies are in the destination AND still in the DLQ; consumers must be "
                    "idempotent, or delete these ids from the DLQ before the next redrive.",
                    {"ids": list(dups)},
                )
            )
        drop = dlq_before.total - dlq_after.total
        if move.get("strategy") == "copy" and drop != moved:
            findings.append(
                Finding(
                    Severity.INFO,
                    f"DLQ count changed by {drop:,} while {moved:,} were moved",
                    src,
                    "approximate counts, or messages arrived/left during the move",
                    "Expected when failures are still arriving; compare with the journal.",
                )
            )
    return RedriveVerification(
        dlq=target.dlq.name,
        destinations=tuple(c.name for c in before if c.name != target.dlq.name),
        strategy=str(move.get("strategy") or plan_strategy(plan)),
        applied=bool(move),
        before=before,
        after=after,
        moved=moved,
        failed=failed,
        skipped=skipped,
        remaining=dlq_after.total,
        possible_duplicates=dups,
        failed_ids=tuple(move.get("failed_ids", ())),
        retries=int(move.get("send_retries", 0)) + int(move.get("delete_retries", 0)),
        throttled=int(move.get("throttled", 0)),
        journal=str(move.get("journal", "")),
        findings=tuple(findings),
    )


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
