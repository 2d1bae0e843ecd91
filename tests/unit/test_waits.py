"""opslib.core.waits.poll_until: the one bounded polling loop behind RDS, DynamoDB and PostgreSQL waits.

Pure tests: a fake ``check`` counting its calls, small real timeouts (well under a second of
sleeping in total), no servers.
"""

from __future__ import annotations

import time

import pytest

from opslib.core.errors import RunbookTimeoutError
from opslib.core.progress import no_progress
from opslib.core.runtime import HEADLESS_ENV
from opslib.core.waits import poll_until

pytestmark = pytest.mark.timeout(10)


class FakeCheck:
    """Reports ``status`` until its ``done_after``-th call, then ``("ready", call number)``."""

    def __init__(self, done_after: int | None, status: str = "creating"):
        self.calls = 0
        self.done_after = done_after
        self.status = status

    def __call__(self) -> tuple[bool, int, str]:
        self.calls += 1
        if self.done_after is not None and self.calls >= self.done_after:
            return True, self.calls, "ready"
        return False, self.calls, self.status


def _never(value, status) -> str:
    raise AssertionError(f"on_timeout called (value={value!r}, status={status!r})")


def _poll(check, *, timeout_s: float, poll_s: float, on_timeout=_never):
    """poll_until without a progress bar (the bar has its own test)."""
    return poll_until(
        check,
        timeout_s=timeout_s,
        poll_s=poll_s,
        desc="t",
        on_timeout=on_timeout,
        progress=no_progress,
    )


def test_returns_the_value_of_the_check_that_is_done():
    check = FakeCheck(done_after=3)
    value = _poll(check, timeout_s=5, poll_s=0.01)
    assert value == 3 and check.calls == 3


def test_ready_at_once_returns_without_sleeping_even_with_zero_timeout():
    check = FakeCheck(done_after=1)
    t0 = time.monotonic()
    value = _poll(check, timeout_s=0, poll_s=30)
    assert value == 1 and check.calls == 1
    assert time.monotonic() - t0 < 0.5


def test_timeout_raises_with_the_callers_message_built_from_the_last_check():
    check = FakeCheck(done_after=None, status="backing-up")
    seen = []

    def message(value, status):
        seen.append((value, status))
        return f"db is '{status}' after check {value}; to resume: aws rds wait ..."

    t0 = time.monotonic()
    with pytest.raises(RunbookTimeoutError) as err:
        _poll(check, timeout_s=0.2, poll_s=0.05, on_timeout=message)
    waited = time.monotonic() - t0
    assert seen == [(check.calls, "backing-up")]  # built once, from the last check
    assert (
        str(err.value)
        == f"db is 'backing-up' after check {check.calls}; to resume: aws rds wait ..."
    )
    assert check.calls >= 3  # it kept polling until the bound
    assert 0.2 <= waited < 1.0


def test_zero_timeout_checks_once_then_raises():
    check = FakeCheck(done_after=None)
    with pytest.raises(RunbookTimeoutError, match="gave up"):
        _poll(check, timeout_s=0, poll_s=30, on_timeout=lambda v, s: "gave up")
    assert check.calls == 1


def test_poll_interval_is_bounded_by_the_time_left():
    # poll_s far beyond the timeout: one sleep of ~timeout_s, a last check at the bound, then
    # the timeout (not a 30 s sleep).
    check = FakeCheck(done_after=None)
    t0 = time.monotonic()
    with pytest.raises(RunbookTimeoutError):
        _poll(check, timeout_s=0.2, poll_s=30, on_timeout=lambda v, s: "late")
    waited = time.monotonic() - t0
    assert check.calls == 2
    assert 0.2 <= waited < 1.0


def test_last_check_at_the_bound_can_still_succeed():
    # ready on the second call, which happens right at the bound: a success, not a timeout
    check = FakeCheck(done_after=2)
    value = _poll(check, timeout_s=0.1, poll_s=30)
    assert value == 2


def test_errors_from_check_propagate_unchanged():
    class Boom(Exception):
        pass

    def check():
        raise Boom("server exited")

    with pytest.raises(Boom, match="server exited"):
        poll_until(check, timeout_s=5, poll_s=0.01, desc="t", on_timeout=_never)


def test_progress_shows_description_and_last_status(monkeypatch, capsys):
    monkeypatch.setenv(HEADLESS_ENV, "1")  # plain text bar on stdout
    check = FakeCheck(done_after=None, status="modifying")
    with pytest.raises(RunbookTimeoutError):
        poll_until(
            check,
            timeout_s=0.1,
            poll_s=0.05,
            desc="db1 -> available (s)",
            on_timeout=lambda v, s: "late",
        )
    out = capsys.readouterr().out
    assert "db1 -> available (s)" in out and "modifying" in out
