"""Where the copy's workers run: threads of one process, or one process per core.

A boto3 call costs ~0.6-0.7 ms of Python CPU (signing, serializing, http.client, parsing), and
threads in one process share one core through the GIL, so on a standard queue the
``concurrency`` workers are spread over one process per core: the parent's threads (the
injected client; they start at once) plus forkserver worker processes, sharing the stop flag,
the message budget, the rate limit and the progress count. Each worker process rebuilds the
parent's client from a picklable :class:`opslib.clients.AwsClientFactory` (same credentials,
region and endpoint: :func:`worker_factory`), appends its own journal lines (O_APPEND, one write
per batch, so the "sending" line is on disk before its send whatever dies), keeps its own
batches' visibility extended, and reports its counts and ids back; the parent merges them and
releases held messages. Ctrl-C/SIGTERM: the parent sets the stop flag, every worker finishes
its in-flight batch; a killed parent is seen by the workers as EOF on a pipe, and they stop
the same way. No process-shared lock can be left held by a killed process for ever: the stop
flag is lock-free and the shared locks give up once the move is stopping.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opslib.aws.sqs.move.journal import Journal
from opslib.aws.sqs.move.model import WORKER_CLIENT_CONFIG, MoveSettings
from opslib.aws.sqs.move.mover import CopyTuning, Mover
from opslib.aws.sqs.move.state import Shared, Tally
from opslib.clients import AwsClientFactory, client_factory

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "SigtermAsInterrupt",
    "WorkerSpec",
    "plan_processes",
    "processes_available",
    "run_processes",
    "run_threads",
    "worker_factory",
]

ClientFactory = Callable[[], Any]


def worker_factory(sqs: SQSClient, **config_overrides: Any) -> AwsClientFactory:
    """The picklable recipe of the worker processes' clients: ``sqs`` rebuilt (its credentials,
    region and endpoint, never the default chain's) with the worker client settings."""
    return client_factory(sqs, **{**WORKER_CLIENT_CONFIG, **config_overrides})


class SharedFlag:
    """The stop flag across processes, without a lock: a ``multiprocessing.Event`` is a
    Condition over a shared lock, and a process SIGKILLed while holding it leaves every other
    one blocked for ever. One byte, written and read whole, needs no lock."""

    def __init__(self, raw: Any) -> None:
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


class SharedLock:
    """A process-shared lock that gives up (InterruptedError) once the move is stopping: its
    holder may have been killed, and then it is never released."""

    def __init__(self, lock: Any, stop: SharedFlag) -> None:
        self._lock, self._stop = lock, stop

    def __enter__(self) -> None:
        while not self._lock.acquire(timeout=0.5):
            if self._stop.is_set():
                raise InterruptedError("move stopped")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs besides the shared state and its client factory."""

    settings: MoveSettings
    tuning: CopyTuning
    journal_path: str
    threads: int
    aws_env: tuple[tuple[str, str], ...]  # the caller's AWS_* variables at the start


def processes_available() -> bool:
    """Worker processes need the forkserver start method (no inherited threads or sockets)."""
    return "forkserver" in mp.get_all_start_methods()


def plan_processes(concurrency: int) -> list[int]:
    """Threads per process, the parent's first: one process per core, ``concurrency`` in all."""
    procs = max(1, min(concurrency, os.cpu_count() or 1))
    return [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]


def run_threads(mover: Mover, n: int) -> None:
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


# -- in a worker process ----------------------------------------------------------------------
_SHARED: list[Shared] = []  # in a worker process: the move's shared state (from the parent)


