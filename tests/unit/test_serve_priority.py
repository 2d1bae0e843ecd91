"""The receiver answers first: run workers, and the processes they start, run at a lower priority."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from opslib.serve.priority import RUN_NICENESS, lower_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice")


def test_a_worker_and_its_children_yield_while_the_receiver_thread_keeps_its_priority():
    seen: dict[str, int] = {}

    def worker() -> None:
        lower_priority()
        seen["worker"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        out = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        seen["child"] = int(out.stdout)

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=worker)
    t.start()
    t.join(timeout=60)
    assert seen["worker"] >= RUN_NICENESS and seen["child"] >= RUN_NICENESS
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
