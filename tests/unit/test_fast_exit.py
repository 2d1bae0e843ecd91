"""opslib.core.fast_exit: a process that ends without the interpreter's teardown still does
everything a normal exit does outside the process (in a child process, since it exits)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

CHILD = textwrap.dedent(
    """
    import atexit, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    from opslib.core.fast_exit import exit_now

    out = sys.argv[1]

    class Holder:  # a buffered file kept alive only by a reference cycle
        pass

    h = Holder()
    h.me = h
    h.f = open(out + "/cycle.txt", "w")
    h.f.write("held by a cycle, flushed")
    del h
    module_level = open(out + "/global.txt", "wb")  # never closed: the teardown would flush it
    module_level.write(b"module-level file, flushed")

    def late():  # a non-daemon thread still working when the program's work is done
        time.sleep(0.3)
        open(out + "/thread.txt", "w").write("thread finished")

    threading.Thread(target=late).start()
    pool = ThreadPoolExecutor(2)  # idle workers, never shut down: must not hang the exit
    pool.submit(int, 1).result()
    atexit.register(lambda: open(out + "/atexit.txt", "w").write("atexit ran"))
    sys.stdout.write("buffered stdout")  # not flushed by the program
    exit_now(3)
    """
)


def test_exit_now_keeps_every_outside_effect_of_a_normal_exit(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONUNBUFFERED": "", "PATH": "/usr/bin:/bin"},
    )
    assert p.returncode == 3, p.stderr
    assert p.stdout == "buffered stdout"
    assert (tmp_path / "thread.txt").read_text() == "thread finished"
    assert (tmp_path / "atexit.txt").read_text() == "atexit ran"
    assert (tmp_path / "cycle.txt").read_text() == "held by a cycle, flushed"
    assert (tmp_path / "global.txt").read_text() == "module-level file, flushed"


def test_exit_now_off_the_main_thread_is_a_normal_exit(tmp_path: Path) -> None:
    """From another thread it cannot run the main thread's exit steps: it raises SystemExit
    there, as sys.exit does, and the process goes on."""
    code = textwrap.dedent(
        """
        import threading
        from opslib.core.fast_exit import exit_now
        seen = []
        def worker():
            try:
                exit_now(5)
            except SystemExit as exc:
                seen.append(exc.code)
        t = threading.Thread(target=worker); t.start(); t.join()
        print(seen)
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout.strip()) == (0, "[5]"), p.stderr