def _process_init(shared: Shared) -> None:
    """Worker process start: Ctrl-C goes to the whole process group, but only the parent acts
    on it (it sets the shared stop flag, and the workers finish their in-flight batch)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _SHARED[:] = [shared]


def _process_run(sqs_factory: ClientFactory, spec: WorkerSpec) -> dict[str, Any]:
    """One worker process: its own client and threads over the shared budget; writes its own
    journal lines (O_APPEND); returns its counts and the ids the parent needs."""
    # The forkserver's environment is the one it started with: take the caller's AWS settings
    # of now (endpoint, profile, region), for anything the factory leaves to the environment.
    aws_env = dict(spec.aws_env)
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        if key not in aws_env:
            del os.environ[key]
    os.environ.update(aws_env)
    shared = _SHARED[0]
    sqs = sqs_factory()
    journal = Journal(spec.journal_path)
    mover = Mover(spec.settings, sqs=sqs, journal=journal, shared=shared, tuning=spec.tuning)
    undo = mover.hook()
    orphaned = threading.Event()

    def watch_parent() -> None:  # parent gone (killed): stop after the in-flight batches
        # Only the parent holds the pipe's write end, so its death reads as EOF here (the
        # forkserver lives on while any child does: our parent pid would never change).
        while not mover.done.wait(0.25):
            if shared.alive.poll(0):
                orphaned.set()
                mover.stop.set()
                return

    aux = [
        threading.Thread(target=mover.keeper.run, daemon=True),
        threading.Thread(target=watch_parent, daemon=True),
    ]
    for t in aux:
        t.start()
    try:
        run_threads(mover, spec.threads)
    finally:
        mover.done.set()
        for t in aux:
            t.join(timeout=30)
        undo()
        journal.close()
    if orphaned.is_set():  # nobody to report to; the journal has it all. Do not linger.
        os._exit(0)
    return mover.tally.part()


# -- in the parent ----------------------------------------------------------------------------


def _shared_for_processes(ctx: Any, local: Shared) -> Shared:
    stop = SharedFlag(ctx.Value("b", 0, lock=False))
    return Shared(
        stop=stop,
        budget_lock=SharedLock(ctx.Lock(), stop),
        move_left=ctx.Value("d", local.move_left.value, lock=False),
        seen_left=ctx.Value("d", local.seen_left.value, lock=False),
        rate=(SharedLock(ctx.Lock(), stop), ctx.Value("d", time.monotonic(), lock=False)),
        looked_at=ctx.Value("q", 0, lock=False),  # under budget_lock
    )


def run_processes(
    mover: Mover,
    sqs_factory: ClientFactory,
    spec: WorkerSpec,
    bar: Any,
) -> None:
    """Run the move in the parent's threads (with the injected client, starting at once) plus
    worker processes (forkserver: no inherited threads or sockets), which join in as soon as
    they have started, and fold their results into ``mover``. On KeyboardInterrupt the shared
    stop flag is set, every worker finishes its in-flight batch (send, delete, journal) and
    reports back, then it re-raises."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["opslib.aws.sqs.move.workers", "boto3"])
    shared = _shared_for_processes(ctx, mover.shared)
    alive_r, alive_w = ctx.Pipe(duplex=False)  # the parent never writes: EOF = parent gone
    shared.alive = alive_r
    plan = plan_processes(spec.settings.workers)
    parts: list[dict[str, Any]] = []
    shown = 0
    mover.attach(shared)
    mover.bar = None  # the main thread updates the bar from the shared count

    def update_bar() -> None:
        nonlocal shown
        if bar is not None:
            now = shared.looked_at.value
            if now > shown:
                bar.update(now - shown)
                shown = now

    pool = ProcessPoolExecutor(
        len(plan) - 1, mp_context=ctx, initializer=_process_init, initargs=(shared,)
    )
    futures = [pool.submit(_process_run, sqs_factory, _with_threads(spec, n)) for n in plan[1:]]
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
                    shared.stop.set()  # a worker process failed or died: stop them all
            else:
                own[0].join(timeout=0.2) if own[0].is_alive() else time.sleep(0.05)
            update_bar()
    except KeyboardInterrupt:
        interrupted = True
        shared.stop.set()
        for t in own:
            t.join(timeout=60)
        wait_futures(futures, timeout=60)
    finally:
        for f in futures:
            if not f.done():
                mover.tally.errors.append("worker process did not finish in time")
                continue
            exc = f.exception()
            if exc is not None:
                mover.tally.errors.append(f"worker process: {type(exc).__name__}: {str(exc)[:160]}")
            else:
                parts.append(f.result())
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        alive_w.close()
        alive_r.close()
        update_bar()
        mover.tally = Tally.merge([mover.tally.part(), *parts])
    if interrupted:
        raise KeyboardInterrupt


def _with_threads(spec: WorkerSpec, threads: int) -> WorkerSpec:
    return WorkerSpec(spec.settings, spec.tuning, spec.journal_path, threads, spec.aws_env)


class SigtermAsInterrupt:
    """During a move in the main thread, SIGTERM stops it like Ctrl-C (in-flight batches are
    finished and journaled, held messages released, the journal's end line written)."""

    def __enter__(self) -> SigtermAsInterrupt:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
