"""The executors of the redrive's planned changes, registered by action.

A runbook binds them with ``executors.bind(sqs=..., journal_path=..., progress=...)``; the
journal path is the caller's (the runbook puts it in the run's evidence attachments).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from opslib.aws.sqs.move.copy import copy_move
from opslib.aws.sqs.move.model import COPY_ACTION, NATIVE_ACTION, MoveResult, MoveSettings
from opslib.aws.sqs.move.native import native_move
from opslib.aws.sqs.move.workers import worker_factory
from opslib.core import executors
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus
from opslib.core.progress import ProgressFactory, default_progress

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["ACTIONS", "copy_change", "native_change", "outcome"]

#: The actions these handlers perform (for ``executors.bind(allowed=...)``).
ACTIONS = (COPY_ACTION, NATIVE_ACTION)


def outcome(change: Change, result: MoveResult) -> ChangeOutcome:
    """The change's outcome: applied when nothing failed; the move's account in ``data``."""
    status = (
        ChangeStatus.APPLIED if result.failed == 0 and not result.errors else ChangeStatus.FAILED
    )
    detail = (
        f"moved {result.moved}, failed {result.failed}, skipped {result.skipped}, "
        f"possible duplicates {len(result.possible_duplicates)}, "
        f"retries {result.send_retries + result.delete_retries}, throttled {result.throttled}, "
        f"{result.rate:.0f} msg/s"
    )
    if result.errors:
        detail += "; errors: " + "; ".join(result.errors[:3])
    return ChangeOutcome(change.action, change.target, status, detail, {"move": result.to_dict()})


@executors.register(COPY_ACTION)
def copy_change(
    change: Change,
    *,
    sqs: SQSClient,
    journal_path: Path | str | None = None,
    progress: ProgressFactory = default_progress,
) -> ChangeOutcome:
    """Perform a planned copy move. Standard queues with concurrency > 1 also move in worker
    processes, whose clients are ``sqs`` rebuilt (same credentials, region and endpoint)."""
    settings = MoveSettings.from_params(change.params)
    result = copy_move(
        settings,
        sqs=sqs,
        journal_path=journal_path,
        progress=progress,
        sqs_factory=worker_factory(sqs),
    )
    return outcome(change, result)


@executors.register(NATIVE_ACTION)
def native_change(
    change: Change,
    *,
    sqs: SQSClient,
    journal_path: Path | str | None = None,
    progress: ProgressFactory = default_progress,
) -> ChangeOutcome:
    """Perform a planned native move task (server-side, back to the source queues)."""
    settings = MoveSettings.from_params(change.params)
    result = native_move(
        settings.dlq_arn,
        settings.destination_arn,
        sqs=sqs,
        rate_limit_per_second=float(settings.rate_limit_per_second or 0),
        journal_path=journal_path,
        expected=settings.planned_count,
        progress=progress,
    )
    return outcome(change, result)
