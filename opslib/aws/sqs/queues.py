"""SQS queues: resolve a queue given by name, URL or ARN, its dead-letter sources, its counts.

Every function takes the SQS client as a keyword-only ``sqs`` (built by :mod:`opslib.clients`).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from opslib.clients import AwsErrorKind, aws_error_kind
from opslib.core.errors import BadInputError, NotFoundError

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "QueueCounts",
    "QueueRef",
    "dead_letter_sources",
    "is_missing_queue",
    "now_iso",
    "queue_attributes",
    "queue_counts",
    "queue_name_from",
    "resolve_queue",
]


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


def is_missing_queue(exc: BaseException) -> bool:
    """Whether an AWS error says the queue does not exist (in this account and region)."""
    return aws_error_kind(exc) is AwsErrorKind.NOT_FOUND


def queue_attributes(url: str, *, sqs: SQSClient) -> dict[str, str]:
    """Every attribute of the queue at ``url``."""
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})


def resolve_queue(name_url_or_arn: str, *, sqs: SQSClient, parameter: str = "queue") -> QueueRef:
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
        attrs = queue_attributes(url, sqs=sqs)
    except botocore.exceptions.ClientError as exc:
        if is_missing_queue(exc):
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


def dead_letter_sources(dlq: QueueRef, *, sqs: SQSClient) -> tuple[QueueRef, ...]:
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


def queue_counts(queue: QueueRef, *, sqs: SQSClient) -> QueueCounts:
    """Visible, in-flight and delayed counts of ``queue`` now."""
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
        at=now_iso(),
    )


def now_iso() -> str:
    """UTC now, ISO 8601 to the second, with a Z."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
