"""The redrive move itself: the copy strategy (receive, batch send, batch delete) and the native
strategy (StartMessageMoveTask), each writing a JSON-lines journal as it goes.

Copy, per batch of up to 10: ReceiveMessage with all message and system attributes ->
SendMessageBatch preserving MessageAttributes, AWSTraceHeader and, for FIFO, MessageGroupId and
MessageDeduplicationId -> DeleteMessageBatch of exactly the entries whose send succeeded. Partial
failures and throttling are retried with backoff and counted; a batch that gets slow has its
visibility extended so nobody else receives it mid-move. Standard queues run ``concurrency``
threads sharing one boto3 client (clients are thread-safe; one connection pool, reused
connections); FIFO runs one worker so the order within each message group is kept.

What makes it safe to interrupt and re-run: a message is deleted from the DLQ only after its
send succeeded, so at any instant every message is in the DLQ, the destination, or both; "both"
is exactly the set of *possible duplicates* (send succeeded or may have, delete not done), and
the journal says which: a ``sending`` or ``sent`` line without a ``deleted`` line (``sending`` is
written before each SendMessageBatch, ``sent`` with the new ids after it, ``deleted`` after the
DeleteMessageBatch). Non-matching (skipped) and
failed messages are held invisible during the run so they are looked at once, then released.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
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
    """Append-only JSON lines, one write + flush per batch, so a killed run leaves a usable log."""

    def __init__(self, path: Path | str | None) -> None:
        self.path = str(path) if path else ""
        self._lock = threading.Lock()
        self._f = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 - closed in close()

    def write(self, records: list[dict[str, Any]]) -> None:
        if self._f is None or not records:
            return
        ts = round(time.time(), 3)
        text = "".join(json.dumps({"ts": ts, **r}, separators=(",", ":")) + "\n" for r in records)
        with self._lock:
            self._f.write(text)
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


class _RateLimiter:
    """Spaces receives so the whole move stays under ``rate`` messages per second."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, n: int, stop: threading.Event) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + n * self.interval
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
    """State shared by the worker threads of one copy move."""

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
        self.limiter = _RateLimiter(rate_limit_per_second)
        self.concurrency = 1 if fifo else max(1, concurrency)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        inf = float("inf")
        self.move_left = max_messages if max_messages else inf  # blast radius: messages moved
        self.seen_left = (
            planned_count if planned_count else inf
        )  # the plan's count: messages looked at
        self.moved = 0
        self.skipped = 0
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
        with self.lock:
            n = int(min(10, self.move_left, self.seen_left))
            if n <= 0:
                return 0
            self.move_left -= n
            self.seen_left -= n
            return n

    def give_back(self, moves: int, seen: int) -> None:
        with self.lock:
            self.move_left += moves
            self.seen_left += seen

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
        dups_now: list[str] = []
        for dest, group in by_dest.items():
            dname = queue_name_from(dest)
            # intent first: a kill between this line and the "sent" lines leaves an audit trail
            records.append(
                {
                    "event": "sending",
                    "destination": dname,
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
            self.skipped += len(skipped)
            for m in skipped:
                self.held[m["MessageId"]] = m["ReceiptHandle"]
            for m, _ in failed_now:
                self.failed_ids.append(m["MessageId"])
                self.held[m["MessageId"]] = m["ReceiptHandle"]
            for d in dups_now:
                if d not in self.dups:
                    self.dups.append(d)
            self.move_left += reserved - moved_now
            self.seen_left += reserved - len(new)
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
) -> MoveResult:
    """Copy strategy: move messages from ``dlq_url`` to ``destination_url`` (or, when empty, to
    each message's source queue via ``routes``: source ARN -> URL) without loss.

    ``max_messages`` caps messages moved (0 = no cap); ``planned_count`` caps messages looked at
    (the plan's count, so the approval covers what moves; 0 = until the DLQ is empty). On
    KeyboardInterrupt the workers finish their current batch, held messages are released, the
    journal is closed, and the interrupt is re-raised.
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
                "filter": mover.filter.expression,
            }
        ]
    )
    events = [
        f"response-received.sqs.{op}"
        for op in ("SendMessageBatch", "DeleteMessageBatch", "ReceiveMessage")
    ]
    uid = f"opslib-move-{id(mover)}"
    for ev in events:
        sqs.meta.events.register(ev, mover.on_response, unique_id=uid + ev)
    started = time.monotonic()
    interrupted = False
    threads = [
        threading.Thread(target=mover.worker, name=f"redrive-{i}", daemon=True)
        for i in range(mover.concurrency)
    ]
    beat = threading.Thread(target=mover.heartbeat, name="redrive-heartbeat", daemon=True)
    beat.start()
    try:
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
    except KeyboardInterrupt:
        interrupted = True
        mover.stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        mover.done.set()
        beat.join(timeout=30)
        for ev in events:
            sqs.meta.events.unregister(ev, unique_id=uid + ev)
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
) -> MoveResult:
    """Native strategy: StartMessageMoveTask, poll ListMessageMoveTasks with progress, and
    CancelMessageMoveTask if the run is interrupted (KeyboardInterrupt is then re-raised).

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
