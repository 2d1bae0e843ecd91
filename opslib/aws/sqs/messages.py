"""DLQ messages: the operator's filter, error shapes and selectors, redaction, and sampling.

Sampling reads a queue without consuming it (receive with a short visibility timeout, then
release at once); the filter decides which messages a move takes, and is compiled before
anything moves so a typo stops the runbook with exit 2.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opslib.aws.sqs.queues import QueueRef, queue_name_from
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity, error_finding
from opslib.core.redact import MASK, redact_text

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "MessageFilter",
    "Sample",
    "SampledMessage",
    "error_selector",
    "error_shape",
    "jp_field",
    "jp_literal",
    "parse_filter",
    "redact_body",
    "sample_messages",
]


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
# error shapes and selectors

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


def jp_field(name: str) -> str:
    """A JMESPath identifier for a body key (quoted unless it is a bare identifier)."""
    return name if _IDENT.match(name) else json.dumps(name)


def jp_literal(value: Any) -> str:
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
            v, path = doc[key], jp_field(key)
            if isinstance(v, dict):
                sub = next((k for k in ("type", "code", "name", "message") if v.get(k)), None)
                if sub is None:
                    return f"join(',', sort(keys({path}))) == {jp_literal(','.join(sorted(v)))}"
                path, v = f"{path}.{sub}", v[sub]
            if isinstance(v, str):
                return f"{path} == {jp_literal(v)}"
            return f"to_string({path}) == {jp_literal(json.dumps(v, separators=(',', ':')))}"
    return f"sort(keys(@)) == {jp_literal(sorted(doc))}"


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


# --------------------------------------------------------------------------------------------
# sample


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
    #: DeadLetterQueueSourceArn as SQS stamped it (the source when ListDeadLetterSourceQueues is denied)
    source_arn: str = ""


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


def release_messages(url: str, handles: Sequence[str], *, sqs: SQSClient) -> list[str]:
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


def source_arns(queue: QueueRef, *, sqs: SQSClient, size: int = 10) -> tuple[str, ...]:
    """The distinct ``DeadLetterQueueSourceArn`` of up to ``size`` messages (peeked, released).

    The fall-back when ``ListDeadLetterSourceQueues`` is denied or not offered: SQS stamps that
    attribute on every message it moves to a DLQ.
    """
    smp = sample_messages(queue, sqs=sqs, size=size, hold_seconds=30)
    return tuple(dict.fromkeys(m.source_arn for m in smp.messages if m.source_arn))


def sample_messages(
    queue: QueueRef,
    *,
    sqs: SQSClient,
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
                failed = release_messages(queue.url, handles, sqs=sqs)
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
                source_arn=src,
                attribute_names=tuple(sorted(m.get("MessageAttributes", {}))),
                matches_filter=message_filter.matches(m["Body"]),
                body=redact_body(m["Body"]),
                selector=error_selector(m["Body"]),
                group_keys=_group_keys(m["Body"], a.get("MessageGroupId", "")),
            )
        )
    return Sample(queue.name, size, tuple(out), message_filter.expression, tuple(errors))
