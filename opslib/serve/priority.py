"""The receiver answers first: runs yield the CPU to the thread that sends the 202s."""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger("opslib.serve")

#: niceness of the run workers (and so of the processes and kernels they start)
RUN_NICENESS = 10


def lower_priority(niceness: int = RUN_NICENESS) -> None:
    """Run this thread, and every process it starts, at a lower CPU priority.

    On Linux niceness is per thread and a child process inherits its creating thread's: a
    worker that lowers its own makes the run's process, papermill and the kernel yield to the
    uvicorn thread, so a burst of alerts gets its 202s while earlier alerts' notebooks run.
    Raising one's niceness needs no privilege; elsewhere (no per-thread niceness) this does
    nothing rather than slow the whole receiver down.
    """
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), niceness))
    except OSError as exc:  # a sandbox that forbids it: the runs just compete as before
        log.debug("could not lower the run's priority: %s", exc)
