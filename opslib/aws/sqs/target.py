"""The redrive's target, validated before anything is read or moved: the DLQ, the queues
that feed it, the destination and the filter (:func:`preflight`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opslib.aws.sqs.messages import MessageFilter, parse_filter, source_arns
from opslib.aws.sqs.move.model import REQUESTABLE_STRATEGIES, Strategy
from opslib.aws.sqs.queues import (
    QueueRef,
    dead_letter_sources,
    resolve_queue,
)
from opslib.clients import (
    OPTIONAL_READ_KINDS,
    aws_error_code,
    aws_error_kind,
    optional_read_finding,
)
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.findings import Finding, Severity

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["RedriveTarget", "preflight", "validate_parameters"]


@dataclass(frozen=True)
class RedriveTarget:
    """Everything resolved and validated before a redrive: DLQ, sources, destination, filter."""

    dlq: QueueRef
    sources: tuple[QueueRef, ...]
    destination: QueueRef | None  # None: each message goes back to the queue it came from
    message_filter: MessageFilter = field(default_factory=MessageFilter)
    #: how the sources were found: "ListDeadLetterSourceQueues", "DeadLetterQueueSourceArn"
    #: (the API was denied or unsupported: read from the messages), or "" (not found)
    sources_from: str = "ListDeadLetterSourceQueues"
    findings: tuple[Finding, ...] = ()  # what preflight saw on the way (a denied API, ...)

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

    @property
    def destinations(self) -> tuple[QueueRef, ...]:
        """The queues messages go to: the destination, or every source queue."""
        return (self.destination,) if self.destination is not None else self.sources


def validate_parameters(
    *,
    strategy: str = "auto",
    max_messages: int = 0,
    sample_size: int = 20,
    rate_limit_per_second: float = 0,
    concurrency: int = 4,
    filter_expression: str = "",
) -> MessageFilter:
    """Check the redrive's parameters without a client; returns the compiled filter.

    Raises a BadInputError naming the parameter: an unknown strategy, out-of-range limits, a
    filter that does not parse.
    """
    if strategy not in REQUESTABLE_STRATEGIES:
        raise BadInputError(
            f"strategy={strategy!r}: use one of {', '.join(REQUESTABLE_STRATEGIES)}."
        )
    if max_messages < 0:
        raise BadInputError("max_messages must be >= 0 (0 = all messages).")
    if sample_size < 0 or sample_size > 100:
        raise BadInputError("sample_size must be between 0 and 100.")
    if rate_limit_per_second < 0:
        raise BadInputError("rate_limit_per_second must be >= 0 (0 = unlimited).")
    if concurrency < 1 or concurrency > 32:
        raise BadInputError("concurrency must be between 1 and 32.")
    return parse_filter(filter_expression)


def preflight(
    dlq: str,
    destination: str = "",
    filter_expression: str = "",
    *,
    sqs: SQSClient,
    strategy: str | Strategy = "auto",
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
    message_filter = validate_parameters(
        strategy=strategy,
        max_messages=max_messages,
        sample_size=sample_size,
        rate_limit_per_second=rate_limit_per_second,
        concurrency=concurrency,
        filter_expression=filter_expression,
    )
    q = resolve_queue(dlq, sqs=sqs, parameter="dlq")
    sources, sources_from, found = find_sources(q, sqs=sqs, destination=destination)
    if not sources and sources_from == "ListDeadLetterSourceQueues":
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
    return RedriveTarget(
        dlq=q,
        sources=sources,
        destination=dest,
        message_filter=message_filter,
        sources_from=sources_from,
        findings=found,
    )


def find_sources(
    dlq: QueueRef, *, sqs: SQSClient, destination: str = ""
) -> tuple[tuple[QueueRef, ...], str, tuple[Finding, ...]]:
    """The DLQ's source queues: (sources, how they were found, findings).

    ``ListDeadLetterSourceQueues`` first. When the endpoint denies it (a least-privilege role
    without ``sqs:ListDeadLetterSourceQueues``), does not offer it (a local SQS
    implementation: InvalidAction / UnknownOperation) or keeps throttling it, that is a finding,
    and the sources are read from the messages' ``DeadLetterQueueSourceArn`` (a peek: received,
    then released at once). When they still cannot be found and no ``destination`` is given,
    the run is refused (BadInputError, exit 2) saying to pass ``destination=``.
    """
    api = "sqs:ListDeadLetterSourceQueues"
    try:
        return dead_letter_sources(dlq, sqs=sqs), "ListDeadLetterSourceQueues", ()
    except Exception as exc:  # noqa: BLE001 - an optional read: denied/unsupported falls back
        if aws_error_kind(exc) not in OPTIONAL_READ_KINDS:
            raise
        code = aws_error_code(exc) or type(exc).__name__
        found = [optional_read_finding(exc, f"{api} {dlq.name}", source=f"sqs:{dlq.name}")]
    arns = source_arns(dlq, sqs=sqs)
    sources: list[QueueRef] = []
    for arn in arns:
        try:
            sources.append(resolve_queue(arn, sqs=sqs, parameter="source queue"))
        except NotFoundError as exc:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"{dlq.name}: source queue {arn.rsplit(':', 1)[-1]} named by the messages was not found",
                    f"sqs:{dlq.name}",
                    str(exc)[:300],
                    "Messages from it need destination=.",
                )
            )
    if sources:
        found.append(
            Finding(
                Severity.INFO,
                f"{dlq.name}: source queue(s) {', '.join(s.name for s in sources)} taken from the "
                "messages' DeadLetterQueueSourceArn",
                f"sqs:{dlq.name}",
                f"{api} answered {code}; {len(arns)} source ARN(s) in the messages peeked",
                "Check them in the plan; pass destination= to choose the queue yourself.",
            )
        )
        return tuple(sources), "DeadLetterQueueSourceArn", tuple(found)
    if not destination.strip():
        raise BadInputError(
            f"dlq={dlq.name!r}: its source queue cannot be found: {api} answered {code} (denied "
            "or not offered by this endpoint) and no message peeked carries "
            "DeadLetterQueueSourceArn. Pass destination=<queue name, URL or ARN> to say where "
            f"the messages go (or grant {api}). Nothing was moved."
        )
    return (), "", tuple(found)
