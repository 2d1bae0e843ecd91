"""The redrive plan: how many messages would move, to where, by which strategy, and the
warnings to read before approving. Read-only; the move is :mod:`opslib.aws.sqs.move`.

The change's params are the :class:`~opslib.aws.sqs.move.model.MoveSettings` of the move, so
the approval (bound to the plan hash) covers exactly this DLQ, destination, filter, count and
limits, and the mover takes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from opslib.aws.sqs.health import HealthReport
from opslib.aws.sqs.messages import Sample
from opslib.aws.sqs.move.model import COPY_ACTION, NATIVE_ACTION, MoveSettings, Strategy
from opslib.aws.sqs.queues import QueueCounts, queue_counts, queue_name_from, resolve_queue
from opslib.aws.sqs.selection import SelectionOption, narrow
from opslib.aws.sqs.strategy import choose_strategy
from opslib.aws.sqs.target import RedriveTarget
from opslib.core.findings import Severity
from opslib.core.plans import Change, Plan

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["plan_redrive", "plan_settings", "plan_strategy"]


def _estimate(
    target: RedriveTarget, sample: Sample | None, available: int, to_consider: int
) -> tuple[str, list[str]]:
    filt = target.message_filter
    warnings: list[str] = []
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
    return estimate, warnings


def _destination_warnings(target: RedriveTarget, *, sqs: SQSClient) -> list[str]:
    """Destinations that send failures back here, or whose own DLQ already fills up."""
    warnings: list[str] = []
    for d in target.destinations:
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
    return warnings


def _warnings(
    target: RedriveTarget,
    *,
    sqs: SQSClient,
    counts: QueueCounts,
    picked: tuple[SelectionOption, ...] | None,
    sample: Sample | None,
    health: HealthReport | None,
    available: int,
    to_consider: int,
    max_messages: int,
    strategy: Strategy,
) -> tuple[str, list[str]]:
    """(the effect's estimate, the plan's warnings in the order the operator reads them)."""
    warnings: list[str] = []
    if picked:
        warnings.append(
            "Chosen in the widget: only "
            + ", ".join(o.label.rsplit(" (", 1)[0] for o in picked)
            + f" (filter {target.message_filter.expression!r}); the rest stay in the DLQ."
        )
    estimate, more = _estimate(target, sample, available, to_consider)
    warnings += more
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
    if target.destination is None and len(target.sources) > 1:
        warnings.append(
            f"{target.dlq.name} serves {len(target.sources)} source queues: each message goes back "
            "to the queue named by its DeadLetterQueueSourceArn; a message without it stays in the "
            "DLQ and is counted as failed (give destination to send them all to one queue)."
        )
    warnings += _destination_warnings(target, sqs=sqs)
    if health is not None:
        for f in health.findings:
            if f.severity in (Severity.WARNING, Severity.CRITICAL) and any(
                f.source == f"sqs:{d.name}" for d in target.destinations
            ):
                warnings.append(f"destination: {f.title}")
            if "still arriving" in f.title:
                warnings.append(f.title + ".")
    if strategy is Strategy.NATIVE:
        warnings.append(
            "Native move task: SQS moves the messages server-side to their source queues; no "
            "per-message journal (the bundle keeps the task handle and counts); it is cancelled if "
            "the run is interrupted."
        )
    return estimate, warnings


def plan_redrive(
    target: RedriveTarget,
    *,
    sqs: SQSClient,
    sample: Sample | None = None,
    health: HealthReport | None = None,
    max_messages: int = 0,
    rate_limit_per_second: float = 0,
    concurrency: int = 4,
    strategy: str | Strategy = Strategy.AUTO,
    only: Sequence[str] | None = None,
) -> Plan:
    """Read-only: how many messages would move, to where, by which strategy, and the warnings.

    ``only`` is the widget's choice from
    :func:`~opslib.aws.sqs.selection.redrive_selection` (message groups for FIFO, error kinds
    for standard queues). None, or everything offered, gives exactly the plan (and hash) of the
    parameters alone; a narrower choice is ANDed into the plan's filter (see
    :func:`~opslib.aws.sqs.selection.narrow`), so the approval covers it and the move honours it.
    """
    picked: tuple[SelectionOption, ...] | None = None
    if only is not None:
        narrowed = narrow(target, sample, only)
        target, sample, picked = narrowed.target, narrowed.sample, narrowed.chosen
    counts = queue_counts(target.dlq, sqs=sqs)
    if picked == ():
        return Plan(
            title=f"Redrive {target.dlq.name} -> {target.destination_label}: nothing selected",
            warnings=(
                "Nothing was selected in the widget: select what to redrive and re-run the plan cell.",
            ),
            limits={"max_messages": max_messages or "all"},
        )
    choice = choose_strategy(target, sqs=sqs, strategy=strategy, max_messages=max_messages)
    available = counts.visible
    to_consider = min(available, max_messages) if max_messages else available
    estimate, warnings = _warnings(
        target,
        sqs=sqs,
        counts=counts,
        picked=picked,
        sample=sample,
        health=health,
        available=available,
        to_consider=to_consider,
        max_messages=max_messages,
        strategy=choice.strategy,
    )
    workers = 1 if target.dlq.fifo else concurrency
    limits = {
        "max_messages": max_messages or "all",
        "rate_limit_per_second": rate_limit_per_second or "unlimited",
        "concurrency": workers,
    }
    title = f"Redrive {target.dlq.name} -> {target.destination_label}"
    if available == 0:
        return Plan(title=title + ": nothing to move", warnings=tuple(warnings), limits=limits)
    settings = MoveSettings(
        dlq_url=target.dlq.url,
        dlq_arn=target.dlq.arn,
        destination_url=target.destination.url if target.destination else "",
        destination_arn=target.destination.arn if target.destination else "",
        routes=target.routes,
        fifo=target.dlq.fifo,
        filter_expression=target.message_filter.expression,
        max_messages=max_messages,
        planned_count=available,
        rate_limit_per_second=rate_limit_per_second,
        concurrency=workers,
        strategy=choice.strategy,
        strategy_reason=choice.reason,
    )
    change = Change(
        action=NATIVE_ACTION if choice.strategy is Strategy.NATIVE else COPY_ACTION,
        target=f"{target.dlq.name} -> {target.destination_label}",
        effect=(
            f"move {estimate} from {target.dlq.name} to {target.destination_label} "
            f"({choice.strategy}: {choice.reason})"
        ),
        params=settings.to_params(),
    )
    return Plan(title=title, changes=(change,), warnings=tuple(warnings), limits=limits)


def plan_settings(plan: Plan) -> MoveSettings | None:
    """The move a plan would perform, or None for an empty plan."""
    return MoveSettings.from_params(plan.changes[0].params) if plan.changes else None


def plan_strategy(plan: Plan) -> Strategy:
    """The strategy a plan will use (copy, native), or ``Strategy.NONE`` for an empty plan."""
    settings = plan_settings(plan)
    return settings.strategy if settings is not None else Strategy.NONE
