"""The DLQ redrive runbook: inspect an SQS dead-letter queue, move its messages back (all, or
those a filter or the operator's choice selects) without losing or silently duplicating any,
and verify the counts.

The notebook steps through: :func:`inputs` (every parameter checked, exit 2 before anything is
read) -> :func:`connect` (the clients, the mover's client settings included) ->
:func:`preflight` (queues resolved and checked) -> :func:`sample` and :func:`health` ->
:func:`selection` -> :func:`plan` and :func:`before_counts` -> ``opslib.safety.gate(plan, ...,
execute=executor(conns))`` -> :func:`verify`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from opslib.aws.sqs import health as sqs_health
from opslib.aws.sqs import messages, target
from opslib.aws.sqs import plan as sqs_plan
from opslib.aws.sqs import selection as sqs_selection
from opslib.aws.sqs import verify as sqs_verify
from opslib.aws.sqs.move import ACTIONS, MOVER_CLIENT_CONFIG, Strategy
from opslib.aws.sqs.queues import QueueCounts
from opslib.clients import aws_client
from opslib.core import executors
from opslib.core.plans import ApplyResult, Plan
from opslib.core.progress import ProgressFactory, default_progress
from opslib.core.recorder import attachment_path

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "JOURNAL_NAME",
    "Clients",
    "Inputs",
    "RedriveRecord",
    "before_counts",
    "connect",
    "executor",
    "health",
    "inputs",
    "plan",
    "preflight",
    "sample",
    "selection",
    "summary",
    "verify",
]

#: The redrive journal's name among the run's evidence attachments.
JOURNAL_NAME = "redrive-journal.jsonl"


@dataclass(frozen=True)
class Inputs:
    """The runbook's parameters, checked."""

    dlq: str
    destination: str = ""
    filter_expression: str = ""
    max_messages: int = 0
    sample_size: int = 20
    rate_limit_per_second: float = 0.0
    concurrency: int = 4
    strategy: Strategy = Strategy.AUTO
    region: str = ""


def inputs(
    dlq: str = "",
    destination: str = "",
    filter_expression: str = "",
    *,
    max_messages: int = 0,
    sample_size: int = 20,
    rate_limit_per_second: float = 0.0,
    concurrency: int = 4,
    strategy: str = "auto",
    region: str = "",
) -> Inputs:
    """Check every parameter that needs no client (limits, strategy, filter); BadInputError
    (exit 2) otherwise. The queues are checked by :func:`preflight`."""
    target.validate_parameters(
        strategy=strategy,
        max_messages=max_messages,
        sample_size=sample_size,
        rate_limit_per_second=rate_limit_per_second,
        concurrency=concurrency,
        filter_expression=filter_expression,
    )
    return Inputs(
        dlq=dlq,
        destination=destination,
        filter_expression=filter_expression,
        max_messages=max_messages,
        sample_size=sample_size,
        rate_limit_per_second=rate_limit_per_second,
        concurrency=concurrency,
        strategy=Strategy(strategy),
        region=region,
    )


@dataclass(frozen=True)
class Clients:
    """The run's clients: SQS with the mover's settings (its worker processes rebuild it),
    and CloudWatch for the age of the oldest message."""

    sqs: SQSClient
    cloudwatch: CloudWatchClient


def connect(inp: Inputs) -> Clients:
    """The clients of the run, from the standard chains (``region`` or the environment's)."""
    return Clients(
        sqs=aws_client("sqs", region=inp.region, **MOVER_CLIENT_CONFIG),
        cloudwatch=aws_client("cloudwatch", region=inp.region),
    )


def preflight(inp: Inputs, conns: Clients) -> target.RedriveTarget:
    """Resolve and check the DLQ, its sources, the destination (NotFoundError/BadInputError)."""
    return target.preflight(
        inp.dlq,
        inp.destination,
        inp.filter_expression,
        sqs=conns.sqs,
        strategy=inp.strategy,
        max_messages=inp.max_messages,
        sample_size=inp.sample_size,
        rate_limit_per_second=inp.rate_limit_per_second,
        concurrency=inp.concurrency,
    )


