"""Which strategy a redrive uses: native (StartMessageMoveTask) only when nothing the operator
asked for needs the copy and the endpoint supports message move tasks; else copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from opslib.aws.sqs.move.model import Strategy
from opslib.aws.sqs.queues import QueueRef
from opslib.aws.sqs.target import RedriveTarget
from opslib.clients import aws_error_code
from opslib.core.errors import BadInputError, PreflightError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["NativeSupport", "StrategyChoice", "choose_strategy", "native_supported"]


@dataclass(frozen=True)
class NativeSupport:
    """Whether the endpoint runs message move tasks, and if not, why."""

    supported: bool
    reason: str = ""  # "" when supported


@dataclass(frozen=True)
class StrategyChoice:
    """The strategy a plan uses and why."""

    strategy: Strategy
    reason: str


class _ProbeRefused(Exception):
    """Internal: the endpoint answered the probe with an error; carries the code."""


def native_supported(dlq: QueueRef, *, sqs: SQSClient) -> NativeSupport:
    """Whether the endpoint supports message move tasks (ListMessageMoveTasks answers).

    Emulators without it answer 4xx/5xx; botocore would retry a 5xx several times with backoff,
    so the probe stops after the first attempt (a one-off handler on this call only). A task
    already RUNNING on the DLQ is refused (PreflightError): two moves must not race.
    """

    def no_retry(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
        if caught_exception is not None:
            raise _ProbeRefused(type(caught_exception).__name__)
        if response is not None and response[0].status_code >= 400:
            raise _ProbeRefused(str(response[0].status_code))
        return None

    event = "needs-retry.sqs.ListMessageMoveTasks"
    sqs.meta.events.register_first(event, no_retry, unique_id="opslib-native-probe")
    try:
        resp = sqs.list_message_move_tasks(SourceArn=dlq.arn, MaxResults=10)
    except _ProbeRefused as exc:
        return NativeSupport(
            False, f"the endpoint does not support message move tasks (HTTP/{exc})"
        )
    except botocore.exceptions.ClientError as exc:
        code = aws_error_code(exc) or type(exc).__name__
        return NativeSupport(False, f"ListMessageMoveTasks refused: {code}")
    finally:
        sqs.meta.events.unregister(event, unique_id="opslib-native-probe")
    running = [t for t in resp.get("Results", []) if t.get("Status") == "RUNNING"]
    if running:
        raise PreflightError(
            f"A message move task is already RUNNING on {dlq.name} (handle "
            f"{running[0].get('TaskHandle', '?')[:24]}...). Wait for it or cancel it "
            "(aws sqs cancel-message-move-task) before starting another redrive."
        )
    return NativeSupport(True)


def choose_strategy(
    target: RedriveTarget,
    *,
    sqs: SQSClient,
    strategy: str | Strategy = Strategy.AUTO,
    max_messages: int = 0,
) -> StrategyChoice:
    """Resolve ``auto`` to ``native`` or ``copy``, with the reason.

    Native (StartMessageMoveTask) is server-side and fastest but moves everything, unfiltered,
    back to the source queues, and keeps no per-message journal; so it is chosen only when
    there is no filter, no max_messages, the destination is the source queue, the queue is
    standard, and the endpoint supports it.
    """
    requested = Strategy(strategy)
    blockers = []
    if target.message_filter.expression:
        blockers.append("a filter is set")
    if max_messages:
        blockers.append("max_messages is set")
    if not target.destination_is_source:
        blockers.append("the destination is not the source queue")
    if target.dlq.fifo:
        blockers.append("FIFO queues are moved by copy to keep group order")
    if requested is Strategy.COPY:
        return StrategyChoice(Strategy.COPY, "requested")
    if blockers:
        if requested is Strategy.NATIVE:
            raise BadInputError(
                "strategy='native' cannot be used here: "
                + "; ".join(blockers)
                + ". Use strategy='auto' or 'copy'."
            )
        return StrategyChoice(Strategy.COPY, "; ".join(blockers))
    support = native_supported(target.dlq, sqs=sqs)
    if support.supported:
        return StrategyChoice(
            Strategy.NATIVE, "no filter, destination is the source queue, endpoint supports it"
        )
    if requested is Strategy.NATIVE:
        raise BadInputError(
            f"strategy='native' is not available: {support.reason}. Use strategy='copy'."
        )
    return StrategyChoice(Strategy.COPY, support.reason)
