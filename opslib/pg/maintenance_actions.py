"""PostgreSQL maintenance actions: plans and the registered handlers that perform them.

The table-maintenance procedure runs ``VACUUM (VERBOSE, ANALYZE) t``, ``ANALYZE`` and
``REINDEX TABLE t`` by hand; the query-performance one turns ``log_min_duration_statement`` on
with ``ALTER SYSTEM`` and (if someone remembers) off again; the connection-management one kills
every query older than five minutes with one ``pg_terminate_backend`` over ``pg_stat_activity``.
Here each becomes a :class:`~opslib.core.plans.Change` planned from the report
(:mod:`opslib.pg.maintenance`) and performed only through the gate:

- ``VACUUM (VERBOSE, ANALYZE)`` / ``ANALYZE (VERBOSE)`` per table, the verbose output kept in the
  evidence (an attachment per table), dead tuples before and after;
- ``REINDEX INDEX CONCURRENTLY`` instead of the procedure's plain ``REINDEX``, which holds a
  SHARE lock on the table (every INSERT/UPDATE/DELETE waits) for the whole rebuild; a failed
  concurrent rebuild leaves an invalid ``*_ccnew`` index, which the handler drops;
- bulk termination of queries running longer than the threshold, through the
  ``pg_terminate_backend`` handler of :mod:`opslib.pg.activity` (never this runbook's own
  session, another opslib run, replication or background workers; pids pinned by
  ``backend_start``);
- ``ALTER SYSTEM SET log_min_duration_statement`` + ``pg_reload_conf()``, and its revert
  ``ALTER SYSTEM RESET`` (now, or after a delay within the same run).

Maintenance statements get their own statement and lock timeouts (a VACUUM must not sit in
the lock queue behind DDL, making everyone queue behind it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan, check_limit
from opslib.core.progress import ProgressFactory, default_progress
from opslib.core.recorder import attachment_path
from opslib.core.waits import poll_until
from opslib.pg import activity as act
from opslib.pg.maintenance import MaintenanceReport

VACUUM_ACTION = "pg:VACUUM (VERBOSE, ANALYZE)"
ANALYZE_ACTION = "pg:ANALYZE (VERBOSE)"
REINDEX_ACTION = "pg:REINDEX INDEX CONCURRENTLY"
LOG_SLOW_ACTION = "pg:ALTER SYSTEM SET log_min_duration_statement"
LOG_SLOW_RESET_ACTION = "pg:ALTER SYSTEM RESET log_min_duration_statement"
TERMINATE_ACTION = act.TERMINATE_ACTION

#: a maintenance statement may run this long (VACUUM of a big table takes minutes)
MAINTENANCE_TIMEOUT_MS = 60 * 60 * 1000
#: ... but never waits this long for a lock (it would queue everyone behind it)
VACUUM_LOCK_TIMEOUT_MS = 5_000
REINDEX_LOCK_TIMEOUT_MS = 30_000
#: verbose output kept in the change outcome (the whole of it goes to the attachment)
VERBOSE_LINES = 40
RELOAD_WAIT_S = 10.0
SETTING = "log_min_duration_statement"

REINDEX_WHY = (
    "REINDEX INDEX CONCURRENTLY builds a new copy of the index next to the old one and swaps "
    "them, taking only SHARE UPDATE EXCLUSIVE locks, so reads and writes go on; a plain REINDEX "
    "holds a SHARE lock on the table for the whole rebuild, which blocks every INSERT, UPDATE "
    "and DELETE (and ACCESS EXCLUSIVE on the index, blocking reads that use it). The concurrent "
    "rebuild takes longer, needs room for a second copy, and waits for transactions already "
    "running on the table (a long-running or idle-in-transaction session delays it)."
)


# --- tables ---------------------------------------------------------------------------------


def parse_table(name: str) -> tuple[str, str]:
    """'schema.table' -> (schema, table); BadInputError for anything else."""
    parts = name.strip().split(".")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise BadInputError(
            f"table {name!r} is not schema-qualified: give schema.table, e.g. public.orders"
        )
    return parts[0].strip(), parts[1].strip()


def resolve_tables(names: Sequence[str], *, conn) -> tuple[str, ...]:
    """Check that every ``schema.table`` exists as a table here; NotFoundError names the missing."""
    missing: list[str] = []
    for n in names:
        schema, table = parse_table(n)
        row = conn.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace "
            "WHERE ns.nspname = %s AND c.relname = %s",
            (schema, table),
        ).fetchone()
        if row is None or row[0] not in ("r", "m", "p"):
            missing.append(n)
    if missing:
        raise NotFoundError(
            f"table(s) {', '.join(missing)} do not exist in this database (or are not tables): "
            "check the names (schema.table) and pg_dsn's dbname; nothing was changed."
        )
    return tuple(names)


def plan_vacuum(
    report: MaintenanceReport,
    tables: Sequence[str],
    *,
    analyze_only: bool = False,
    max_tables: int = 10,
) -> Plan:
    """One VACUUM (VERBOSE, ANALYZE), or ANALYZE (VERBOSE), per table, at most ``max_tables``."""
    check_limit("max_tables", len(tables), max_tables)
    action = ANALYZE_ACTION if analyze_only else VACUUM_ACTION
    changes = []
    for name in tables:
        schema, table = parse_table(name)
        t = report.table(name)
        dead = t.dead if t else 0
        if analyze_only:
            effect = "refresh planner statistics (SHARE UPDATE EXCLUSIVE: reads and writes go on)"
        else:
            pct = f" ({t.dead_pct:.0f}%)" if t else ""
            effect = (
                f"remove ~{dead} dead tuples{pct} and refresh statistics (SHARE UPDATE "
                "EXCLUSIVE: reads and writes go on; space is reused, not returned to the OS)"
            )
        changes.append(
            Change(action, name, effect, {"schema": schema, "table": table, "dead_before": dead})
        )
    warnings = []
    if not changes:
        warnings.append(
            f"no table at or above {report.dead_tuple_pct:g}% dead tuples: nothing to do "
            "(name tables explicitly with tables=schema.table to maintain them anyway)"
        )
    holders = [s.pid for s in report.activity.long_queries + report.activity.idle_in_transaction]
    if holders and not analyze_only:
        warnings.append(
            f"sessions {holders} run long or sit idle in a transaction: VACUUM cannot remove "
            "tuples they may still see; terminate or wait for them first"
        )
    title = "ANALYZE tables" if analyze_only else "VACUUM (VERBOSE, ANALYZE) tables"
    return Plan(title, tuple(changes), tuple(warnings), {"max_tables": max_tables})


def plan_reindex(report: MaintenanceReport, tables: Sequence[str], *, max_tables: int = 10) -> Plan:
    """REINDEX INDEX CONCURRENTLY for the indexes of ``tables`` (all valid ones when named
    explicitly by the caller), or for the bloated indexes the report flags."""
    if tables:
        check_limit("max_tables", len(tables), max_tables)
        wanted = set(tables)
        indexes = [i for i in report.indexes if i.table_name in wanted and i.valid]
    else:
        indexes = list(report.bloated_indexes)
        check_limit("max_tables", len({i.table_name for i in indexes}), max_tables)
    changes = tuple(
        Change(
            REINDEX_ACTION,
            i.name,
            f"rebuild without blocking writes ({i.size_bytes / 2**20:.1f} MB"
            + (f", ~{i.bloat_pct:.0f}% estimated bloat)" if i.bloat_pct is not None else ")"),
            {"schema": i.schema, "index": i.index, "table": i.table, "size_before": i.size_bytes},
        )
        for i in indexes
    )
    warnings = [REINDEX_WHY]
    if not changes:
        warnings.append("no index to rebuild (none flagged as bloated, or the tables have none)")
    holders = [s.pid for s in report.activity.long_queries + report.activity.idle_in_transaction]
    if holders and changes:
        warnings.append(
            f"sessions {holders} hold transactions open: REINDEX CONCURRENTLY waits for them "
            f"(at most {REINDEX_LOCK_TIMEOUT_MS // 1000}s per wait, then it fails cleanly)"
        )
    return Plan("REINDEX INDEX CONCURRENTLY", changes, tuple(warnings), {"max_tables": max_tables})


# --- bulk termination -----------------------------------------------------------------------


def plan_terminate_long(activity: act.Activity, *, max_terminations: int = 5) -> Plan:
    """pg_terminate_backend for the client queries running longer than the snapshot's threshold,
    longest first, at most ``max_terminations``; sessions that must never be terminated are
    named in the warnings (this runbook's own, other opslib runs, replication, background)."""
    if max_terminations < 0:
        raise BadInputError("max_terminations must be >= 0 (0 plans nothing).")
    limit = activity.long_query_seconds
    long_running = sorted(
        (s for s in activity.sessions if s.state == "active" and (s.query_age_s or 0) > limit),
        key=lambda s: -(s.query_age_s or 0),
    )
    changes: list[Change] = []
    warnings: list[str] = []
    for s in long_running:
        why = act.why_not_terminable(s)
        if why:
            warnings.append(f"{s.label} runs {s.query_age_s or 0:.0f}s but is excluded: {why}")
            continue
        if len(changes) >= max_terminations:
            warnings.append(
                f"{s.label} runs {s.query_age_s or 0:.0f}s but is beyond max_terminations={max_terminations}"
            )
            continue
        changes.append(
            Change(
                TERMINATE_ACTION,
                s.label,
                f"end the query running {s.query_age_s or 0:.0f}s and roll back its transaction",
                {
                    "pid": s.pid,
                    "backend_start": s.backend_start,
                    "usename": s.usename,
                    "datname": s.datname,
                },
            )
        )
    if not long_running:
        warnings.append(f"no query runs longer than {limit}s: nothing to terminate")
    return Plan(
        f"Terminate queries running longer than {limit}s",
        tuple(changes),
        tuple(warnings),
        {"max_terminations": max_terminations},
    )


# --- slow-statement logging -----------------------------------------------------------------


@dataclass(frozen=True)
class LogSetting:
    """log_min_duration_statement now, and where its value comes from."""

    setting: str  # milliseconds, "-1" = off
    source: str
    sourcefile: str

    @property
    def by_alter_system(self) -> bool:
        return self.sourcefile.endswith("postgresql.auto.conf")


def log_setting(*, conn) -> LogSetting:
    row = conn.execute(
        "SELECT setting, source, coalesce(sourcefile, '') FROM pg_settings WHERE name = %s",
        (SETTING,),
    ).fetchone()
    return LogSetting(str(row[0]), str(row[1]), str(row[2]))


def plan_log_slow(current: LogSetting, *, log_min_duration_ms: int, revert_minutes: float) -> Plan:
    """Turn slow-statement logging on (with its revert, now or after ``revert_minutes`` in this
    run), or revert it (``log_min_duration_ms=-1``: ALTER SYSTEM RESET)."""
    ms = int(log_min_duration_ms)
    reset = Change(
        LOG_SLOW_RESET_ACTION,
        SETTING,
        "ALTER SYSTEM RESET + pg_reload_conf(): back to postgresql.conf's value (or the default, off)",
        {"delay_s": 0, "from": current.setting},
    )
    if ms == -1:
        warnings = ()
        if not current.by_alter_system:
            warnings = (
                f"{SETTING} is {current.setting} from {current.source}, not from ALTER SYSTEM: "
                "the reset changes nothing",
            )
        return Plan("Revert slow-statement logging", (reset,), warnings)
    changes = [
        Change(
            LOG_SLOW_ACTION,
            SETTING,
            f"log every statement slower than {ms} ms (now {current.setting}); "
            "ALTER SYSTEM SET + pg_reload_conf(), no restart",
            {"ms": ms, "previous": current.setting, "previous_source": current.source},
        )
    ]
    warnings = []
    if current.by_alter_system:
        warnings.append(
            f"{SETTING} was already set by ALTER SYSTEM ({current.setting}): the revert RESETs "
            "it to postgresql.conf's value, not to that one"
        )
    if revert_minutes > 0:
        delay = round(float(revert_minutes) * 60, 1)
        changes.append(
            Change(
                LOG_SLOW_RESET_ACTION,
                SETTING,
                f"after {revert_minutes:g} min, in this run: ALTER SYSTEM RESET + pg_reload_conf()",
                {"delay_s": delay, "from": str(ms)},
            )
        )
    else:
        warnings.append(
            "no automatic revert (log_revert_minutes=0): revert later with action=log-slow "
            "and log_min_duration_ms=-1"
        )
    return Plan(
        "Log slow statements",
        tuple(changes),
        tuple(warnings),
        {"log_revert_minutes": revert_minutes},
    )


# --- handlers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _limits(conn, *, statement_ms: int, lock_ms: int) -> Iterator[None]:
    """Session-level statement and lock timeouts for one maintenance statement, then back."""
    from psycopg import sql

    conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(statement_ms))))
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(int(lock_ms))))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("RESET statement_timeout")
            conn.execute("RESET lock_timeout")


