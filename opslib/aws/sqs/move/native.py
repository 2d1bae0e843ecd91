"""The native strategy: SQS moves the messages server-side (StartMessageMoveTask), polled with
progress, cancelled when the run is interrupted or the wait runs out (nothing is lost: what
the task had not moved stays in the DLQ)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opslib.aws.sqs.move.journal import Journal
from opslib.aws.sqs.move.model import MoveResult, Strategy
from opslib.aws.sqs.queues import queue_name_from
from opslib.core.progress import ProgressFactory, default_progress

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["NATIVE_MOVE_TIMEOUT_S", "native_move"]

#: Bound on a native move task's wait; a task still running then is cancelled (nothing is lost).
NATIVE_MOVE_TIMEOUT_S = 6 * 3600

_FINISHED = ("COMPLETED", "CANCELLED", "FAILED")


def native_move(
    dlq_arn: str,
    destination_arn: str = "",
    *,
    sqs: SQSClient,
    rate_limit_per_second: float = 0,
    journal_path: Path | str | None = None,
    expected: int = 0,
    poll_seconds: float = 2.0,
    progress: ProgressFactory = default_progress,
    timeout_s: float = NATIVE_MOVE_TIMEOUT_S,
) -> MoveResult:
    """Native strategy: StartMessageMoveTask, poll ListMessageMoveTasks with progress, and
    CancelMessageMoveTask if the run is interrupted (KeyboardInterrupt is then re-raised) or
    the task is still running after ``timeout_s`` (every wait is bounded; what the task had not
    moved stays in the DLQ, and a re-run continues).

    ``destination_arn`` empty: SQS sends each message back to its original source queue.
    """
    journal = Journal(journal_path)
    kwargs: dict[str, Any] = {"SourceArn": dlq_arn}
    if destination_arn:
        kwargs["DestinationArn"] = destination_arn
    if rate_limit_per_second:
        kwargs["MaxNumberOfMessagesPerSecond"] = max(1, int(rate_limit_per_second))
    started = time.monotonic()
    handle = sqs.start_message_move_task(**kwargs)["TaskHandle"]
    journal.write(
        [
            {
                "event": "start",
                "strategy": "native",
                "dlq": queue_name_from(dlq_arn),
                "destination": queue_name_from(destination_arn) if destination_arn else "",
                "task_handle": handle,
            }
        ]
    )
    bar = progress(total=expected or None, desc=f"move task {queue_name_from(dlq_arn)}", unit="msg")
    task: dict[str, Any] = {}
    interrupted = False
    errors: list[str] = []
    shown = 0
    try:
        while True:
            tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results", [])
            task = next(
                (t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {}
            )
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            if moved > shown:
                bar.update(moved - shown)
                shown = moved
            if task.get("Status") in _FINISHED:
                if task.get("Status") == "FAILED":
                    errors.append(f"move task failed: {task.get('FailureReason', '')}")
                break
            if time.monotonic() - started > timeout_s:
                sqs.cancel_message_move_task(TaskHandle=handle)
                journal.write([{"event": "cancelled", "task_handle": handle, "reason": "timeout"}])
                errors.append(
                    f"move task still running after {timeout_s:.0f} s: cancelled; the messages it "
                    "had not moved are still in the DLQ; run again to continue"
                )
                break
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        interrupted = True
        sqs.cancel_message_move_task(TaskHandle=handle)
        journal.write([{"event": "cancelled", "task_handle": handle}])
    finally:
        bar.close()
        result = MoveResult(
            strategy=Strategy.NATIVE,
            dlq=queue_name_from(dlq_arn),
            destinations=(queue_name_from(destination_arn),)
            if destination_arn
            else ("(source queues)",),
            moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
            failed=0,
            skipped=0,
            possible_duplicates=(),
            failed_ids=(),
            send_retries=0,
            delete_retries=0,
            throttled=0,
            visibility_extensions=0,
            elapsed_seconds=round(time.monotonic() - started, 3),
            journal=journal.path,
            errors=tuple(errors),
            interrupted=interrupted,
            task_handle=handle,
        )
        journal.write(
            [
                {
                    "event": "end",
                    **result.to_dict(),
                    "task": {k: v for k, v in task.items() if isinstance(v, str | int | float)},
                }
            ]
        )
        journal.close()
    if interrupted:
        raise KeyboardInterrupt(f"redrive interrupted; move task {handle[:24]}... cancelled")
    return result
