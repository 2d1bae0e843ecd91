"""The redrive move itself: the copy strategy (receive, batch send, batch delete) and the native
strategy (StartMessageMoveTask), each writing a JSON-lines journal as it goes.

Copy, per batch of up to 10: ReceiveMessage with all message and system attributes ->
SendMessageBatch preserving MessageAttributes, AWSTraceHeader and, for FIFO, MessageGroupId and
MessageDeduplicationId -> DeleteMessageBatch of exactly the entries whose send succeeded. Partial
failures and throttling are retried with backoff and counted; a batch that gets slow has its
visibility extended so nobody else receives it mid-move. Standard queues run ``concurrency``
threads sharing one boto3 client (clients are thread-safe; one connection pool, reused
connections); FIFO runs one worker so the order within each message group is kept.

Worker processes (``sqs_factory``): a boto3 call costs ~0.6-0.7 ms of Python CPU (signing,
serializing, http.client, parsing), and threads in one process share one core through the GIL,
so on a standard queue the ``concurrency`` workers are spread over one process per core: the
parent's threads (the injected client; they start at once) plus forkserver worker processes
with their own clients, sharing the stop flag, the message budget, the rate limit and the
progress count. Each process appends its own journal lines (O_APPEND, one write per batch, so
the "sending" line is on disk before its send whatever dies), keeps its own batches' visibility
extended, and reports its counts and ids back; the parent merges them and releases held
messages. Ctrl-C/SIGTERM: the parent sets the stop flag, every worker finishes its in-flight
batch; a killed parent is seen by the workers as EOF on a pipe, and they stop the same way.

What makes it safe to interrupt and re-run: a message is deleted from the DLQ only after its
send succeeded, so at any instant every message is in the DLQ, the destination, or both; "both"
is exactly the set of *possible duplicates* (send succeeded or may have, delete not done), and
the journal says which: a ``sending`` or ``sent`` line without a ``deleted`` line (``sending`` is
written before each SendMessageBatch, ``sent`` with the new ids after it, ``deleted`` after the
DeleteMessageBatch). Non-matching (skipped) and failed messages are held invisible during the
run so they are looked at once, then released.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from opslib.aws.sqs import MessageFilter, queue_name_from

#: Error codes that mean "slow down" (botocore's throttling list plus SQS's own).
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "KmsThrottled",
        "KMS.ThrottlingException",
    }
)
RETRYABLE_CODES = THROTTLE_CODES | {
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "500",
    "502",
    "503",
    "504",
}
DEFAULT_VISIBILITY = 30  # seconds a received batch stays hidden; extended when a batch is slow
MAX_ATTEMPTS = 8  # per batch, on top of botocore's own retries
BACKOFF_BASE = 0.05
BACKOFF_CAP = 5.0


@dataclass(frozen=True)
class MoveResult:
    """What a move did, counted by the mover itself (the journal has the per-message detail)."""

    strategy: str
    dlq: str
    destinations: tuple[str, ...]
    moved: int
    failed: int
    skipped: int
    possible_duplicates: tuple[str, ...]
    failed_ids: tuple[str, ...]
    send_retries: int
    delete_retries: int
    throttled: int
    visibility_extensions: int
    elapsed_seconds: float
    journal: str
    errors: tuple[str, ...] = ()
    interrupted: bool = False
    task_handle: str = ""
    workers: str = ""  # copy: "threads", or "processes=2 threads=2+2" (threads per process)

    @property
    def rate(self) -> float:
        return self.moved / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rate"] = round(self.rate, 1)
        return d

    def to_frame(self):
        import pandas as pd

        d = self.to_dict()
        d["possible_duplicates"] = len(self.possible_duplicates)
        d["failed_ids"] = len(self.failed_ids)
        d["errors"] = len(self.errors)
        return pd.DataFrame([d])


class _Journal:
    """Append-only JSON lines, one ``write(2)`` per batch, so a killed run leaves a usable log.

    The file is opened ``O_APPEND`` and each batch's lines go out in a single unbuffered
    ``os.write``: the kernel places every write at the end of the file as a whole, so the
    worker processes of one move can append to the same journal without interleaving lines,
    and nothing sits in a user-space buffer when the process is killed.
    """

    def __init__(self, path: Path | str | None) -> None:
        self.path = str(path) if path else ""
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else -1

    def write(self, records: list[dict[str, Any]]) -> None:
        if self._fd < 0 or not records:
            return
        ts = round(time.time(), 3)
        text = "".join(json.dumps({"ts": ts, **r}, separators=(",", ":")) + "\n" for r in records)
        data = text.encode("utf-8")
        with self._lock:
            while data:  # a regular file takes it all at once; loop only on a short write
                data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _SharedFlag:
    """The stop flag across processes, without a lock: a ``multiprocessing.Event`` is a
    Condition over a shared lock, and a process SIGKILLed while holding it leaves every other
    one blocked for ever (seen here). One byte, written and read whole, needs no lock."""

    def __init__(self, raw) -> None:
        self._v = raw

    def is_set(self) -> bool:
        return bool(self._v.value)

    def set(self) -> None:
        self._v.value = 1

    def wait(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not self._v.value:
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.02))
        return True


class _SharedLock:
    """A process-shared lock that gives up (InterruptedError) once the move is stopping: its
    holder may have been killed, and then it is never released."""

    def __init__(self, lock, stop: _SharedFlag) -> None:
        self._lock, self._stop = lock, stop

    def __enter__(self) -> None:
        while not self._lock.acquire(timeout=0.5):
            if self._stop.is_set():
                raise InterruptedError("move stopped")

    def __exit__(self, *exc) -> None:
        self._lock.release()


class _RateLimiter:
    """Spaces receives so the whole move stays under ``rate`` messages per second.

    ``shared`` (a lock and a ``multiprocessing.Value``) makes one limit span the worker
    processes of a move; ``time.monotonic`` is the same clock in every process on one host.
    """

    def __init__(self, rate: float, shared: tuple[Any, Any] | None = None) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        if shared is None:
            shared = (threading.Lock(), SimpleNamespace(value=time.monotonic()))
        self._lock, self._next = shared

    def acquire(self, n: int, stop) -> None:
        if not self.interval:
            return
        try:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next.value)
                self._next.value = start + n * self.interval
        except InterruptedError:  # stopping: the caller checks the stop flag next
            return
        wait = start - now
        if wait > 0:
            stop.wait(wait)


class _Attempts(threading.local):
    """Per-thread record of what botocore saw on each HTTP attempt of the current call."""

    def __init__(self) -> None:
        self.throttled = 0
        self.ambiguous = False  # a send attempt failed in a way that may have been applied


def _backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)) * (0.5 + random.random() / 2)  # noqa: S311


def _code(exc: BaseException) -> str:
    resp = getattr(exc, "response", None) or {}
    err = resp.get("Error", {}) if isinstance(resp, dict) else {}
    code = str(err.get("Code", "")) if err else ""
    return code or type(exc).__name__


class _Mover:
    """State shared by the worker threads of one copy move (in one process).

    With worker processes, each process has its own ``_Mover`` and client; what must be one
    for the whole move (the stop flag, the message budget, the rate limit, the progress count)
    comes in ``shared`` as ``multiprocessing`` objects made by the parent.
    """

    def __init__(
        self,
        *,
        sqs,
        dlq_url,
        destination_url,
        routes,
        fifo,
        message_filter,
        max_messages,
        planned_count,
        rate_limit_per_second,
        concurrency,
        journal,
        visibility_timeout,
        wait_time_seconds,
        bar,
        shared: dict[str, Any] | None = None,
    ) -> None:
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.destination_url = destination_url
        self.routes = dict(routes or {})
        self.fifo = fifo
        self.filter = message_filter
        self.journal = journal
        self.vis = visibility_timeout
        self.wait = wait_time_seconds
        self.bar = bar
        self.concurrency = 1 if fifo else max(1, concurrency)
        self.lock = threading.Lock()
        if shared is None:
            inf = float("inf")
            shared = {
                "stop": threading.Event(),
                "budget_lock": threading.Lock(),
                # blast radius: messages moved; the plan's count: messages looked at
                "move_left": SimpleNamespace(value=max_messages if max_messages else inf),
                "seen_left": SimpleNamespace(value=planned_count if planned_count else inf),
                "rate": None,
                "looked_at": None,
            }
        self.rate_limit = rate_limit_per_second
        self.attach(shared)
        self.moved = 0
        self.moved_ids: list[str] = []  # source ids deleted after their send
        self.skipped = 0
        self.skipped_ids: list[str] = []
        self.failed_ids: list[str] = []
        self.dups: list[str] = []
        self.held: dict[str, str] = {}  # message id -> latest receipt handle (skipped or failed)
        self.send_retries = 0
        self.delete_retries = 0
        self.throttled = 0
        self.extensions = 0
        self.errors: list[str] = []
        self.destinations: set[str] = set()
        self.attempts = _Attempts()
        self.inflight: dict[int, list[Any]] = {}  # token -> [receipt handles, last extended]
        self._token = 0
        self.done = threading.Event()  # set when the workers are finished: stops the heartbeat

    def attach(self, shared: dict[str, Any]) -> None:
        """Use ``shared``'s stop flag, budget, rate limit and progress count (before starting)."""
        self.stop = shared["stop"]
        self.budget_lock = shared["budget_lock"]
        self.move_left = shared["move_left"]
        self.seen_left = shared["seen_left"]
        self.looked_at = shared["looked_at"]  # processes: progress counted for the parent's bar
        self.limiter = _RateLimiter(self.rate_limit, shared["rate"])

    def part(self) -> dict[str, Any]:
        """This mover's results, as merged by ``_merge``."""
        return {
            "moved": self.moved,
            "moved_ids": self.moved_ids,
            "skipped_ids": self.skipped_ids,
            "failed_ids": self.failed_ids,
            "dups": self.dups,
            "held": self.held,
            "send_retries": self.send_retries,
            "delete_retries": self.delete_retries,
            "throttled": self.throttled,
            "extensions": self.extensions,
            "errors": self.errors,
            "destinations": sorted(self.destinations),
        }

    # botocore hook: runs in the calling thread for every HTTP attempt of a send/delete
    def on_response(
        self,
        response_dict=None,
        parsed_response=None,
        exception=None,
        event_name: str = "",
        **_: Any,
    ) -> None:
        is_send = event_name.endswith("SendMessageBatch")
        if exception is not None:  # connection reset / timeout: the request may have landed
            if is_send:
                self.attempts.ambiguous = True
            return
        status = (response_dict or {}).get("status_code", 200)
        code = ((parsed_response or {}).get("Error") or {}).get("Code", "")
        if code in THROTTLE_CODES or status == 429:
            self.attempts.throttled += 1
        elif status >= 500 and is_send:
            self.attempts.ambiguous = True

    # -- budget
    def reserve(self) -> int:
        try:
            with self.budget_lock:
                n = int(min(10, self.move_left.value, self.seen_left.value))
                if n <= 0:
                    return 0
                self.move_left.value -= n
                self.seen_left.value -= n
                return n
        except InterruptedError:  # stopping, and the budget's lock is lost with its holder
            return 0

    def give_back(self, moves: int, seen: int, looked_at: int = 0) -> None:
        """Return unused budget; also counts progress for the parent's bar (processes)."""
        if not (moves or seen or (looked_at and self.looked_at is not None)):
            return
        try:
            with self.budget_lock:
                self.move_left.value += moves
                self.seen_left.value += seen
                if self.looked_at is not None:
                    self.looked_at.value += looked_at
        except InterruptedError:  # stopping: the budget no longer matters
            pass

    def _call(self, fn, **kwargs):
        """One API call with our own retry on throttling/5xx after botocore's retries gave up."""
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

        for attempt in range(MAX_ATTEMPTS):
            self.attempts.throttled = 0
            try:
                resp = fn(**kwargs)
                return resp
            except ClientError as exc:
                if _code(exc) not in RETRYABLE_CODES or attempt == MAX_ATTEMPTS - 1:
                    raise
            except (ConnectionError, HTTPClientError):
                if attempt == MAX_ATTEMPTS - 1:
                    raise
            finally:
                with self.lock:
                    self.throttled += self.attempts.throttled
            if self.stop.wait(_backoff(attempt)):
                raise InterruptedError("move stopped")
        raise AssertionError("unreachable")

    def track(self, msgs: list[dict[str, Any]]) -> int:
        """Register a received batch with the heartbeat; returns its token."""
        with self.lock:
            self._token += 1
            self.inflight[self._token] = [[m["ReceiptHandle"] for m in msgs], time.monotonic()]
            return self._token

    def untrack(self, token: int) -> None:
        with self.lock:
            self.inflight.pop(token, None)

    def heartbeat(self) -> None:
        """Keep slow batches invisible: every vis/4 s, a batch received more than vis/2 s ago
        gets its visibility pushed out again (ChangeMessageVisibilityBatch), so no other reader
        receives it while it is being sent (retries, throttling, a slow endpoint).

        Per-entry failures are expected (an entry deleted since the snapshot has no valid
        handle) and not errors; a failed call is recorded.
        """
        while not self.done.wait(self.vis / 4):
            now = time.monotonic()
            with self.lock:
                due = [(t, e[0]) for t, e in self.inflight.items() if now - e[1] >= self.vis / 2]
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
                    with self.lock:
                        self.errors.append(f"ChangeMessageVisibilityBatch: {_code(exc)}")
                    continue
                with self.lock:
                    if token in self.inflight:
                        self.inflight[token][1] = time.monotonic()
                    self.extensions += 1

    def _destination_for(self, msg: dict[str, Any]) -> str:
        if self.destination_url:
            return self.destination_url
        arn = msg.get("Attributes", {}).get("DeadLetterQueueSourceArn", "")
        if arn and arn in self.routes:
            return self.routes[arn]
        if len(self.routes) == 1:
            return next(iter(self.routes.values()))
        return ""

    def _entry(self, i: int, msg: dict[str, Any]) -> dict[str, Any]:
        attrs = msg.get("Attributes", {})
        entry: dict[str, Any] = {"Id": str(i), "MessageBody": msg["Body"]}
        if msg.get("MessageAttributes"):
            entry["MessageAttributes"] = {
                k: {kk: vv for kk, vv in v.items() if vv not in ([], None)}
                for k, v in msg["MessageAttributes"].items()
            }
        trace = attrs.get("AWSTraceHeader")
        if trace:
            entry["MessageSystemAttributes"] = {
                "AWSTraceHeader": {"DataType": "String", "StringValue": trace}
            }
        if self.fifo:
            entry["MessageGroupId"] = attrs.get("MessageGroupId", "default")
            if attrs.get("MessageDeduplicationId"):
                entry["MessageDeduplicationId"] = attrs["MessageDeduplicationId"]
        return entry

    def _send(self, dest: str, msgs: list[dict[str, Any]]):
        """SendMessageBatch with retries of failed entries; -> (sent {i: new id}, failed {i: why},
        ambiguous: whether some attempt may have been applied without us seeing it)."""
        entries = {str(i): self._entry(i, m) for i, m in enumerate(msgs)}
        pending = list(entries)
        sent: dict[str, str] = {}
        failed: dict[str, str] = {}
        ambiguous = False
        for attempt in range(MAX_ATTEMPTS):
            self.attempts.ambiguous = False
            try:
                resp = self._call(
                    self.sqs.send_message_batch,
                    QueueUrl=dest,
                    Entries=[entries[i] for i in pending],
                )
            except InterruptedError:  # stopped between retries: these stay in the DLQ
                ambiguous = ambiguous or self.attempts.ambiguous
                for i in pending:
                    failed[i] = "interrupted"
                return sent, failed, ambiguous
            except Exception as exc:  # noqa: BLE001 - recorded and shown
                status = int(
                    (getattr(exc, "response", None) or {})
                    .get("ResponseMetadata", {})
                    .get("HTTPStatusCode", 0)
                    or 0
                )
                landed = not hasattr(exc, "response") or status >= 500  # may have been applied
                ambiguous = ambiguous or self.attempts.ambiguous or landed
                for i in pending:
                    failed[i] = f"{_code(exc)}: {str(exc)[:120]}"
                return sent, failed, ambiguous
            ambiguous = ambiguous or self.attempts.ambiguous
            for s in resp.get("Successful", []):
                sent[s["Id"]] = s["MessageId"]
            retry = []
            for f in resp.get("Failed", []):
                if f.get("SenderFault"):
                    failed[f["Id"]] = f"{f.get('Code', '')}: {f.get('Message', '')}"
                else:
                    retry.append(f["Id"])
                    if f.get("Code") in THROTTLE_CODES:
                        with self.lock:
                            self.throttled += 1
            if not retry:
                return sent, failed, ambiguous
            with self.lock:
                self.send_retries += len(retry)
            pending = retry
            if self.stop.wait(_backoff(attempt)):
                for i in pending:
                    failed[i] = "interrupted"
                return sent, failed, ambiguous
        for i in pending:
            failed[i] = "retries exhausted"
        return sent, failed, ambiguous

    def _delete(self, handles: dict[str, str]) -> dict[str, str]:
        """DeleteMessageBatch with retries; -> {entry id: why} for deletes that never succeeded."""
        pending = list(handles)
        failed: dict[str, str] = {}
        for attempt in range(MAX_ATTEMPTS):
            try:
                resp = self._call(
                    self.sqs.delete_message_batch,
                    QueueUrl=self.dlq_url,
                    Entries=[{"Id": i, "ReceiptHandle": handles[i]} for i in pending],
                )
            except InterruptedError:  # sent but not deleted: reported as possible duplicates
                return {**failed, **{i: "interrupted" for i in pending}}
            except Exception as exc:  # noqa: BLE001 - recorded and shown
                return {**failed, **{i: f"{_code(exc)}: {str(exc)[:120]}" for i in pending}}
            retry = []
            for f in resp.get("Failed", []):
                if f.get("SenderFault"):
                    failed[f["Id"]] = f"{f.get('Code', '')}: {f.get('Message', '')}"
                else:
                    retry.append(f["Id"])
                    if f.get("Code") in THROTTLE_CODES:
                        with self.lock:
                            self.throttled += 1
            if not retry:
                return failed
            with self.lock:
                self.delete_retries += len(retry)
            pending = retry
            if self.stop.wait(_backoff(attempt)):
                for i in pending:
                    failed[i] = "interrupted"
                return failed
        for i in pending:
            failed[i] = "retries exhausted"
        return failed

    def _done_when_empty(self, empties: int) -> bool:
        """An empty receive: stop when the DLQ reports nothing visible (or after a few tries)."""
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            visible = int(attrs.get("ApproximateNumberOfMessages", 0))
        except Exception as exc:  # noqa: BLE001 - recorded; stop rather than spin on a broken endpoint
            with self.lock:
                self.errors.append(f"GetQueueAttributes: {_code(exc)}")
            return True
        return visible == 0 or empties >= 5

    def process(self, msgs: list[dict[str, Any]], reserved: int) -> None:
        """Filter, send, delete and journal one received batch."""
        new, records = [], []
        with self.lock:
            for m in msgs:
                if m["MessageId"] in self.held:  # skipped/failed earlier, visible again: hold again
                    self.held[m["MessageId"]] = m["ReceiptHandle"]
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
        for m in skipped:
            records.append({"event": "skipped", "source_id": m["MessageId"]})
        failed_now: list[tuple[dict[str, Any], str]] = [
            (m, "no DeadLetterQueueSourceArn and several source queues: give destination")
            for m in unroutable
        ]
        moved_now = 0
        moved_ids: list[str] = []
        dups_now: list[str] = []
        for dest, group in by_dest.items():
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
            records = []
            sent, failed, ambiguous = self._send(dest, group)
            for i, why in failed.items():
                failed_now.append((group[int(i)], why))
            if ambiguous:
                # An attempt may have been applied server-side: the failed ones may be in the
                # destination too; they stay in the DLQ and are reported as possible duplicates.
                dups_now += [group[int(i)]["MessageId"] for i in failed]
            records += [
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
            del_failed = self._delete(to_delete) if to_delete else {}
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
                    moved_now += 1
                    moved_ids.append(sid)
                    records.append({"event": "deleted", "source_id": sid})
            if ambiguous:
                dups_now += [group[int(i)]["MessageId"] for i in sent]
                records.append(
                    {
                        "event": "ambiguous_send",
                        "source_ids": [
                            group[int(i)]["MessageId"] for i in list(sent) + list(failed)
                        ],
                    }
                )
            with self.lock:
                self.destinations.add(dname)
        for m, why in failed_now:
            records.append(
                {"event": "send_failed", "source_id": m["MessageId"], "error": why[:200]}
            )
        self.journal.write(records)
        with self.lock:
            self.moved += moved_now
            self.moved_ids += moved_ids
            self.skipped += len(skipped)
            self.skipped_ids += [m["MessageId"] for m in skipped]
            for m in skipped:
                self.held[m["MessageId"]] = m["ReceiptHandle"]
            for m, _ in failed_now:
                self.failed_ids.append(m["MessageId"])
                self.held[m["MessageId"]] = m["ReceiptHandle"]
            for d in dups_now:
                if d not in self.dups:
                    self.dups.append(d)
        self.give_back(reserved - moved_now, reserved - len(new), len(new))
        if self.bar is not None and new:
            self.bar.update(len(new))

    def worker(self) -> None:
        empties = 0
        rehits = 0
        while not self.stop.is_set():
            n = self.reserve()
            if n == 0:
                break
            try:
                self.limiter.acquire(n, self.stop)
                if self.stop.is_set():  # interrupted while waiting for the rate limit
                    raise InterruptedError("move stopped")
                resp = self._call(
                    self.sqs.receive_message,
                    QueueUrl=self.dlq_url,
                    MaxNumberOfMessages=n,
                    VisibilityTimeout=self.vis,
                    WaitTimeSeconds=self.wait if empties else 0,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except InterruptedError:
                self.give_back(n, n)
                break
            except Exception as exc:  # noqa: BLE001 - recorded and shown
                self.give_back(n, n)
                with self.lock:
                    self.errors.append(f"ReceiveMessage: {_code(exc)}: {str(exc)[:160]}")
                self.stop.set()
                break
            msgs = resp.get("Messages", [])
            if not msgs:
                self.give_back(n, n)
                empties += 1
                if self._done_when_empty(empties):
                    break
                continue
            empties = 0
            with self.lock:
                all_held = all(m["MessageId"] in self.held for m in msgs)
            rehits = rehits + 1 if all_held else 0
            token = self.track(msgs)
            try:
                self.process(msgs, n)
            except InterruptedError:
                break
            except Exception as exc:  # noqa: BLE001 - recorded; the batch stays in the DLQ (not deleted)
                with self.lock:
                    self.errors.append(f"batch: {type(exc).__name__}: {str(exc)[:160]}")
                self.stop.set()
                break
            finally:
                self.untrack(token)
            if rehits >= 3:  # only held messages keep coming back: nothing new to move
                break

    def release_held(self) -> None:
        """Make skipped and failed messages visible again now, for the next run or reader."""
        handles = list(self.held.values())
        for i in range(0, len(handles), 10):
            chunk = handles[i : i + 10]
            try:
                resp = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.dlq_url,
                    Entries=[
                        {"Id": str(j), "ReceiptHandle": h, "VisibilityTimeout": 0}
                        for j, h in enumerate(chunk)
                    ],
                )
                if resp.get("Failed"):
                    self.errors.append(
                        f"release: {len(resp['Failed'])} held message(s) not released "
                        f"(visible again after {self.vis}s)"
                    )
            except Exception as exc:  # noqa: BLE001 - recorded: they become visible after the timeout anyway
                self.errors.append(f"release: {_code(exc)}")


#: Botocore client settings for the worker processes' own clients (on top of opslib's bounded
#: config). A fixed User-Agent skips botocore's per-request rebuild of its feature-metadata UA
#: string (measured ~10% of the Python CPU of a call); the rest as the notebook's mover client.
WORKER_CLIENT_CONFIG: dict[str, Any] = {
    "parameter_validation": False,
    "retries": {"mode": "standard", "max_attempts": 5},
    "max_pool_connections": 16,
    "user_agent": "opslib-redrive",
}


def worker_client_factory(region: str = "", **config_overrides: Any) -> Callable[[], Any]:
    """A picklable recipe for the SQS client each worker process builds for itself
    (``opslib.clients.aws_client``, the standard credential chain and ``AWS_ENDPOINT_URL``).

    Pass it as ``move_messages(..., sqs_factory=worker_client_factory(region))`` to run a
    standard-queue move in worker processes. It must reach the same account and endpoint as
    the ``sqs`` client given alongside it (the parent uses that one to release held messages).
    """
    from opslib.clients import aws_client

    return functools.partial(
        aws_client, "sqs", region=region, **{**WORKER_CLIENT_CONFIG, **config_overrides}
    )


def _hook_events(sqs, mover: _Mover) -> Callable[[], None]:
    """Register the mover's per-attempt hook on ``sqs``; returns the undo."""
    events = [
        f"response-received.sqs.{op}"
        for op in ("SendMessageBatch", "DeleteMessageBatch", "ReceiveMessage")
    ]
    uid = f"opslib-move-{id(mover)}"
    for ev in events:
        sqs.meta.events.register(ev, mover.on_response, unique_id=uid + ev)

    def undo() -> None:
        for ev in events:
            sqs.meta.events.unregister(ev, unique_id=uid + ev)

    return undo


def _run_threads(mover: _Mover, n: int) -> None:
    """Run ``n`` worker threads of ``mover`` to the end (KeyboardInterrupt propagates)."""
    threads = [
        threading.Thread(target=mover.worker, name=f"redrive-{i}", daemon=True) for i in range(n)
    ]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
    except KeyboardInterrupt:
        mover.stop.set()
        for t in threads:
            t.join(timeout=60)
        raise


# -- worker processes -------------------------------------------------------------------------
_SHARED: dict[str, Any] = {}  # in a worker process: the move's shared objects (from the parent)


def _process_init(shared: dict[str, Any]) -> None:
    """Worker process start: Ctrl-C goes to the whole process group, but only the parent acts
    on it (it sets the shared stop flag, and the workers finish their in-flight batch)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _SHARED.clear()
    _SHARED.update(shared)


def _process_run(sqs_factory: Callable[[], Any], spec: dict[str, Any]) -> dict[str, Any]:
    """One worker process: its own client and threads over the shared budget; writes its own
    journal lines (O_APPEND); returns its counts and the ids the parent needs."""
    from opslib.aws.sqs import parse_filter

    # The forkserver's environment is the one it started with: take the caller's AWS settings
    # of now (endpoint, profile, region, credentials), as its own client would.
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        if key not in spec["aws_env"]:
            del os.environ[key]
    os.environ.update(spec["aws_env"])
    sqs = sqs_factory()
    journal = _Journal(spec["journal_path"])
    mover = _Mover(
        sqs=sqs,
        dlq_url=spec["dlq_url"],
        destination_url=spec["destination_url"],
        routes=spec["routes"],
        fifo=False,
        message_filter=parse_filter(spec["filter"]),
        max_messages=0,
        planned_count=0,
        rate_limit_per_second=spec["rate"],
        concurrency=spec["threads"],
        journal=journal,
        visibility_timeout=spec["vis"],
        wait_time_seconds=spec["wait"],
        bar=None,
        shared=_SHARED,
    )
    undo = _hook_events(sqs, mover)
    orphaned = threading.Event()

    def watch_parent() -> None:  # parent gone (killed): stop after the in-flight batches
        # Only the parent holds the pipe's write end, so its death reads as EOF here (the
        # forkserver lives on while any child does: our parent pid would never change).
        while not mover.done.wait(0.25):
            if _SHARED["alive"].poll(0):
                orphaned.set()
                mover.stop.set()
                return

    aux = [
        threading.Thread(target=mover.heartbeat, daemon=True),
        threading.Thread(target=watch_parent, daemon=True),
    ]
    for t in aux:
        t.start()
    try:
        _run_threads(mover, mover.concurrency)
    finally:
        mover.done.set()
        for t in aux:
            t.join(timeout=30)
        undo()
        journal.close()
    if orphaned.is_set():  # nobody to report to; the journal has it all. Do not linger.
        os._exit(0)
    return mover.part()


def _merge(mover: _Mover, parts: list[dict[str, Any]]) -> None:
    """Fold the worker processes' results into the parent's mover (whose own are one of the
    parts). A message held (skipped or failed) by one process may be received again by another
    after its visibility ran out, so ids are de-duplicated, and one moved in the end is neither
    failed nor held."""
    parts = [mover.part(), *parts]
    mover.moved = mover.send_retries = mover.delete_retries = 0
    mover.throttled = mover.extensions = 0
    mover.moved_ids, mover.skipped_ids, mover.failed_ids, mover.dups = [], [], [], []
    mover.held, mover.errors, mover.destinations = {}, [], set()
    moved_ids: set[str] = set()
    skipped: set[str] = set()
    for part in parts:
        mover.moved += part["moved"]
        moved_ids.update(part["moved_ids"])
        skipped.update(part["skipped_ids"])
        mover.send_retries += part["send_retries"]
        mover.delete_retries += part["delete_retries"]
        mover.throttled += part["throttled"]
        mover.extensions += part["extensions"]
        mover.errors += part["errors"]
        mover.destinations.update(part["destinations"])
        mover.held.update(part["held"])
    for part in parts:
        for sid in part["failed_ids"]:
            if sid not in moved_ids and sid not in mover.failed_ids:
                mover.failed_ids.append(sid)
        for sid in part["dups"]:
            if sid not in mover.dups:
                mover.dups.append(sid)
    mover.skipped = len(skipped - moved_ids)
    for sid in moved_ids:
        mover.held.pop(sid, None)


def _start_methods() -> list[str]:
    import multiprocessing as mp

    return mp.get_all_start_methods()


def _plan_processes(concurrency: int) -> list[int]:
    """Threads per process, the parent's first: one process per core, ``concurrency`` in all."""
    procs = max(1, min(concurrency, os.cpu_count() or 1))
    return [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]


def _run_processes(
    mover: _Mover, sqs_factory: Callable[[], Any], spec: dict[str, Any], bar
) -> None:
    """Run the move in the parent's threads (with the injected client, starting at once) plus
    worker processes (forkserver: no inherited threads or sockets), which join in as soon as
    they have started, and fold their results into ``mover``. On KeyboardInterrupt the shared
    stop flag is set, every worker finishes its in-flight batch (send, delete, journal) and
    reports back, then it re-raises."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures import wait as wait_futures

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["opslib.aws.sqs_move", "opslib.aws.sqs", "boto3"])
    stop = _SharedFlag(ctx.Value("b", 0, lock=False))
    shared = {
        "stop": stop,
        "budget_lock": _SharedLock(ctx.Lock(), stop),
        "move_left": ctx.Value("d", mover.move_left.value, lock=False),
        "seen_left": ctx.Value("d", mover.seen_left.value, lock=False),
        "rate": (_SharedLock(ctx.Lock(), stop), ctx.Value("d", time.monotonic(), lock=False)),
        "looked_at": ctx.Value("q", 0, lock=False),  # under budget_lock
    }
    alive_r, alive_w = ctx.Pipe(duplex=False)  # the parent never writes: EOF = parent gone
    shared["alive"] = alive_r
    plan = _plan_processes(spec["concurrency"])
    parts: list[dict[str, Any]] = []
    shown = 0
    mover.attach(shared)
    mover.bar = None  # the main thread updates the bar from the shared count

    def update_bar() -> None:
        nonlocal shown
        if bar is not None:
            now = shared["looked_at"].value
            if now > shown:
                bar.update(now - shown)
                shown = now

    pool = ProcessPoolExecutor(
        len(plan) - 1, mp_context=ctx, initializer=_process_init, initargs=(shared,)
    )
    futures = [pool.submit(_process_run, sqs_factory, {**spec, "threads": n}) for n in plan[1:]]
    own = [
        threading.Thread(target=mover.worker, name=f"redrive-{i}", daemon=True)
        for i in range(plan[0])
    ]
    for t in own:
        t.start()
    interrupted = False
    try:
        pending = set(futures)
        while pending or any(t.is_alive() for t in own):
            if pending:
                done, pending = wait_futures(pending, timeout=0.2)
                if any(f.exception() is not None for f in done):
                    shared["stop"].set()  # a worker process failed or died: stop them all
            else:
                own[0].join(timeout=0.2) if own[0].is_alive() else time.sleep(0.05)
            update_bar()
    except KeyboardInterrupt:
        interrupted = True
        shared["stop"].set()
        for t in own:
            t.join(timeout=60)
        wait_futures(futures, timeout=60)
    finally:
        for f in futures:
            if not f.done():
                mover.errors.append("worker process did not finish in time")
                continue
            exc = f.exception()
            if exc is not None:
                mover.errors.append(f"worker process: {type(exc).__name__}: {str(exc)[:160]}")
            else:
                parts.append(f.result())
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        alive_w.close()
        alive_r.close()
        update_bar()
        _merge(mover, parts)
    if interrupted:
        raise KeyboardInterrupt


class _SigtermAsInterrupt:
    """During a move in the main thread, SIGTERM stops it like Ctrl-C (in-flight batches are
    finished and journaled, held messages released, the journal's end line written)."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def move_messages(
    dlq_url: str,
    destination_url: str = "",
    *,
    sqs,
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
    show_progress: bool = True,
    sqs_factory: Callable[[], Any] | None = None,
) -> MoveResult:
    """Copy strategy: move messages from ``dlq_url`` to ``destination_url`` (or, when empty, to
    each message's source queue via ``routes``: source ARN -> URL) without loss.

    ``max_messages`` caps messages moved (0 = no cap); ``planned_count`` caps messages looked at
    (the plan's count, so the approval covers what moves; 0 = until the DLQ is empty). On
    KeyboardInterrupt (or SIGTERM) the workers finish their current batch, held messages are
    released, the journal is closed, and the interrupt is re-raised.

    ``sqs_factory`` (see ``worker_client_factory``): for a standard queue with concurrency > 1,
    run the workers in processes (one per core, each with its own client built by the factory,
    threads inside), because a boto3 call costs ~0.7 ms of Python CPU and threads in one
    process share one core through the GIL. The budget, rate limit and stop flag are shared;
    each worker keeps its batches' visibility extended and appends its own journal lines.
    Without it, or for FIFO (one worker keeps group order), threads share ``sqs``.
    """
    from opslib.interactive import progress

    total = planned_count or None
    if max_messages and (total is None or max_messages < total) and message_filter is None:
        total = max_messages
    bar = (
        progress(total=total, desc=f"redrive {queue_name_from(dlq_url)}", unit="msg")
        if show_progress
        else None
    )
    journal = _Journal(journal_path)
    mover = _Mover(
        sqs=sqs,
        dlq_url=dlq_url,
        destination_url=destination_url,
        routes=routes,
        fifo=fifo,
        message_filter=message_filter or MessageFilter(""),
        max_messages=max_messages,
        planned_count=planned_count,
        rate_limit_per_second=rate_limit_per_second,
        concurrency=concurrency,
        journal=journal,
        visibility_timeout=visibility_timeout,
        wait_time_seconds=wait_time_seconds,
        bar=bar,
    )
    use_processes = (
        sqs_factory is not None
        and len(_plan_processes(mover.concurrency)) > 1
        and "forkserver" in _start_methods()
    )
    mode = "threads"
    if use_processes:
        plan = _plan_processes(mover.concurrency)
        mode = f"processes={len(plan)} threads={'+'.join(map(str, plan))}"
    journal.write(
        [
            {
                "event": "start",
                "strategy": "copy",
                "dlq": queue_name_from(dlq_url),
                "destination": queue_name_from(destination_url) if destination_url else "",
                "max_messages": max_messages,
                "planned_count": planned_count,
                "concurrency": mover.concurrency,
                "workers": mode,
                "filter": mover.filter.expression,
            }
        ]
    )
    started = time.monotonic()
    interrupted = False
    undo = _hook_events(sqs, mover)
    beat = threading.Thread(target=mover.heartbeat, name="redrive-heartbeat", daemon=True)
    beat.start()
    try:
        with _SigtermAsInterrupt():
            if use_processes:
                spec = {
                    "dlq_url": dlq_url,
                    "destination_url": destination_url,
                    "routes": dict(routes or {}),
                    "filter": mover.filter.expression,
                    "rate": rate_limit_per_second,
                    "concurrency": mover.concurrency,
                    "journal_path": journal.path,
                    "vis": visibility_timeout,
                    "wait": wait_time_seconds,
                    "aws_env": {k: v for k, v in os.environ.items() if k.startswith("AWS_")},
                }
                _run_processes(mover, sqs_factory, spec, bar)
            else:
                _run_threads(mover, mover.concurrency)
    except KeyboardInterrupt:
        interrupted = True
        mover.stop.set()  # also for an interrupt that came before the workers' own handling
    finally:
        mover.done.set()
        beat.join(timeout=30)
        undo()
        mover.release_held()
        elapsed = time.monotonic() - started
        if bar is not None:
            bar.close()
        result = MoveResult(
            strategy="copy",
            dlq=queue_name_from(dlq_url),
            destinations=tuple(sorted(mover.destinations)),
            moved=mover.moved,
            failed=len(mover.failed_ids),
            skipped=mover.skipped,
            possible_duplicates=tuple(mover.dups),
            failed_ids=tuple(mover.failed_ids),
            send_retries=mover.send_retries,
            delete_retries=mover.delete_retries,
            throttled=mover.throttled,
            visibility_extensions=mover.extensions,
            elapsed_seconds=round(elapsed, 3),
            journal=journal.path,
            errors=tuple(mover.errors),
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


#: Bound on a native move task's wait; a task still running then is cancelled (nothing is lost).
NATIVE_MOVE_TIMEOUT_S = 6 * 3600


def native_move(
    dlq_arn: str,
    destination_arn: str = "",
    *,
    sqs,
    rate_limit_per_second: float = 0,
    journal_path: Path | str | None = None,
    expected: int = 0,
    poll_seconds: float = 2.0,
    show_progress: bool = True,
    timeout_s: float = NATIVE_MOVE_TIMEOUT_S,
) -> MoveResult:
    """Native strategy: StartMessageMoveTask, poll ListMessageMoveTasks with progress, and
    CancelMessageMoveTask if the run is interrupted (KeyboardInterrupt is then re-raised) or
    the task is still running after ``timeout_s`` (every wait is bounded; what the task had not
    moved stays in the DLQ, and a re-run continues).

    ``destination_arn`` empty: SQS sends each message back to its original source queue.
    """
    from opslib.interactive import progress

    journal = _Journal(journal_path)
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
    bar = (
        progress(total=expected or None, desc=f"move task {queue_name_from(dlq_arn)}", unit="msg")
        if show_progress
        else None
    )
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
            if bar is not None and moved > shown:
                bar.update(moved - shown)
                shown = moved
            if task.get("Status") in ("COMPLETED", "CANCELLED", "FAILED"):
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
        if bar is not None:
            bar.close()
        result = MoveResult(
            strategy="native",
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


def journal_open_ids(path: Path | str) -> set[str]:
    """Source ids a (possibly interrupted) run may have copied without deleting from the DLQ.

    Reads a redrive journal: ids in a ``sending`` or ``sent`` line with no ``deleted`` line.
    After a killed run, these are the only messages that can be in both queues; audit them
    (or delete them from the DLQ) before concluding a redrive.
    """
    touched: set[str] = set()
    deleted: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut by the kill: its batch is covered by "sending"
                continue
            ev = rec.get("event")
            if ev == "sending":
                touched.update(rec.get("source_ids", []))
            elif ev == "sent":
                touched.add(rec["source_id"])
            elif ev == "deleted":
                deleted.add(rec["source_id"])
    return touched - deleted
