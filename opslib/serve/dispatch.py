"""Run accepted alerts in the background, never more than ``max_concurrent`` at once.

``max_concurrent`` worker threads each take the oldest queued row from the store, hand it to
the executor, and write the outcome back. Workers are daemon threads: when the receiver stops,
a run cut short leaves its row ``running``, and the next start re-queues it
(:meth:`AlertStore.recover`), so an accepted alert runs even across a crash. A wake-up event
from the intake makes a new alert start at once rather than at the next poll.
"""

from __future__ import annotations

import logging
import threading

from opslib.serve import notify
from opslib.serve.executors import Executor, RunOutcome
from opslib.serve.priority import lower_priority
from opslib.serve.store import AlertStore, Queued

log = logging.getLogger("opslib.serve")


class Dispatcher:
    """The bounded pool between the store and the executor."""

    def __init__(
        self,
        store: AlertStore,
        executor: Executor,
        *,
        max_concurrent: int = 2,
        poll_s: float = 1.0,
        notify_url: str | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.max_concurrent = max(0, max_concurrent)
        self.poll_s = poll_s
        self.notify_url = notify_url
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._active = 0
        self._active_lock = threading.Lock()
        self.started = 0

    @property
    def active(self) -> int:
        with self._active_lock:
            return self._active

    def start(self) -> int:
        """Re-queue what a previous process left running, then start the workers."""
        recovered = self.store.recover()
        for i in range(self.max_concurrent):
            t = threading.Thread(target=self._loop, name=f"opslib-serve-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        self.wake()
        return recovered

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        lower_priority()
        while not self._stop.is_set():
            queued = self.store.claim(self.executor.name)
            if queued is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            with self._active_lock:
                self._active += 1
                self.started += 1
            try:
                outcome = self._run(queued)
            finally:
                with self._active_lock:
                    self._active -= 1
            self.store.finish(
                queued.id,
                status=outcome.status,
                exit_code=outcome.exit_code,
                bundle=outcome.bundle,
                error=outcome.error,
            )
            self._notify(queued, outcome)

    def _run(self, queued: Queued) -> RunOutcome:
        try:
            return self.executor.run(queued, self.store)
        except Exception as exc:  # noqa: BLE001  the row must end with the error, not stay running
            log.exception("run of alert %s failed in the executor", queued.id)
            return RunOutcome("infrastructure-error", 4, error=f"{type(exc).__name__}: {exc}")

    def _notify(self, queued: Queued, outcome: RunOutcome) -> None:
        text = notify.message(
            runbook=queued.runbook,
            alert=str(queued.trigger.get("name", "")),
            status=outcome.status,
            exit_code=outcome.exit_code,
            verdict=outcome.verdict,
            bundle=outcome.bundle,
        )
        notify.notify(text, url=self.notify_url)
