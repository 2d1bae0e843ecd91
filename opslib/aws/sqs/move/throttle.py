"""Throttling and retries of a move: which errors mean "slow down", the backoff, the rate
limit shared by every worker, and the per-attempt watch that counts throttling and sees sends
that may have landed although they failed."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from opslib.clients import AwsErrorKind, aws_code_kind, aws_error_code

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_ATTEMPTS",
    "RETRYABLE_CODES",
    "AttemptWatch",
    "RateLimiter",
    "backoff",
    "call_with_retries",
    "error_code",
    "hook_events",
    "is_retryable",
    "is_throttle_code",
]

#: Error codes worth another try besides throttling (which :func:`opslib.clients.aws_code_kind`
#: classifies, SQS's own KMS throttles included).
RETRYABLE_CODES = {
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "500",
    "502",
    "503",
    "504",
}
MAX_ATTEMPTS = 8  # per batch, on top of botocore's own retries
BACKOFF_BASE = 0.05
BACKOFF_CAP = 5.0


def error_code(exc: BaseException) -> str:
    """The AWS error code of ``exc`` for messages, or its type name when it has none."""
    return aws_error_code(exc) or type(exc).__name__


def is_throttle_code(code: str) -> bool:
    """Whether an error code (of a batch entry or a response) means "slow down"."""
    return aws_code_kind(code) is AwsErrorKind.THROTTLED


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed call is worth another attempt: throttling or a server-side error."""
    code = aws_error_code(exc)
    return aws_code_kind(code) is AwsErrorKind.THROTTLED or code in RETRYABLE_CODES


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, jittered."""
    return min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)) * (0.5 + random.random() / 2)  # noqa: S311


class RateLimiter:
    """Spaces receives so the whole move stays under ``rate`` messages per second.

    ``shared`` (a lock and a ``multiprocessing.Value``) makes one limit span the worker
    processes of a move; ``time.monotonic`` is the same clock in every process on one host.
    """

    def __init__(self, rate: float, shared: tuple[Any, Any] | None = None) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        if shared is None:
            shared = (threading.Lock(), SimpleNamespace(value=time.monotonic()))
        self._lock, self._next = shared

    def acquire(self, n: int, stop: Any) -> None:
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


class AttemptWatch(threading.local):
    """What botocore saw on each HTTP attempt of the current call, per thread.

    :meth:`on_response` is registered on the client (:func:`hook_events`) and runs in the
    calling thread for every attempt of a send, delete or receive.
    """

    def __init__(self) -> None:
        self.throttled = 0
        self.ambiguous = False  # a send attempt failed in a way that may have been applied

    def on_response(
        self,
        response_dict: Any = None,
        parsed_response: Any = None,
        exception: Any = None,
        event_name: str = "",
        **_: Any,
    ) -> None:
        is_send = event_name.endswith("SendMessageBatch")
        if exception is not None:  # connection reset / timeout: the request may have landed
            if is_send:
                self.ambiguous = True
            return
        status = (response_dict or {}).get("status_code", 200)
        code = ((parsed_response or {}).get("Error") or {}).get("Code", "")
        if is_throttle_code(code) or status == 429:
            self.throttled += 1
        elif status >= 500 and is_send:
            self.ambiguous = True


def hook_events(sqs: SQSClient, watch: AttemptWatch) -> Callable[[], None]:
    """Register ``watch`` on every attempt of ``sqs``'s moving calls; returns the undo."""
    events = [
        f"response-received.sqs.{op}"
        for op in ("SendMessageBatch", "DeleteMessageBatch", "ReceiveMessage")
    ]
    uid = f"opslib-move-{id(watch)}"
    for ev in events:
        sqs.meta.events.register(ev, watch.on_response, unique_id=uid + ev)

    def undo() -> None:
        for ev in events:
            sqs.meta.events.unregister(ev, unique_id=uid + ev)

    return undo


def call_with_retries(
    fn: Callable[..., Any],
    *,
    stop: Any,
    watch: AttemptWatch,
    on_throttled: Callable[[int], None],
    **kwargs: Any,
) -> Any:
    """One API call with our own retry on throttling/5xx after botocore's retries gave up.

    ``on_throttled(n)`` gets the throttled attempts of each try; a stop during the backoff
    raises InterruptedError.
    """
    for attempt in range(MAX_ATTEMPTS):
        watch.throttled = 0
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if not is_retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
        except (ConnectionError, HTTPClientError):
            if attempt == MAX_ATTEMPTS - 1:
                raise
        finally:
            on_throttled(watch.throttled)
        if stop.wait(backoff(attempt)):
            raise InterruptedError("move stopped")
    raise AssertionError("unreachable")