@contextlib.contextmanager
def _verbose(conn) -> Iterator[list[str]]:
    """Collect the INFO/NOTICE lines a VERBOSE command sends."""
    lines: list[str] = []

    def handler(diag) -> None:
        text = f"{diag.severity or 'INFO'}: {diag.message_primary or ''}"
        if diag.message_detail:
            text += "\n  " + diag.message_detail.replace("\n", "\n  ")
        lines.append(text)

    conn.add_notice_handler(handler)
    try:
        yield lines
    finally:
        conn.remove_notice_handler(handler)


def _dead_tuples(conn, schema: str, table: str) -> int | None:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
        (schema, table),
    ).fetchone()
    return None if row is None else int(row[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _keep(name: str, lines: list[str]) -> str:
    """Write the verbose output to an evidence attachment; returns its file name."""
    path = attachment_path(name)
    path.write_text("\n".join(lines) + "\n")
    return path.name


@executors.register(VACUUM_ACTION, ANALYZE_ACTION)
def maintain_table(change: Change, *, conn) -> ChangeOutcome:
    """VACUUM (VERBOSE, ANALYZE) or ANALYZE (VERBOSE) one table; dead tuples before and after."""
    import psycopg
    from psycopg import sql

    p = change.params
    schema, table = str(p["schema"]), str(p["table"])
    ident = sql.Identifier(schema, table)
    before = _dead_tuples(conn, schema, table)
    if before is None:
        return ChangeOutcome(change.action, change.target, ChangeStatus.SKIPPED, "table is gone")
    vacuum = change.action == VACUUM_ACTION
    stmt = sql.SQL("VACUUM (VERBOSE, ANALYZE) {}" if vacuum else "ANALYZE (VERBOSE) {}").format(
        ident
    )
    t0 = time.monotonic()
    try:
        with (
            _limits(conn, statement_ms=MAINTENANCE_TIMEOUT_MS, lock_ms=VACUUM_LOCK_TIMEOUT_MS),
            _verbose(conn) as lines,
        ):
            conn.execute(stmt)
    except psycopg.Error as exc:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            _first_line(exc),
            {"dead_before": before},
        )
    seconds = round(time.monotonic() - t0, 2)
    after = _dead_tuples(conn, schema, table)
    kind = "vacuum" if vacuum else "analyze"
    attachment = _keep(f"{kind}-{schema}.{table}.txt", lines)
    held = ""
    if vacuum and after and any("not yet removable" in line for line in lines):
        held = (
            f"; {after} dead tuples are not yet removable: a transaction older than them is "
            "still open somewhere on the server (a long-running query, or a session idle in "
            "transaction); end it, then vacuum again"
        )
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"{'VACUUM' if vacuum else 'ANALYZE'} took {seconds}s; dead tuples {before} -> {after}{held}",
        {
            "table": change.target,
            "dead_before": before,
            "dead_after": after,
            "seconds": seconds,
            "verbose": lines[:VERBOSE_LINES],
            "attachment": attachment,
        },
    )


