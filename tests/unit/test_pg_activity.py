"""opslib.pg.activity on the sandbox's real PostgreSQL: a real blocking chain built per test.

Each test makes its own table and its own chain (one session idle in transaction holding a row
lock, waiters queued behind it) with connections named like an application, so it can check
what a real pg_blocking_pids tree looks like and that terminations release real waiters.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from opslib.clients import pg_connect
from opslib.core.errors import BadInputError
from opslib.core.plans import ChangeStatus
from opslib.pg import activity as act

pytestmark = pytest.mark.timeout(120)


class Chain:
    """A holder with a row lock and ``n`` waiters on the same row, in their own connections."""

    def __init__(
        self,
        conninfo: str,
        table: str,
        *,
        n: int = 2,
        holder_app: str = "test-holder",
        row: int = 1,
    ):
        self.row = row
        self.holder = psycopg.connect(conninfo, application_name=holder_app, autocommit=False)
        self.holder.execute(f"UPDATE {table} SET v = v + 1 WHERE id = %s", (row,))
        self.done: list[int] = []
        self.waiter_pids: list[int] = []
        self.threads = []
        for _ in range(n):
            c = psycopg.connect(conninfo, application_name="test-waiter", autocommit=True)
            self.waiter_pids.append(c.info.backend_pid)
            t = threading.Thread(target=self._wait, args=(c, table), daemon=True)
            t.start()
            self.threads.append(t)

    def _wait(self, c, table):
        try:
            c.execute(f"UPDATE {table} SET v = v - 1 WHERE id = %s", (self.row,))
            self.done.append(c.info.backend_pid)
        except psycopg.Error:
            pass
        finally:
            c.close()

    @property
    def holder_pid(self) -> int:
        return self.holder.info.backend_pid

    def close(self):
        try:
            self.holder.rollback()
            self.holder.close()
        except psycopg.Error:
            pass
        for t in self.threads:
            t.join(timeout=10)


def wait_until(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def pg(sandbox):
    conninfo = f"host={sandbox.pg_host} port={sandbox.pg_port} user={sandbox.pg_user} dbname={sandbox.pg_database}"
    conn = pg_connect(conninfo, runbook="latency-triage")
    table = f"t_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL)")
    conn.execute(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    chains: list[Chain] = []

    def make(**kw) -> Chain:
        ch = Chain(conninfo, table, **kw)
        chains.append(ch)
        assert wait_until(lambda: _waiting(conn, ch.waiter_pids)), "chain did not form"
        return ch

    yield conn, make
    for ch in chains:
        ch.close()
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.close()


def _waiting(conn, pids) -> bool:
    rows = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND wait_event_type = 'Lock'",
        (pids,),
    ).fetchone()
    return rows[0] == len(pids)


def test_blocking_tree_marks_the_root_and_counts_everyone_behind_it(pg):
    conn, make = pg
    ch = make(n=3)
    snap = act.snapshot(conn=conn, long_query_seconds=300)
    assert snap.root_blockers == (ch.holder_pid,)
    assert set(snap.waiting) == set(ch.waiter_pids)
    root = snap.blocking[0]
    assert root.root and root.depth == 0 and root.blocks_total == 3
    assert root.session.state == "idle in transaction"
    frame = snap.blocking_frame()
    assert frame.loc[frame.root_blocker, "pid"].tolist() == [ch.holder_pid]
    assert ch.holder_pid in [s.pid for s in snap.idle_in_transaction]
    f = act.findings(snap)
    assert f[0].severity.value == "critical" and str(ch.holder_pid) in f[0].title
    assert "Kill the blocking PID" in f[0].next_action


def test_long_queries_respect_the_threshold_and_skip_own_session(pg):
    conn, make = pg
    ch = make(n=1)
    time.sleep(1.1)
    assert act.snapshot(conn=conn, long_query_seconds=300).long_queries == ()
    snap = act.snapshot(conn=conn, long_query_seconds=1)
    pids = [s.pid for s in snap.long_queries]
    assert ch.waiter_pids[0] in pids  # active (waiting on the lock) for over a second
    assert snap.own_pid not in pids
    assert ch.holder_pid not in pids  # idle in transaction is reported separately


def test_connections_and_top_statements(pg):
    conn, _ = pg
    snap = act.snapshot(conn=conn)
    assert snap.max_connections == int(conn.execute("SHOW max_connections").fetchone()[0])
    assert 1 <= snap.connections <= snap.max_connections
    titles = [f.title for f in act.findings(snap)]
    assert any("connections at" in t for t in titles)
    installed = conn.execute(
        "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
    ).fetchone()
    if installed:  # the sandbox preloads it: top statements by mean time, slowest first
        means = [s.mean_ms for s in snap.statements]
        assert means and means == sorted(means, reverse=True)
        assert any(t.startswith("PostgreSQL: slowest statement") for t in titles)
    else:
        assert snap.statements == () and "not installed" in snap.statements_note


def test_note_when_pg_stat_statements_is_not_installed(sandbox, pg):
    conn, _ = pg
    db = f"t_nostat_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE DATABASE {db}")
    try:
        other = pg_connect(
            f"host={sandbox.pg_host} port={sandbox.pg_port} user={sandbox.pg_user} dbname={db}"
        )
        with other:
            snap = act.snapshot(conn=other)
        assert (
            snap.statements == () and "pg_stat_statements is not installed" in snap.statements_note
        )
        assert "PostgreSQL: top statements unavailable" in [f.title for f in act.findings(snap)]
    finally:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_snapshot_takes_no_lock_that_blocks_others(pg):
    conn, make = pg
    make(n=1)
    act.snapshot(conn=conn)
    # the READ ONLY snapshot transaction is over: our session holds no lock and no transaction
    held = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype <> 'virtualxid' "
        "AND relation IS DISTINCT FROM 'pg_locks'::regclass"
    ).fetchone()[0]
    assert held == 0
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_plan_terminate_targets_root_blockers_within_the_limit(pg):
    conn, make = pg
    ch = make(n=2)
    snap = act.snapshot(conn=conn)
    plan = act.plan_terminate(snap, max_terminations=1)
    assert [c.params["pid"] for c in plan.changes] == [ch.holder_pid]
    assert plan.changes[0].action == "pg_terminate_backend"
    assert act.plan_terminate(snap, max_terminations=0).changes == ()
    with pytest.raises(BadInputError):
        act.plan_terminate(snap, max_terminations=-1)


def test_plan_terminate_plans_only_the_chosen_roots_within_the_limit(pg):
    conn, make = pg
    small = make(n=1, row=1, holder_app="billing-batch")
    big = make(n=2, row=2, holder_app="ledger-batch")
    snap = act.snapshot(conn=conn)
    assert snap.root_blockers == (big.holder_pid, small.holder_pid)  # most blocking first
    options = act.root_options(snap)
    assert [pid for _label, pid in options] == [big.holder_pid, small.holder_pid]
    label = dict((pid, label) for label, pid in options)[big.holder_pid]
    assert f"pid {big.holder_pid}" in label and "ledger-batch" in label and "blocks 2" in label

    # None: today's behaviour (the first root up to the limit)
    default = act.plan_terminate(snap, max_terminations=1)
    assert [c.params["pid"] for c in default.changes] == [big.holder_pid]
    # the same choice a headless run preselects gives the same plan, warnings included
    same = act.plan_terminate(snap, max_terminations=1, only_pids=[big.holder_pid])
    assert same.changes == default.changes and same.warnings == default.warnings
    assert same.digest() == default.digest()

    # the engineer picks the smaller root: only that one, the other is named as not chosen
    picked = act.plan_terminate(snap, max_terminations=1, only_pids=[small.holder_pid])
    assert [c.params["pid"] for c in picked.changes] == [small.holder_pid]
    assert any(f"pid {big.holder_pid}" in w and "not chosen" in w for w in picked.warnings)
    # both chosen: still at most max_terminations
    both = act.plan_terminate(
        snap, max_terminations=1, only_pids=[small.holder_pid, big.holder_pid]
    )
    assert [c.params["pid"] for c in both.changes] == [big.holder_pid]
    assert any("beyond max_terminations=1" in w for w in both.warnings)
    assert (
        len(
            act.plan_terminate(
                snap, max_terminations=2, only_pids=[small.holder_pid, big.holder_pid]
            ).changes
        )
        == 2
    )
    # nothing chosen: nothing planned
    assert act.plan_terminate(snap, max_terminations=5, only_pids=[]).changes == ()
    # a waiter is not a root blocker: refused before anything is planned
    with pytest.raises(BadInputError, match="not root blockers"):
        act.plan_terminate(snap, max_terminations=5, only_pids=[big.waiter_pids[0]])


def test_never_plans_the_runbooks_own_kind_of_session(pg):
    conn, make = pg
    ch = make(n=1, holder_app="opslib/other-run")
    snap = act.snapshot(conn=conn)
    assert snap.root_blockers == (ch.holder_pid,)
    plan = act.plan_terminate(snap, max_terminations=5)
    assert plan.changes == ()
    assert any("own session" in w for w in plan.warnings)
    assert act.root_options(snap) == []  # never offered in the choice either


def test_terminate_releases_the_waiters(pg):
    conn, make = pg
    ch = make(n=2)
    plan = act.plan_terminate(act.snapshot(conn=conn), max_terminations=1)
    out = act.terminator(conn=conn)(plan.changes[0])
    assert out.status is ChangeStatus.APPLIED, out.detail
    assert wait_until(lambda: sorted(ch.done) == sorted(ch.waiter_pids)), "waiters did not finish"
    after = act.snapshot(conn=conn)
    assert after.root_blockers == () and after.waiting == ()


def test_terminate_skips_a_pid_that_is_now_another_session(pg):
    conn, make = pg
    make(n=1)
    plan = act.plan_terminate(act.snapshot(conn=conn), max_terminations=1)
    change = plan.changes[0]
    forged = type(change)(
        change.action,
        change.target,
        change.effect,
        {**change.params, "backend_start": "2001-01-01T00:00:00+00:00"},
    )
    out = act.terminate(forged, conn=conn)
    assert out.status is ChangeStatus.SKIPPED and "different session" in out.detail
    assert act.snapshot(conn=conn).root_blockers  # still there: nothing was terminated


def test_background_workers_and_own_session_are_not_terminable():
    base = dict(
        usename="postgres",
        application_name="",
        client_addr="",
        datname="",
        state="",
        wait_event_type="",
        wait_event="",
        backend_start="",
        xact_age_s=None,
        query_age_s=None,
        state_age_s=None,
        query="",
        blocked_by=(),
        superuser=True,
        is_self=False,
    )
    for kind in ("autovacuum worker", "walsender", "background worker"):
        s = act.PgSession(pid=10, backend_type=kind, **base)
        assert "not a client session" in act._terminable(s)
    me = act.PgSession(pid=11, backend_type="client backend", **{**base, "is_self": True})
    assert "own session" in act._terminable(me)
    assert act._terminable(act.PgSession(pid=12, backend_type="client backend", **base)) == ""


def test_query_text_from_the_session_views_carries_no_literals():
    """pg_stat_activity keeps what a client sent: a password or token literal must not leave
    the adapter (it would reach the notebook, the HTML and record.json)."""
    from opslib.pg.sqltext import redact_sql

    text = "ALTER ROLE app PASSWORD 'canary-pw-7f3a' VALID UNTIL '2030-01-01'"
    assert "canary-pw-7f3a" not in redact_sql(text) and redact_sql(text).startswith("ALTER ROLE")
