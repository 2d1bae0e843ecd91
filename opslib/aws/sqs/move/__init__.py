"""The redrive move: the copy strategy (receive, batch send, batch delete) and the native
strategy (StartMessageMoveTask), each writing a JSON-lines journal as it goes, and their
executors registered for the plan's actions (importing this package registers them).

- :mod:`.model`: :class:`Strategy`, :class:`MoveSettings` (what the plan decided), :class:`MoveResult`;
- :mod:`.copy` (with :mod:`.mover`, :mod:`.batch`, :mod:`.state`): the copy strategy;
- :mod:`.workers`: threads, or worker processes with the parent's client rebuilt;
- :mod:`.throttle`: retries, backoff, the shared rate limit;
- :mod:`.journal`: the audit trail and :func:`journal_open_ids`;
- :mod:`.native`: the native strategy;
- :mod:`.handlers`: the registered executors.
"""

from __future__ import annotations

from opslib.aws.sqs.move.copy import copy_move, move_messages
from opslib.aws.sqs.move.handlers import ACTIONS
from opslib.aws.sqs.move.journal import journal_open_ids
from opslib.aws.sqs.move.model import (
    COPY_ACTION,
    MOVER_CLIENT_CONFIG,
    NATIVE_ACTION,
    WORKER_CLIENT_CONFIG,
    MoveResult,
    MoveSettings,
    Strategy,
)
from opslib.aws.sqs.move.mover import CopyTuning
from opslib.aws.sqs.move.native import NATIVE_MOVE_TIMEOUT_S, native_move
from opslib.aws.sqs.move.workers import worker_factory

__all__ = [
    "ACTIONS",
    "COPY_ACTION",
    "MOVER_CLIENT_CONFIG",
    "NATIVE_ACTION",
    "NATIVE_MOVE_TIMEOUT_S",
    "WORKER_CLIENT_CONFIG",
    "CopyTuning",
    "MoveResult",
    "MoveSettings",
    "Strategy",
    "copy_move",
    "journal_open_ids",
    "move_messages",
    "native_move",
    "worker_factory",
]