def _leftovers(conn, schema: str, index: str) -> list[str]:
    """Invalid ``<index>_ccnew*`` copies a failed concurrent rebuild leaves behind."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
        "JOIN pg_namespace ns ON ns.oid = c.relnamespace "
        "WHERE ns.nspname = %s AND NOT i.indisvalid AND c.relname LIKE %s",
        (schema, index.replace("_", r"\_") + r"\_ccnew%"),
    ).fetchall()
    return [r[0] for r in rows]


@executors.register(REINDEX_ACTION)
def reindex(change: Change, *, conn) -> ChangeOutcome:
    """REINDEX (VERBOSE) INDEX CONCURRENTLY one index; a failed rebuild's invalid copy is dropped."""
    import psycopg
    from psycopg import sql

    p = change.params
    schema, index = str(p["schema"]), str(p["index"])
    row = conn.execute(
        "SELECT i.indisvalid, pg_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_namespace ns ON ns.oid = c.relnamespace "
        "WHERE ns.nspname = %s AND c.relname = %s",
        (schema, index),
    ).fetchone()
    if row is None:
        return ChangeOutcome(change.action, change.target, ChangeStatus.SKIPPED, "index is gone")
    before = int(row[1])
    t0 = time.monotonic()
    try:
        with (
            _limits(conn, statement_ms=MAINTENANCE_TIMEOUT_MS, lock_ms=REINDEX_LOCK_TIMEOUT_MS),
            _verbose(conn) as lines,
        ):
            conn.execute(
                sql.SQL("REINDEX (VERBOSE) INDEX CONCURRENTLY {}").format(
                    sql.Identifier(schema, index)
                )
            )
    except psycopg.Error as exc:
        dropped = []
        for name in _leftovers(conn, schema, index):
            with contextlib.suppress(psycopg.Error):  # reported below either way
                conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                        sql.Identifier(schema, name)
                    )
                )
                dropped.append(name)
        left = _leftovers(conn, schema, index)
        detail = _first_line(exc) + (f"; dropped the invalid copy {dropped}" if dropped else "")
        if left:
            detail += f"; invalid copies still present, drop them: {left}"
        return ChangeOutcome(
            change.action, change.target, ChangeStatus.FAILED, detail, {"size_before": before}
        )
    seconds = round(time.monotonic() - t0, 2)
    after = int(
        conn.execute(
            "SELECT pg_relation_size(to_regclass(%s))", (f'"{schema}"."{index}"',)
        ).fetchone()[0]
        or 0
    )
    attachment = _keep(f"reindex-{schema}.{index}.txt", lines)
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"rebuilt concurrently in {seconds}s; {before / 2**20:.2f} MB -> {after / 2**20:.2f} MB",
        {
            "size_before": before,
            "size_after": after,
            "seconds": seconds,
            "verbose": lines[:VERBOSE_LINES],
            "attachment": attachment,
        },
    )


