"""Leave a finished process without the interpreter's teardown.

After ``opslib run`` has written its bundle, and after a headless run's kernel has been asked
to shut down, the only work left is Python's finalization: freeing every module and object one
by one. With boto3's service models, papermill, nbconvert, pandas and matplotlib loaded, that
takes 0.6-0.9 s on this machine, and it sits on the critical path of every run: the kernel's
teardown delays the end of the run, and the CLI's delays the caller (a scheduler, a test).

:func:`exit_now` does what a normal exit does that can be seen outside the process, in the
order ``Py_FinalizeEx`` does it: it waits for non-daemon threads (running ``threading``'s own
exit hooks first, which is what lets idle ``concurrent.futures`` workers end), runs the
``atexit`` handlers (logging's flush, multiprocessing's joining of children, ``weakref.finalize``
callbacks such as ``TemporaryDirectory`` cleanup, IPython's history and namespace reset), then
flushes every file object still open for writing (what the teardown would have flushed while
freeing it: a module-level file, one held by a reference cycle), and ends the process with
``os._exit``. What it skips is freeing memory, which the operating system reclaims anyway, and
``__del__`` methods of objects still alive at exit, which Python does not promise to run.

``threading._shutdown``, ``atexit._run_exitfuncs`` and ``_io._IOBase`` are CPython internals
(the interpreter itself calls the first two at exit). If one is missing, it falls back to a
normal ``sys.exit``.
"""

from __future__ import annotations

import _io  # the C base class of every file object: a cheap isinstance over the whole heap
import atexit
import gc
import os
import sys
import threading

__all__ = ["exit_now"]


def exit_now(code: int) -> None:
    """End the process with ``code`` after every outward exit step, minus the teardown.

    Call it from the main thread once the program's work is done; it does not return. From
    another thread it is ``sys.exit(code)``.
    """
    shutdown_threads = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    file_base = getattr(_io, "_IOBase", None)
    if (
        threading.current_thread() is not threading.main_thread()
        or shutdown_threads is None
        or run_exitfuncs is None
        or file_base is None
    ):
        sys.exit(code)
    shutdown_threads()
    run_exitfuncs()
    _flush_open_files(file_base)
    os._exit(code)


def _flush_open_files(file_base: type) -> None:
    """Flush every file object open for writing (stdout and stderr last), ignoring errors: a
    closed pipe (``| head``) or a broken socket has nothing more to take."""
    standard = [s for s in (sys.stdout, sys.stderr) if s is not None]
    for obj in gc.get_objects():
        if isinstance(obj, file_base) and not any(obj is s for s in standard):
            _flush(obj)
    for stream in standard:
        _flush(stream)


def _flush(obj: object) -> None:
    try:
        if not obj.closed and obj.writable():  # type: ignore[attr-defined]
            obj.flush()  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        pass
