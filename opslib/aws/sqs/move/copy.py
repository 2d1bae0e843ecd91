"""The copy strategy: receive, batch send, batch delete, journalled as it goes.

Per batch of up to 10: ReceiveMessage with all message and system attributes ->
SendMessageBatch preserving MessageAttributes, AWSTraceHeader and, for FIFO, MessageGroupId and
MessageDeduplicationId -> DeleteMessageBatch of exactly the entries whose send succeeded.
Partial failures and throttling are retried with backoff and counted; a batch that gets slow
has its visibility extended so nobody else receives it mid-move. Standard queues run
``concurrency`` workers (threads sharing the client, or also worker processes: see
:mod:`opslib.aws.sqs.move.workers`); FIFO runs one worker so the order within each message
group is kept.

What makes it safe to interrupt and re-run: a message is deleted from the DLQ only after its
send succeeded, so at any instant every message is in the DLQ, the destination, or both; "both"
is exactly the set of *possible duplicates* (send succeeded or may have, delete not done), and
the journal says which (:func:`opslib.aws.sqs.move.journal.journal_open_ids`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opslib.aws.sqs.messages import MessageFilter
from opslib.aws.sqs.move.journal import Journal
from opslib.aws.sqs.move.model import MoveResult, MoveSettings, Strategy
from opslib.aws.sqs.move.mover import DEFAULT_VISIBILITY, CopyTuning, Mover
from opslib.aws.sqs.move.state import Shared
from opslib.aws.sqs.move.workers import (
    SigtermAsInterrupt,
    WorkerSpec,
    plan_processes,
    processes_available,
    run_processes,
    run_threads,
)
from opslib.aws.sqs.queues import queue_name_from
from opslib.core.progress import ProgressFactory, default_progress

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["copy_move", "move_messages"]


def copy_move(
    settings: MoveSettings,
    *,
    sqs: SQSClient,
    journal_path: Path | str | None = None,
    tuning: CopyTuning | None = None,
    progress: ProgressFactory = default_progress,
    sqs_factory: Callable[[], Any] | None = None,
) -> MoveResult:
    """Copy strategy: move what ``settings`` say from the DLQ to ``destination_url`` (or, when
    empty, to each message's source queue via ``routes``: source ARN -> URL) without loss.

    ``max_messages`` caps messages moved (0 = no cap); ``planned_count`` caps messages looked at
    (the plan's count, so the approval covers what moves; 0 = until the DLQ is empty). On
    KeyboardInterrupt (or SIGTERM) the workers finish their current batch, held messages are
    released, the journal is closed, and the interrupt is re-raised.

    ``sqs_factory`` (see :func:`opslib.aws.sqs.move.workers.worker_factory`): for a standard
    queue with concurrency > 1, also run workers in processes (one per core, each with the
    client the factory rebuilds, threads inside). Without it, or for FIFO, threads share ``sqs``.
    """
    s = settings
    tuning = tuning or CopyTuning()
    total = s.planned_count or None
    if s.max_messages and (total is None or s.max_messages < total) and not s.filter_expression:
        total = s.max_messages
    bar = progress(total=total, desc=f"redrive {queue_name_from(s.dlq_url)}", unit="msg")
    journal = Journal(journal_path)
    shared = Shared.local(max_messages=s.max_messages, planned_count=s.planned_count)
    mover = Mover(s, sqs=sqs, journal=journal, shared=shared, tuning=tuning, bar=bar)
    plan = plan_processes(s.workers)
    use_processes = sqs_factory is not None and len(plan) > 1 and processes_available()
    mode = (
        f"processes={len(plan)} threads={'+'.join(map(str, plan))}" if use_processes else "threads"
    )
    journal.write(
        [
            {
                "event": "start",
                "strategy": "copy",
                "dlq": queue_name_from(s.dlq_url),
                "destination": queue_name_from(s.destination_url) if s.destination_url else "",
                "max_messages": s.max_messages,
                "planned_count": s.planned_count,
                "concurrency": s.workers,
                "workers": mode,
                "filter": mover.filter.expression,
            }
        ]
    )
    started = time.monotonic()
    interrupted = False
    undo = mover.hook()
    beat = threading.Thread(target=mover.keeper.run, name="redrive-heartbeat", daemon=True)
    beat.start()
    try:
        with SigtermAsInterrupt():
            if use_processes:
                assert sqs_factory is not None
                spec = WorkerSpec(
                    settings=s,
                    tuning=tuning,
                    journal_path=journal.path,
                    threads=0,
                    aws_env=tuple(
                        sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))
                    ),
                )
                run_processes(mover, sqs_factory, spec, bar)
            else:
                run_threads(mover, s.workers)
    except KeyboardInterrupt:
        interrupted = True
        mover.stop.set()  # also for an interrupt that came before the workers' own handling
    finally:
        mover.done.set()
        beat.join(timeout=30)
        undo()
        mover.release_held()
        elapsed = time.monotonic() - started
        bar.close()
        t = mover.tally
        result = MoveResult(
            strategy=Strategy.COPY,
            dlq=queue_name_from(s.dlq_url),
            destinations=tuple(sorted(t.destinations)),
            moved=t.moved,
            failed=len(t.failed_ids),
            skipped=t.skipped,
            possible_duplicates=tuple(t.dups),
            failed_ids=tuple(t.failed_ids),
            send_retries=t.send_retries,
            delete_retries=t.delete_retries,
            throttled=t.throttled,
            visibility_extensions=t.extensions,
            elapsed_seconds=round(elapsed, 3),
            journal=journal.path,
            errors=tuple(t.errors),
            interrupted=interrupted,
            workers=mode,
        )
        journal.write(
            [
                {
                    "event": "end",
                    **{
                        k: v
                        for k, v in result.to_dict().items()
                        if k not in ("possible_duplicates", "failed_ids")
                    },
                    "possible_duplicates": list(result.possible_duplicates),
                }
            ]
        )
        journal.close()
    if interrupted:
        raise KeyboardInterrupt(
            f"redrive interrupted after moving {result.moved} message(s); journal: {journal.path}"
        )
    return result


def move_messages(
    dlq_url: str,
    destination_url: str = "",
    *,
    sqs: SQSClient,
    routes: Mapping[str, str] | None = None,
    fifo: bool = False,
    message_filter: MessageFilter | None = None,
    max_messages: int = 0,
    planned_count: int = 0,
    rate_limit_per_second: float = 0,
    concurrency: int = 4,
    journal_path: Path | str | None = None,
    visibility_timeout: int = DEFAULT_VISIBILITY,
    wait_time_seconds: int = 1,
    progress: ProgressFactory = default_progress,
    sqs_factory: Callable[[], Any] | None = None,
) -> MoveResult:
    """:func:`copy_move` for a library caller without a plan: the settings as arguments."""
    settings = MoveSettings(
        dlq_url=dlq_url,
        destination_url=destination_url,
        routes=dict(routes or {}),
        fifo=fifo,
        filter_expression=message_filter.expression if message_filter is not None else "",
        max_messages=max_messages,
        planned_count=planned_count,
        rate_limit_per_second=rate_limit_per_second,
        concurrency=concurrency,
        strategy=Strategy.COPY,
    )
    return copy_move(
        settings,
        sqs=sqs,
        journal_path=journal_path,
        tuning=CopyTuning(visibility_timeout, wait_time_seconds),
        progress=progress,
        sqs_factory=sqs_factory,
    )