def sample(inp: Inputs, conns: Clients, tgt: target.RedriveTarget) -> messages.Sample:
    """Read (never consume) ``sample_size`` messages of the DLQ."""
    return messages.sample_messages(
        tgt.dlq, sqs=conns.sqs, size=inp.sample_size, message_filter=tgt.message_filter
    )


def health(
    conns: Clients, tgt: target.RedriveTarget, smp: messages.Sample | None
) -> sqs_health.HealthReport:
    """Health of the DLQ, its sources and the destination, with findings."""
    return sqs_health.redrive_health(tgt, sqs=conns.sqs, cloudwatch=conns.cloudwatch, sample=smp)


def selection(tgt: target.RedriveTarget, smp: messages.Sample | None) -> sqs_selection.Selection:
    """What the operator may choose to redrive (groups or error kinds), all preselected."""
    return sqs_selection.redrive_selection(tgt, smp)


def plan(
    inp: Inputs,
    conns: Clients,
    tgt: target.RedriveTarget,
    smp: messages.Sample | None,
    report: sqs_health.HealthReport | None,
    *,
    only: Sequence[str] | None = None,
) -> Plan:
    """The redrive plan (read-only), narrowed to ``only`` (the operator's choice)."""
    return sqs_plan.plan_redrive(
        tgt,
        sqs=conns.sqs,
        sample=smp,
        health=report,
        max_messages=inp.max_messages,
        rate_limit_per_second=inp.rate_limit_per_second,
        concurrency=inp.concurrency,
        strategy=inp.strategy,
        only=only,
    )


def before_counts(conns: Clients, tgt: target.RedriveTarget) -> tuple[QueueCounts, ...]:
    """Counts of the DLQ and every destination, just before the apply cell."""
    return sqs_verify.before_counts(tgt, sqs=conns.sqs)


def executor(
    conns: Clients,
    *,
    journal_path: Path | str | None = None,
    progress: ProgressFactory = default_progress,
) -> executors.Executor:
    """The ``execute`` for :func:`opslib.safety.gate`: performs the plan's move change.

    The journal goes to the run's evidence attachments (``attachments/redrive-journal.jsonl``)
    unless ``journal_path`` says otherwise.
    """
    path = journal_path if journal_path is not None else attachment_path(JOURNAL_NAME)
    return executors.bind(sqs=conns.sqs, journal_path=path, progress=progress, allowed=ACTIONS)


def verify(
    conns: Clients,
    tgt: target.RedriveTarget,
    planned: Plan,
    result: ApplyResult | None,
    before: Iterable[QueueCounts],
) -> sqs_verify.RedriveVerification:
    """Counts before and after, moved, failed, skipped, remaining, possible duplicates."""
    return sqs_verify.verify_redrive(tgt, planned, result, sqs=conns.sqs, before=before)


@dataclass(frozen=True)
class RedriveRecord:
    """The run's key results for ``record.json``: each field is a record name of the runbook's
    contract (``opslib.record_all(summary(...))`` in the record cell)."""

    dlq: str
    destination: str
    strategy: str
    applied: bool
    moved: int
    failed: int
    skipped: int
    remaining: int
    possible_duplicates: list[str]
    plan_hash: str


def summary(verification: sqs_verify.RedriveVerification, planned: Plan) -> RedriveRecord:
    """The record of this run, from the verification and the plan that was (or was not) applied."""
    return RedriveRecord(
        dlq=verification.dlq,
        destination=verification.destination,
        strategy=verification.strategy.value,
        applied=verification.applied,
        moved=verification.moved,
        failed=verification.failed,
        skipped=verification.skipped,
        remaining=verification.remaining,
        possible_duplicates=list(verification.possible_duplicates),
        plan_hash=planned.digest(),
    )
