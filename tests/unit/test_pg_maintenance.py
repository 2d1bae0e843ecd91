"""opslib.pg.maintenance and maintenance_actions on the sandbox's real PostgreSQL.

Each test works in a database of its own (created for the module), so a REINDEX CONCURRENTLY
does not wait on another scenario's open transaction, and dead tuples, statements and
sessions are the test's own. Every change goes through the real apply loop with an approval.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from opslib.clients import pg_connect
from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.plans import ChangeStatus, apply, approve
from opslib.pg import maintenance as mt
from opslib.pg import maintenance_actions as ma

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def db(sandbox):
    name = f"maint_{uuid.uuid4().hex[:8]}"
    base = f"host={sandbox.pg_host} port={sandbox.pg_port} user={sandbox.pg_user}"
    with psycopg.connect(base + " dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    conninfo = f"{base} dbname={name}"
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    yield conninfo
    with psycopg.connect(base + " dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def conn(db):
    c = pg_connect(db, runbook="db-maintenance")
    yield c
    c.close()


def _apply(plan, conn):
    approval = approve(plan, dry_run=False, approved_by="test")
    return apply(
        plan,
        approval=approval,
        execute=executors.bind(conn=conn, allowed=[c.action for c in plan.changes]),
    )


def _dead_table(conn, name: str, rows: int = 5000, delete_pct: int = 40) -> None:
    conn.execute(
        f"CREATE TABLE {name} (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false)"
    )
    conn.execute(f"INSERT INTO {name} SELECT g, repeat('x', 40) FROM generate_series(1, {rows}) g")
    _wait_stats(conn, name, "n_tup_ins", rows)  # statistics are flushed lazily (about 1 s)
    conn.execute(f"ANALYZE {name}")
    conn.execute(f"DELETE FROM {name} WHERE id % 100 < {delete_pct}")
    _wait_stats(conn, name, "n_dead_tup", rows * delete_pct // 100)


def _wait_stats(conn, table: str, column: str, least: int, timeout: float = 10) -> None:
    schema, rel = table.split(".")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            f"SELECT {column} FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
            (schema, rel),
        ).fetchone()
        if row and row[0] >= least:
            return
        time.sleep(0.2)
    raise AssertionError(f"{column} of {table} never reached {least}")


def test_redact_sql_strips_literals_and_keeps_parameters():
    q = "SELECT * FROM t WHERE a = 'sec''ret' AND b = 42 AND c = $1 AND d = E'x' AND e = 3.5e2 AND f1 = $$body$$"
    out = mt.redact_sql(q)
    assert "sec" not in out and "42" not in out and "body" not in out and "3.5" not in out
    assert "$1" in out and "f1" in out  # identifiers with digits survive
    assert mt.redact_sql("ALTER ROLE app PASSWORD 'hunt") == "ALTER ROLE app PASSWORD ?…"


def test_report_flags_dead_tuples_and_vacuum_lowers_them(conn):
    _dead_table(conn, "public.orders_dead")
    for i in range(30):  # one statement that dominates the database's statement time
        conn.execute(
            "SELECT count(*) FROM generate_series(1, 20000) g WHERE g::text LIKE %s", (f"%{i}7%",)
        )
    report = mt.read_report(conn=conn, dead_tuple_pct=20, long_query_seconds=300)
    flagged = [t.name for t in report.flagged]
    assert "public.orders_dead" in flagged
    t = report.table("public.orders_dead")
    assert 35 <= t.dead_pct <= 45 and not t.autovacuum_enabled
    titles = [f.title for f in report.findings]
    assert any("orders_dead has 40% dead tuples" in x for x in titles)
    assert report.by_total and report.by_total[0].total_ms >= report.by_total[-1].total_ms
    assert all("'" not in s.query for s in report.by_total + report.by_mean)
    assert report.databases and report.databases[0].age > 0
    plan = ma.plan_vacuum(report, ["public.orders_dead"], max_tables=10)
    assert [c.action for c in plan.changes] == [ma.VACUUM_ACTION]
    result = _apply(plan, conn)
    out = result.outcomes[0]
    assert out.status is ChangeStatus.APPLIED, out.detail
    assert out.data["dead_before"] >= 1900 and out.data["dead_after"] == 0
    assert any("orders_dead" in line for line in out.data["verbose"])  # VERBOSE output kept
    after = mt.read_report(conn=conn, dead_tuple_pct=20)
    assert "public.orders_dead" not in [t.name for t in after.flagged]
    assert after.table("public.orders_dead").last_vacuum


def test_missing_table_and_unqualified_name_are_refused(conn):
    with pytest.raises(NotFoundError, match="public.nope"):
        ma.resolve_tables(["public.nope"], conn=conn)
    with pytest.raises(BadInputError, match="schema-qualified"):
        ma.resolve_tables(["nope"], conn=conn)


def test_max_tables_is_a_blast_radius(conn):
    report = mt.read_report(conn=conn)
    with pytest.raises(BadInputError, match="max_tables"):
        ma.plan_vacuum(report, ["public.a", "public.b"], max_tables=1)


def test_reindex_concurrently_does_not_block_a_writer(conn, db):
    conn.execute("CREATE TABLE public.events (id bigserial PRIMARY KEY, k int, note text)")
    conn.execute("CREATE INDEX events_k ON public.events (k)")
    conn.execute(
        "INSERT INTO public.events (k, note) SELECT g % 1000, repeat('y', 30) FROM generate_series(1, 200000) g"
    )
    conn.execute("ANALYZE public.events")
    stop = threading.Event()
    latencies: list[tuple[float, float]] = []  # (start, seconds) of every insert

    def writer():
        with psycopg.connect(db, autocommit=True, application_name="writer") as w:
            while not stop.is_set():
                t0 = time.monotonic()
                w.execute("INSERT INTO public.events (k, note) VALUES (7, 'w')")
                latencies.append((t0, time.monotonic() - t0))

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    time.sleep(0.5)
    report = mt.read_report(conn=conn)
    plan = ma.plan_reindex(report, ["public.events"], max_tables=5)
    assert {c.target for c in plan.changes} == {"public.events_pkey", "public.events_k"}
    assert "blocks every INSERT" in plan.warnings[0]
    t_start = time.monotonic()
    result = _apply(plan, conn)
    t_end = time.monotonic()
    time.sleep(0.3)
    stop.set()
    th.join(timeout=10)
    assert [o.status for o in result.outcomes] == [ChangeStatus.APPLIED] * 2, result.to_frame()
    during = [s for t0, s in latencies if t_start <= t0 <= t_end]
    assert len(during) >= 20, f"the writer made only {len(during)} inserts during the rebuild"
    assert max(s for _, s in latencies) < 2.0, "an insert was blocked for 2 s or more"
    assert not ma._leftovers(conn, "public", "events_k")
    valid = conn.execute(
        "SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'public.events'::regclass"
    ).fetchone()[0]
    assert valid


def test_bulk_termination_spares_own_opslib_and_replication_sessions(conn, db):
    victims = [
        psycopg.connect(db, autocommit=True, application_name="report-job") for _ in range(2)
    ]
    other_opslib = psycopg.connect(db, autocommit=True, application_name="opslib/other-run")
    walsender = psycopg.connect(
        db + " replication=database", autocommit=True, application_name="standby-feed"
    )
    threads = []
    for c in [*victims, other_opslib, walsender]:
        t = threading.Thread(target=_sleep_query, args=(c,), daemon=True)
        t.start()
        threads.append(t)
    try:
        pids = {c.info.backend_pid for c in victims}
        spared = {other_opslib.info.backend_pid, walsender.info.backend_pid, conn.info.backend_pid}
        time.sleep(2.5)
        report = mt.read_report(conn=conn, long_query_seconds=2)
        plan = ma.plan_terminate_long(report.activity, max_terminations=5)
        planned = {int(c.params["pid"]) for c in plan.changes}
        assert planned == pids
        warned = " ".join(plan.warnings)
        assert (
            str(other_opslib.info.backend_pid) in warned
            and str(walsender.info.backend_pid) in warned
        )
        capped = ma.plan_terminate_long(report.activity, max_terminations=1)
        assert len(capped.changes) == 1 and "beyond max_terminations=1" in " ".join(capped.warnings)
        result = _apply(plan, conn)
        assert {o.data["pid"] for o in result.outcomes if o.status is ChangeStatus.APPLIED} == pids
        alive = {r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity").fetchall()}
        assert not (pids & alive) and spared <= alive
    finally:
        for c in [other_opslib, walsender]:
            c.cancel()
        for t in threads:
            t.join(timeout=10)
        for c in [*victims, other_opslib, walsender]:
            c.close()


def _sleep_query(c) -> None:
    try:
        c.execute("SELECT pg_sleep(60)")
    except psycopg.Error:
        pass  # terminated or cancelled by the test


def test_log_slow_is_set_then_reverted_in_the_same_run(conn):
    current = ma.log_setting(conn=conn)
    assert not current.by_alter_system
    plan = ma.plan_log_slow(current, log_min_duration_ms=250, revert_minutes=0.03)
    assert [c.action for c in plan.changes] == [ma.LOG_SLOW_ACTION, ma.LOG_SLOW_RESET_ACTION]
    t0 = time.monotonic()
    result = _apply(plan, conn)
    assert [o.status for o in result.outcomes] == [ChangeStatus.APPLIED] * 2, result.to_frame()
    assert time.monotonic() - t0 >= 1.8  # the revert waited its delay
    assert result.outcomes[0].data["ms"] == 250
    after = ma.log_setting(conn=conn)
    assert after.setting == current.setting and not after.by_alter_system


def test_log_slow_revert_later_with_minus_one(conn):
    current = ma.log_setting(conn=conn)
    on = ma.plan_log_slow(current, log_min_duration_ms=1000, revert_minutes=0)
    assert len(on.changes) == 1 and "log_min_duration_ms=-1" in " ".join(on.warnings)
    _apply(on, conn)
    assert ma.log_setting(conn=conn).setting == "1000"
    assert ma.log_setting(conn=conn).by_alter_system
    off = ma.plan_log_slow(ma.log_setting(conn=conn), log_min_duration_ms=-1, revert_minutes=0)
    assert [c.action for c in off.changes] == [ma.LOG_SLOW_RESET_ACTION]
    assert _apply(off, conn).outcomes[0].status is ChangeStatus.APPLIED
    assert ma.log_setting(conn=conn).setting == current.setting
