"""The copy mover of one process: worker threads that receive a batch, filter it, send it,
delete exactly what was sent, and journal each step; and the heartbeat that keeps slow
batches invisible.

A message is deleted from the DLQ only after its send succeeded, so at any instant every
message is in the DLQ, the destination, or both ("possible duplicates", journalled).
Non-matching (skipped) and failed messages are held invisible during the run so they are
looked at once, then released (:meth:`Mover.release_held`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opslib.aws.sqs.messages import parse_filter
from opslib.aws.sqs.move.batch import BatchIO
from opslib.aws.sqs.move.journal import Journal
from opslib.aws.sqs.move.model import MoveSettings
from opslib.aws.sqs.move.state import Budget, Shared, Tally
from opslib.aws.sqs.move.throttle import AttemptWatch, RateLimiter, error_code, hook_events
from opslib.aws.sqs.queues import queue_name_from

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DEFAULT_VISIBILITY", "CopyTuning", "Mover", "VisibilityKeeper"]

DEFAULT_VISIBILITY = 30  # seconds a received batch stays hidden; extended when a batch is slow


@dataclass(frozen=True)
class CopyTuning:
    """How the copy receives (not part of the plan): visibility timeout and long-poll wait."""

    visibility_timeout: int = DEFAULT_VISIBILITY
    wait_time_seconds: int = 1


class VisibilityKeeper:
    """Keeps received batches invisible while they are being moved (the heartbeat).

    Every vis/4 s, a batch received more than vis/2 s ago gets its visibility pushed out again
    (ChangeMessageVisibilityBatch), so no other reader receives it while it is being sent
    (retries, throttling, a slow endpoint). Per-entry failures are expected (an entry deleted
    since the snapshot has no valid handle) and not errors; a failed call is recorded.
    """

    def __init__(self, *, sqs: SQSClient, dlq_url: str, visibility: int, tally: Tally) -> None:
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.vis = visibility
        self.tally = tally
        self.done = threading.Event()  # set when the workers are finished: stops the heartbeat
        self._lock = threading.Lock()
        self._inflight: dict[int, list[Any]] = {}  # token -> [receipt handles, last extended]
        self._token = 0

    def track(self, msgs: list[dict[str, Any]]) -> int:
        """Register a received batch; returns its token."""
        with self._lock:
            self._token += 1
            self._inflight[self._token] = [[m["ReceiptHandle"] for m in msgs], time.monotonic()]
            return self._token

    def untrack(self, token: int) -> None:
        with self._lock:
            self._inflight.pop(token, None)

    def run(self) -> None:
        while not self.done.wait(self.vis / 4):
            now = time.monotonic()
            with self._lock:
                due = [(t, e[0]) for t, e in self._inflight.items() if now - e[1] >= self.vis / 2]
            for token, handles in due:
                try:
                    self.sqs.change_message_visibility_batch(
                        QueueUrl=self.dlq_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": self.vis}
                            for i, h in enumerate(handles[:10])
                        ],
                    )
                except Exception as exc:  # noqa: BLE001 - recorded: the batch may be re-received elsewhere
                    self.tally.error(f"ChangeMessageVisibilityBatch: {error_code(exc)}")
                    continue
                with self._lock:
                    if token in self._inflight:
                        self._inflight[token][1] = time.monotonic()
                with self.tally.lock:
                    self.tally.extensions += 1


class Mover:
    """The worker threads of one copy move in one process, over ``shared`` state.

    With worker processes, each process has its own ``Mover`` and client; what must be one
    for the whole move (stop flag, budget, rate limit, progress count) is in ``shared``.
    """

    def __init__(
        self,
        settings: MoveSettings,
        *,
        sqs: SQSClient,
        journal: Journal,
        shared: Shared,
        tuning: CopyTuning = CopyTuning(),
        bar: Any = None,
    ) -> None:
        self.settings = settings
        self.sqs = sqs
        self.journal = journal
        self.tuning = tuning
        self.bar = bar
        self.filter = parse_filter(settings.filter_expression)
        self.tally = Tally()
        self.watch = AttemptWatch()
        self.keeper = VisibilityKeeper(
            sqs=sqs,
            dlq_url=settings.dlq_url,
            visibility=tuning.visibility_timeout,
            tally=self.tally,
        )
        self.attach(shared)

    @property
    def done(self) -> threading.Event:
        return self.keeper.done

    def attach(self, shared: Shared) -> None:
        """Use ``shared``'s stop flag, budget, rate limit and progress count (before starting)."""
        self.shared = shared
        self.stop = shared.stop
        self.budget = Budget(shared)
        self.limiter = RateLimiter(self.settings.rate_limit_per_second, shared.rate)
        self.io = BatchIO(
            sqs=self.sqs,
            dlq_url=self.settings.dlq_url,
            fifo=self.settings.fifo,
            stop=self.stop,
            tally=self.tally,
            watch=self.watch,
        )

    def hook(self) -> Callable[[], None]:
        """Watch every attempt of this mover's calls on its client; returns the undo."""
        return hook_events(self.sqs, self.watch)

    def _destination_for(self, msg: dict[str, Any]) -> str:
        s = self.settings
        if s.destination_url:
            return s.destination_url
        arn = msg.get("Attributes", {}).get("DeadLetterQueueSourceArn", "")
        if arn and arn in s.routes:
            return s.routes[arn]
        if len(s.routes) == 1:
            return next(iter(s.routes.values()))
        return ""

    def _done_when_empty(self, empties: int) -> bool:
        """An empty receive: stop when the DLQ reports nothing visible (or after a few tries)."""
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.settings.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            visible = int(attrs.get("ApproximateNumberOfMessages", 0))
        except Exception as exc:  # noqa: BLE001 - recorded; stop rather than spin on a broken endpoint
            self.tally.error(f"GetQueueAttributes: {error_code(exc)}")
            return True
        return visible == 0 or empties >= 5

    def _split(self, msgs: list[dict[str, Any]]):
        """(new, to send by destination, unroutable, skipped): held ones get their new receipt."""
        new = []
        with self.tally.lock:
            for m in msgs:
                if m["MessageId"] in self.tally.held:  # skipped/failed earlier, visible again
                    self.tally.held[m["MessageId"]] = m["ReceiptHandle"]
                else:
                    new.append(m)
        to_send, skipped = [], []
        for m in new:
            (to_send if self.filter.matches(m["Body"]) else skipped).append(m)
        unroutable = []
        by_dest: dict[str, list[dict[str, Any]]] = {}
        for m in to_send:
            d = self._destination_for(m)
            if d:
                by_dest.setdefault(d, []).append(m)
            else:
                unroutable.append(m)
        return new, by_dest, unroutable, skipped

    def process(self, msgs: list[dict[str, Any]], reserved: int) -> None:
        """Filter, send, delete and journal one received batch."""
        new, by_dest, unroutable, skipped = self._split(msgs)
        records: list[dict[str, Any]] = [
            {"event": "skipped", "source_id": m["MessageId"]} for m in skipped
        ]
        failed_now: list[tuple[dict[str, Any], str]] = [
            (m, "no DeadLetterQueueSourceArn and several source queues: give destination")
            for m in unroutable
        ]
        moved_ids: list[str] = []
        dups_now: list[str] = []
        for dest, group in by_dest.items():
            records = self._move_group(dest, group, records, failed_now, moved_ids, dups_now)
        for m, why in failed_now:
            records.append(
                {"event": "send_failed", "source_id": m["MessageId"], "error": why[:200]}
            )
        self.journal.write(records)
        t = self.tally
        with t.lock:
            t.moved += len(moved_ids)
            t.moved_ids += moved_ids
            t.skipped += len(skipped)
            t.skipped_ids += [m["MessageId"] for m in skipped]
            for m in skipped:
                t.held[m["MessageId"]] = m["ReceiptHandle"]
            for m, _ in failed_now:
                t.failed_ids.append(m["MessageId"])
                t.held[m["MessageId"]] = m["ReceiptHandle"]
            for d in dups_now:
                if d not in t.dups:
                    t.dups.append(d)
        self.budget.give_back(reserved - len(moved_ids), reserved - len(new), len(new))
        if self.bar is not None and new:
            self.bar.update(len(new))

    def _move_group(
        self,
        dest: str,
        group: list[dict[str, Any]],
        records: list[dict[str, Any]],
        failed_now: list[tuple[dict[str, Any], str]],
        moved_ids: list[str],
        dups_now: list[str],
    ) -> list[dict[str, Any]]:
        """Send one destination's messages, delete what was sent; returns unwritten records."""
        dname = queue_name_from(dest)
        # intent first: a kill between this line and the "sent" lines leaves an audit trail
        records.append(
            {
                "event": "sending",
                "destination": dname,
                "pid": os.getpid(),  # which process (of a move in worker processes)
                "source_ids": [m["MessageId"] for m in group],
            }
        )
        self.journal.write(records)
        sent, failed, ambiguous = self.io.send(dest, group)
        for i, why in failed.items():
            failed_now.append((group[int(i)], why))
        if ambiguous:
            # An attempt may have been applied server-side: the failed ones may be in the
            # destination too; they stay in the DLQ and are reported as possible duplicates.
            dups_now += [group[int(i)]["MessageId"] for i in failed]
        records = [
            {
                "event": "sent",
                "source_id": group[int(i)]["MessageId"],
                "new_id": nid,
                "destination": dname,
            }
            for i, nid in sent.items()
        ]
        self.journal.write(records)  # sent lines hit the disk before any delete
        records = []
        to_delete = {i: group[int(i)]["ReceiptHandle"] for i in sent}
        del_failed = self.io.delete(to_delete) if to_delete else {}
        for i in sent:
            sid = group[int(i)]["MessageId"]
            if i in del_failed:
                dups_now.append(sid)
                records.append(
                    {
                        "event": "delete_failed",
                        "source_id": sid,
                        "new_id": sent[i],
                        "error": del_failed[i],
                    }
                )
            else:
                moved_ids.append(sid)
                records.append({"event": "deleted", "source_id": sid})
        if ambiguous:
            dups_now += [group[int(i)]["MessageId"] for i in sent]
            records.append(
                {
                    "event": "ambiguous_send",
                    "source_ids": [group[int(i)]["MessageId"] for i in list(sent) + list(failed)],
                }
            )
        with self.tally.lock:
            self.tally.destinations.add(dname)
        return records

    def _receive(self, n: int, empties: int) -> list[dict[str, Any]]:
        self.limiter.acquire(n, self.stop)
        if self.stop.is_set():  # interrupted while waiting for the rate limit
            raise InterruptedError("move stopped")
        resp = self.io.call(
            self.sqs.receive_message,
            QueueUrl=self.settings.dlq_url,
            MaxNumberOfMessages=n,
            VisibilityTimeout=self.tuning.visibility_timeout,
            WaitTimeSeconds=self.tuning.wait_time_seconds if empties else 0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return resp.get("Messages", [])

    def worker(self) -> None:
        """One worker thread: reserve, receive, process, until the budget or the DLQ is done."""
        empties = 0
        rehits = 0
        while not self.stop.is_set():
            n = self.budget.reserve()
            if n == 0:
                break
            try:
                msgs = self._receive(n, empties)
            except InterruptedError:
                self.budget.give_back(n, n)
                break
            except Exception as exc:  # noqa: BLE001 - recorded and shown
                self.budget.give_back(n, n)
                self.tally.error(f"ReceiveMessage: {error_code(exc)}: {str(exc)[:160]}")
                self.stop.set()
                break
            if not msgs:
                self.budget.give_back(n, n)
                empties += 1
                if self._done_when_empty(empties):
                    break
                continue
            empties = 0
            with self.tally.lock:
                all_held = all(m["MessageId"] in self.tally.held for m in msgs)
            rehits = rehits + 1 if all_held else 0
            token = self.keeper.track(msgs)
            try:
                self.process(msgs, n)
            except InterruptedError:
                break
            except Exception as exc:  # noqa: BLE001 - recorded; the batch stays in the DLQ (not deleted)
                self.tally.error(f"batch: {type(exc).__name__}: {str(exc)[:160]}")
                self.stop.set()
                break
            finally:
                self.keeper.untrack(token)
            if rehits >= 3:  # only held messages keep coming back: nothing new to move
                break

    def release_held(self) -> None:
        """Make skipped and failed messages visible again now, for the next run or reader."""
        handles = list(self.tally.held.values())
        for i in range(0, len(handles), 10):
            chunk = handles[i : i + 10]
            try:
                resp = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.settings.dlq_url,
                    Entries=[
                        {"Id": str(j), "ReceiptHandle": h, "VisibilityTimeout": 0}
                        for j, h in enumerate(chunk)
                    ],
                )
                if resp.get("Failed"):
                    self.tally.errors.append(
                        f"release: {len(resp['Failed'])} held message(s) not released "
                        f"(visible again after {self.tuning.visibility_timeout}s)"
                    )
            except Exception as exc:  # noqa: BLE001 - recorded: they become visible after the timeout anyway
                self.tally.errors.append(f"release: {error_code(exc)}")
