"""One batch on the wire: the SendMessageBatch entries that keep every attribute, and the send
and delete calls with retries of their partial failures.

Entries keep MessageAttributes, AWSTraceHeader and, for FIFO, MessageGroupId and
MessageDeduplicationId. A delete is only ever asked for entries whose send succeeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opslib.aws.sqs.move.state import Tally
from opslib.aws.sqs.move.throttle import (
    MAX_ATTEMPTS,
    AttemptWatch,
    backoff,
    call_with_retries,
    error_code,
    is_throttle_code,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["BatchIO", "send_entry"]


def send_entry(i: int, msg: dict[str, Any], *, fifo: bool) -> dict[str, Any]:
    """The SendMessageBatch entry that re-sends received message ``msg`` as it was."""
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
    if fifo:
        entry["MessageGroupId"] = attrs.get("MessageGroupId", "default")
        if attrs.get("MessageDeduplicationId"):
            entry["MessageDeduplicationId"] = attrs["MessageDeduplicationId"]
    return entry


def _http_status(exc: BaseException) -> int:
    meta = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode", 0) or 0)


class BatchIO:
    """The calls of one worker: receive, send, delete, each retried and counted in ``tally``."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        dlq_url: str,
        fifo: bool,
        stop: Any,
        tally: Tally,
        watch: AttemptWatch,
    ) -> None:
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.fifo = fifo
        self.stop = stop
        self.tally = tally
        self.watch = watch  # the one registered on the client (throttle.hook_events)

    def call(self, fn: Any, **kwargs: Any) -> Any:
        return call_with_retries(
            fn, stop=self.stop, watch=self.watch, on_throttled=self.tally.count_throttled, **kwargs
        )

    def _entry_failures(self, resp: dict[str, Any], failed: dict[str, str]) -> list[str]:
        """Record sender faults in ``failed``; return the ids worth retrying (counting throttles)."""
        retry = []
        for f in resp.get("Failed", []):
            if f.get("SenderFault"):
                failed[f["Id"]] = f"{f.get('Code', '')}: {f.get('Message', '')}"
            else:
                retry.append(f["Id"])
                if is_throttle_code(f.get("Code", "")):
                    self.tally.count_throttled(1)
        return retry

    def send(
        self, dest: str, msgs: list[dict[str, Any]]
    ) -> tuple[dict[str, str], dict[str, str], bool]:
        """SendMessageBatch with retries of failed entries; -> (sent {i: new id}, failed {i: why},
        ambiguous: whether some attempt may have been applied without us seeing it)."""
        entries = {str(i): send_entry(i, m, fifo=self.fifo) for i, m in enumerate(msgs)}
        pending = list(entries)
        sent: dict[str, str] = {}
        failed: dict[str, str] = {}
        ambiguous = False
        for attempt in range(MAX_ATTEMPTS):
            self.watch.ambiguous = False
            try:
                resp = self.call(
                    self.sqs.send_message_batch,
                    QueueUrl=dest,
                    Entries=[entries[i] for i in pending],
                )
            except InterruptedError:  # stopped between retries: these stay in the DLQ
                ambiguous = ambiguous or self.watch.ambiguous
                for i in pending:
                    failed[i] = "interrupted"
                return sent, failed, ambiguous
            except Exception as exc:  # noqa: BLE001 - recorded and shown
                landed = (
                    not hasattr(exc, "response") or _http_status(exc) >= 500
                )  # may have applied
                ambiguous = ambiguous or self.watch.ambiguous or landed
                for i in pending:
                    failed[i] = f"{error_code(exc)}: {str(exc)[:120]}"
                return sent, failed, ambiguous
            ambiguous = ambiguous or self.watch.ambiguous
            for s in resp.get("Successful", []):
                sent[s["Id"]] = s["MessageId"]
            retry = self._entry_failures(resp, failed)
            if not retry:
                return sent, failed, ambiguous
            with self.tally.lock:
                self.tally.send_retries += len(retry)
            pending = retry
            if self.stop.wait(backoff(attempt)):
                for i in pending:
                    failed[i] = "interrupted"
                return sent, failed, ambiguous
        for i in pending:
            failed[i] = "retries exhausted"
        return sent, failed, ambiguous

    def delete(self, handles: dict[str, str]) -> dict[str, str]:
        """DeleteMessageBatch with retries; -> {entry id: why} for deletes that never succeeded."""
        pending = list(handles)
        failed: dict[str, str] = {}
        for attempt in range(MAX_ATTEMPTS):
            try:
                resp = self.call(
                    self.sqs.delete_message_batch,
                    QueueUrl=self.dlq_url,
                    Entries=[{"Id": i, "ReceiptHandle": handles[i]} for i in pending],
                )
            except InterruptedError:  # sent but not deleted: reported as possible duplicates
                return {**failed, **{i: "interrupted" for i in pending}}
            except Exception as exc:  # noqa: BLE001 - recorded and shown
                return {**failed, **{i: f"{error_code(exc)}: {str(exc)[:120]}" for i in pending}}
            retry = self._entry_failures(resp, failed)
            if not retry:
                return failed
            with self.tally.lock:
                self.tally.delete_retries += len(retry)
            pending = retry
            if self.stop.wait(backoff(attempt)):
                for i in pending:
                    failed[i] = "interrupted"
                return failed
        for i in pending:
            failed[i] = "retries exhausted"
        return failed
