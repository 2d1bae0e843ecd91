"""What passes between the redrive plan and the mover: the strategy, the action names, the
client settings of a move, :class:`MoveSettings` (what the plan decided, typed) and
:class:`MoveResult` (what the move did)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

__all__ = [
    "COPY_ACTION",
    "MOVER_CLIENT_CONFIG",
    "NATIVE_ACTION",
    "REQUESTABLE_STRATEGIES",
    "WORKER_CLIENT_CONFIG",
    "MoveResult",
    "MoveSettings",
    "Strategy",
]


class Strategy(StrEnum):
    """How a redrive moves messages."""

    AUTO = "auto"  # requested only: native when it can, else copy
    COPY = "copy"  # receive, batch send, batch delete, journalled per message
    NATIVE = "native"  # StartMessageMoveTask: server-side, back to the source queues
    NONE = "none"  # an empty plan: nothing to move


#: The strategies an operator may ask for (the ``strategy`` parameter).
REQUESTABLE_STRATEGIES = (Strategy.AUTO, Strategy.COPY, Strategy.NATIVE)

#: The planned actions (``Change.action``), one per strategy; their handlers are registered by
#: :mod:`opslib.aws.sqs.move.handlers`.
COPY_ACTION = "sqs:ReceiveMessage+SendMessageBatch+DeleteMessageBatch"
NATIVE_ACTION = "sqs:StartMessageMoveTask"

#: Client settings for a redrive (pass to ``clients.aws_client("sqs", **MOVER_CLIENT_CONFIG)``):
#: a move is thousands of small calls, so client-side parameter validation (the server validates
#: anyway) and the adaptive retry mode's client-side rate limiter cost ~20% of the throughput;
#: the mover does its own backoff and counts throttling, and ``rate_limit_per_second`` is the
#: way to be gentle with a shared queue. The pool is sized for the largest ``concurrency``.
#: A fixed User-Agent skips botocore's per-request rebuild of it (~10% of a call's Python CPU).
MOVER_CLIENT_CONFIG: dict[str, Any] = {
    "parameter_validation": False,
    "user_agent": "opslib-redrive",
    "retries": {"mode": "standard", "max_attempts": 5},
    "max_pool_connections": 34,
}

#: The same for the clients the worker processes rebuild from the parent's
#: (:func:`opslib.clients.client_factory`); each process runs fewer threads.
WORKER_CLIENT_CONFIG: dict[str, Any] = {**MOVER_CLIENT_CONFIG, "max_pool_connections": 16}


@dataclass(frozen=True)
class MoveSettings:
    """Everything the plan decided about one move; the planned change's params, typed.

    :meth:`to_params` is exactly what the plan puts into ``Change.params`` (so the plan hash,
    and with it the approval, covers every field); :meth:`from_params` reads it back in the
    executor. The mover takes nothing else from the plan.
    """

    dlq_url: str
    dlq_arn: str = ""
    destination_url: str = ""  # "": each message goes back to its source queue (``routes``)
    destination_arn: str = ""
    routes: Mapping[str, str] = field(default_factory=dict)  # source queue ARN -> URL
    fifo: bool = False
    filter_expression: str = ""
    max_messages: int = 0  # blast radius: messages moved (0 = no cap)
    planned_count: int = 0  # messages looked at: the plan's count (0 = until the DLQ is empty)
    rate_limit_per_second: float = 0
    concurrency: int = 1
    strategy: Strategy = Strategy.COPY
    strategy_reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        object.__setattr__(self, "routes", dict(self.routes or {}))

    @property
    def workers(self) -> int:
        """Worker threads in all: one for FIFO (keeps the order within each group)."""
        return 1 if self.fifo else max(1, self.concurrency)

    def to_params(self) -> dict[str, Any]:
        """The planned change's params (JSON-able; ``strategy`` as its string)."""
        params = {f.name: getattr(self, f.name) for f in fields(self)}
        params["routes"] = dict(self.routes)
        params["strategy"] = str(self.strategy.value)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MoveSettings:
        """The settings of a planned change (unknown keys are an error: a plan from elsewhere)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"not redrive move params: {', '.join(unknown)}")
        return cls(**dict(params))


@dataclass(frozen=True)
class MoveResult:
    """What a move did, counted by the mover itself (the journal has the per-message detail)."""

    strategy: Strategy
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
        d["strategy"] = str(self.strategy.value)
        d["rate"] = round(self.rate, 1)
        return d

    def to_frame(self):
        import pandas as pd

        d = self.to_dict()
        d["possible_duplicates"] = len(self.possible_duplicates)
        d["failed_ids"] = len(self.failed_ids)
        d["errors"] = len(self.errors)
        return pd.DataFrame([d])
