"""One bounded polling loop with a progress bar, shared by every "wait until it is ready" step.

A runbook step that waits on something outside our process (an RDS cluster becoming
available, a DynamoDB table being deleted, a restored PostgreSQL server finishing recovery)
must never wait forever, must show the operator that it is alive, and, when it gives up, must
say what exists now and how to resume: the thing it waited on usually keeps going without us.
:func:`poll_until` does the looping, bounding and progress; the caller supplies what differs:
how to look (``check``) and what to say on timeout (``on_timeout``, so each keeps its own
resume hint).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from opslib.core.errors import RunbookTimeoutError
from opslib.core.progress import ProgressFactory, default_progress

T = TypeVar("T")

__all__ = ["poll_until"]


def poll_until(
    check: Callable[[], tuple[bool, T, str]],
    *,
    timeout_s: float,
    poll_s: float,
    desc: str,
    on_timeout: Callable[[T, str], str],
    progress: ProgressFactory = default_progress,
) -> T:
    """Call ``check()`` until it reports done; return its value. Bounded by ``timeout_s``.

    ``check()`` returns ``(done, value, status_text)``: ``value`` is what the caller wants back
    (or needs for its timeout message), ``status_text`` is shown beside the progress bar.
    ``check`` is always called at least once, even with ``timeout_s=0``, so a thing that is
    already ready returns at once. Exceptions from ``check`` propagate unchanged (a caller that
    sees its target fail, e.g. a server that exited, raises its own error from ``check``).

    When the last check is not done and ``timeout_s`` has passed, raises
    :class:`~opslib.core.errors.RunbookTimeoutError` with ``on_timeout(value, status_text)`` of that
    last check as its message; it should name what exists now and how to resume. The sleep
    between checks is ``poll_s`` but never longer than the time left, so a long poll interval
    does not stretch the wait past its bound, and a final check happens right at the bound.

    Progress goes through the injected ``progress`` factory (default: a widget in JupyterLab,
    plain throttled lines headless), counting whole elapsed seconds against ``timeout_s``;
    pass :func:`opslib.core.progress.no_progress` to show none (benchmarks, library use).
    """
    bar = progress(total=int(timeout_s), desc=desc, unit="s")
    t0 = time.monotonic()
    shown = 0
    try:
        while True:
            done, value, status = check()
            bar.set_postfix_str(status)
            if done:
                return value
            elapsed = time.monotonic() - t0
            if elapsed >= timeout_s:
                raise RunbookTimeoutError(on_timeout(value, status))
            time.sleep(min(poll_s, max(0.0, timeout_s - elapsed)))
            now = int(time.monotonic() - t0)
            if now > shown:
                bar.update(now - shown)
                shown = now
    finally:
        bar.close()