def _reload_and_wait(conn, done) -> LogSetting:
    conn.execute("SELECT pg_reload_conf()")
    return poll_until(
        lambda: (done(s := log_setting(conn=conn)), s, f"{SETTING}={s.setting}"),
        timeout_s=RELOAD_WAIT_S,
        poll_s=0.2,
        desc="waiting for pg_reload_conf",
        on_timeout=lambda s, _: (
            f"the server did not pick up the new {SETTING} within {RELOAD_WAIT_S:.0f}s "
            f"(still {s.setting} from {s.sourcefile or s.source}); check its log"
        ),
    )


_PRIVILEGE_HINT = (
    "ALTER SYSTEM needs a superuser or GRANT ALTER SYSTEM ON PARAMETER log_min_duration_statement; "
    "on RDS/Aurora, where ALTER SYSTEM is not offered, change the DB parameter group instead"
)


@executors.register(LOG_SLOW_ACTION)
def set_log_slow(change: Change, *, conn) -> ChangeOutcome:
    """ALTER SYSTEM SET log_min_duration_statement + pg_reload_conf(); waits until it is in effect."""
    import psycopg
    from psycopg import sql

    ms = int(change.params["ms"])
    try:
        conn.execute(
            sql.SQL("ALTER SYSTEM SET log_min_duration_statement = {}").format(sql.Literal(ms))
        )
        now = _reload_and_wait(conn, lambda s: s.setting == str(ms))
    except psycopg.errors.InsufficientPrivilege as exc:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            f"{_first_line(exc)}: {_PRIVILEGE_HINT}",
        )
    except psycopg.Error as exc:
        return ChangeOutcome(change.action, change.target, ChangeStatus.FAILED, _first_line(exc))
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"{SETTING} {change.params.get('previous')} -> {now.setting} ms; revert: action=log-slow "
        "with log_min_duration_ms=-1",
        {"ms": ms, "previous": change.params.get("previous"), "sourcefile": now.sourcefile},
    )


