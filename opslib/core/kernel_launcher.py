"""The kernel of headless runs: ipykernel's own launcher, with two changes at shutdown.

``python -m opslib.core.kernel_launcher -f CONNECTION_FILE`` is ``python -m ipykernel_launcher``
(the same kernel, the same arguments) except when it is asked to shut down:

- **multiprocessing's helpers go first.** A cell that used multiprocessing with the forkserver
  or spawn start method (the DLQ move's worker processes, any ``ProcessPoolExecutor``) leaves
  its forkserver and resource tracker running as children of the kernel. ipykernel SIGTERMs
  its children at shutdown and waits for them; the resource tracker ignores SIGTERM, so
  jupyter_client killed the kernel after half of its 5 s shutdown wait: 2.5 s lost per run,
  and the kill skipped the kernel's atexit handlers. :func:`stop_multiprocessing_helpers`
  ends them the way multiprocessing does at exit (closing their pipes), when no other child
  still needs them.
- **no interpreter teardown.** Once the loop has stopped, the process runs its exit hooks and
  ends without freeing every module and object, which with a runbook's libraries loaded takes
  0.6-0.9 s (:mod:`opslib.core.fast_exit`).

JupyterLab's kernels are untouched.
"""

from __future__ import annotations

import inspect
import multiprocessing.forkserver as mp_forkserver
import multiprocessing.resource_tracker as mp_resource_tracker
import os
import sys
from pathlib import Path
from typing import Any

from opslib.core.fast_exit import exit_now

__all__ = ["main", "stop_multiprocessing_helpers"]


def _child_pids() -> set[int]:
    """This process's descendants (from /proc; empty where there is none)."""
    found: set[int] = set()
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                kids = {int(c) for c in children.read_text().split()}
            except OSError:  # a thread or process that just ended
                continue
            todo.extend(kids - found)
            found |= kids
    return found


def stop_multiprocessing_helpers() -> bool:
    """Stop multiprocessing's forkserver and resource tracker if they are this process's only
    children; True when something was stopped.

    Closing a helper's pipe is how multiprocessing itself ends them at exit; each then exits
    at once, unless another process still holds the pipe: a worker still running, which is
    why nothing is stopped while any other child exists (ipykernel then signals them all, as
    before). The helpers' ``_stop`` is private to multiprocessing, which has no public way;
    if it is missing or fails, the helpers are left to end with the process, as before.
    """
    server = getattr(mp_forkserver, "_forkserver", None)
    tracker = getattr(mp_resource_tracker, "_resource_tracker", None)
    helpers = {
        pid
        for pid in (getattr(server, "_forkserver_pid", None), getattr(tracker, "_pid", None))
        if isinstance(pid, int)
    }
    if not helpers or not _child_pids() <= helpers:
        return False
    try:
        if getattr(server, "_forkserver_pid", None) is not None:
            server._stop()  # type: ignore[union-attr]
        if getattr(tracker, "_pid", None) is not None:
            tracker._stop()  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - private API changed: they end with the process
        print(f"opslib: could not stop multiprocessing's helpers: {exc}", file=sys.stderr)
        return False
    return True


def main() -> None:
    """Start the kernel; stop multiprocessing's helpers on shutdown; exit without teardown."""
    # As ipykernel_launcher does: the working directory leaves sys.path before ipykernel is
    # imported (a file there must not shadow it), so these imports wait until then.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    from ipykernel import kernelapp
    from ipykernel.ipkernel import IPythonKernel

    class HeadlessKernel(IPythonKernel):
        """ipykernel's kernel; on shutdown, multiprocessing's helpers stop first."""

        async def do_shutdown(self, restart: bool) -> Any:
            stop_multiprocessing_helpers()
            reply = super().do_shutdown(restart)
            return await reply if inspect.isawaitable(reply) else reply

    kernelapp.launch_new_instance(kernel_class=HeadlessKernel)
    exit_now(0)


if __name__ == "__main__":
    main()
