"""The state of one copy move: what is shared by every worker (stop flag, message budget, rate
limit, progress count) and what each process counts (:class:`Tally`), merged at the end."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

__all__ = ["Budget", "Shared", "Tally"]


@dataclass
class Shared:
    """What must be one for the whole move, whatever runs it.

    Threads of one process: ``threading`` objects (:meth:`local`). Worker processes:
    ``multiprocessing`` objects made by the parent (:func:`opslib.aws.sqs.move.workers.shared_for_processes`).
    ``move_left``/``seen_left``/``looked_at`` have a ``.value``.
    """

    stop: Any  # is_set(), set(), wait(timeout)
    budget_lock: Any  # a context manager
    move_left: Any  # blast radius: messages that may still move
    seen_left: Any  # the plan's count: messages that may still be looked at
    rate: tuple[Any, Any] | None = None  # (lock, next slot) for a RateLimiter across processes
    looked_at: Any = None  # processes: progress counted for the parent's bar
    alive: Any = None  # processes: the read end of a pipe only the parent writes to

    @classmethod
    def local(cls, *, max_messages: int, planned_count: int) -> Shared:
        inf = float("inf")
        return cls(
            stop=threading.Event(),
            budget_lock=threading.Lock(),
            move_left=SimpleNamespace(value=max_messages if max_messages else inf),
            seen_left=SimpleNamespace(value=planned_count if planned_count else inf),
        )


class Budget:
    """The move's message budget: at most ``max_messages`` moved, ``planned_count`` looked at."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    def reserve(self) -> int:
        """Up to 10 messages for the next receive; 0 when the budget is spent (or stopping)."""
        s = self._shared
        try:
            with s.budget_lock:
                n = int(min(10, s.move_left.value, s.seen_left.value))
                if n <= 0:
                    return 0
                s.move_left.value -= n
                s.seen_left.value -= n
                return n
        except InterruptedError:  # stopping, and the budget's lock is lost with its holder
            return 0

    def give_back(self, moves: int, seen: int, looked_at: int = 0) -> None:
        """Return unused budget; also counts progress for the parent's bar (processes)."""
        s = self._shared
        if not (moves or seen or (looked_at and s.looked_at is not None)):
            return
        try:
            with s.budget_lock:
                s.move_left.value += moves
                s.seen_left.value += seen
                if s.looked_at is not None:
                    s.looked_at.value += looked_at
        except InterruptedError:  # stopping: the budget no longer matters
            pass


@dataclass
class Tally:
    """What one process's workers did; :meth:`merge` folds the processes' tallies into one."""

    moved: int = 0
    moved_ids: list[str] = field(default_factory=list)  # source ids deleted after their send
    skipped: int = 0
    skipped_ids: list[str] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    dups: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # id -> latest receipt (skipped/failed)
    send_retries: int = 0
    delete_retries: int = 0
    throttled: int = 0
    extensions: int = 0
    errors: list[str] = field(default_factory=list)
    destinations: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def count_throttled(self, n: int) -> None:
        if n:
            with self.lock:
                self.throttled += n

    def part(self) -> dict[str, Any]:
        """This tally as plain data (what a worker process sends back to the parent)."""
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

    @classmethod
    def merge(cls, parts: list[dict[str, Any]]) -> Tally:
        """One tally from every process's part. A message held (skipped or failed) by one
        process may be received again by another after its visibility ran out, so ids are
        de-duplicated, and one moved in the end is neither failed nor held."""
        out = cls()
        moved_ids: set[str] = set()
        skipped: set[str] = set()
        for part in parts:
            out.moved += part["moved"]
            moved_ids.update(part["moved_ids"])
            skipped.update(part["skipped_ids"])
            out.send_retries += part["send_retries"]
            out.delete_retries += part["delete_retries"]
            out.throttled += part["throttled"]
            out.extensions += part["extensions"]
            out.errors += part["errors"]
            out.destinations.update(part["destinations"])
            out.held.update(part["held"])
        for part in parts:
            for sid in part["failed_ids"]:
                if sid not in moved_ids and sid not in out.failed_ids:
                    out.failed_ids.append(sid)
            for sid in part["dups"]:
                if sid not in out.dups:
                    out.dups.append(sid)
        out.skipped = len(skipped - moved_ids)
        for sid in moved_ids:
            out.held.pop(sid, None)
        return out