@executors.register(LOG_SLOW_RESET_ACTION)
def reset_log_slow(
    change: Change, *, conn, progress: ProgressFactory = default_progress
) -> ChangeOutcome:
    """After ``delay_s`` (0: now), ALTER SYSTEM RESET log_min_duration_statement + pg_reload_conf()."""
    import psycopg

    delay = float(change.params.get("delay_s", 0) or 0)
    if delay > 0:
        t0 = time.monotonic()
        poll_until(
            lambda: (time.monotonic() - t0 >= delay, None, "slow statements are being logged"),
            timeout_s=delay + 1,
            poll_s=min(5.0, delay),
            desc=f"revert {SETTING} in {delay:.0f}s",
            on_timeout=lambda *_: "",
            progress=progress,
        )
    try:
        conn.execute("ALTER SYSTEM RESET log_min_duration_statement")
        now = _reload_and_wait(conn, lambda s: not s.by_alter_system)
    except psycopg.errors.InsufficientPrivilege as exc:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            f"{_first_line(exc)}: {_PRIVILEGE_HINT}",
        )
    except psycopg.Error as exc:
        return ChangeOutcome(change.action, change.target, ChangeStatus.FAILED, _first_line(exc))
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"{SETTING} reverted to {now.setting} (from {now.source})",
        {"setting": now.setting, "source": now.source, "reverted": True},
    )
