"""PostgreSQL maintenance report: what the weekly database review and the maintenance actions read.

The table-maintenance and query-performance procedures run ``VACUUM (VERBOSE, ANALYZE)``,
``ANALYZE``, ``REINDEX`` and ``pg_stat_statements`` by hand, on tables someone remembered.
This report says which tables actually need it and why: connections by state against
``max_connections``, long-running and idle-in-transaction sessions, the statements that cost
the most (by mean and by total time, their text stripped of literals), tables by dead-tuple
percentage with their last (auto)vacuum and analyze, estimated table and index bloat, unused
indexes, transaction-ID wraparound age, and replication slots holding WAL.

Everything reads only, in one READ ONLY transaction with a statement and a lock timeout (the
same limits as :mod:`opslib.pg.activity`, whose session snapshot it reuses). The gated actions
that follow from it live in :mod:`opslib.pg.maintenance_actions`.

Bloat is an *estimate* from the planner statistics (``reltuples``, ``pg_stats.avg_width``,
page and tuple header sizes), the same approach as the widely used bloat-estimation queries:
cheap, lock-free, and good enough to rank; ``pgstattuple`` gives the exact figure at the cost of
reading the whole relation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from opslib.core.findings import Finding, Severity
from opslib.pg import activity as act
from opslib.pg.sqltext import redact_sql

SOURCE = "postgres"

#: the monitoring thresholds for database connections (% of max_connections)
CONN_WARN_PCT = act.CONN_WARN_PCT
CONN_CRIT_PCT = act.CONN_CRIT_PCT
#: a table is flagged only with at least this many dead tuples (tiny tables are noise)
MIN_DEAD_TUPLES = 100
#: estimated index bloat worth a REINDEX (percent of the index) and the least size that matters
INDEX_BLOAT_PCT = 30.0
INDEX_BLOAT_MIN_BYTES = 1 << 20
#: one statement taking more than this share of the database's statement time dominates it
DOMINANT_SHARE_PCT = 50.0
#: transaction-ID wraparound: the hard limit is 2^31; PostgreSQL stops assigning XIDs near it
XID_LIMIT = 2**31
XID_CRIT_AGE = 1_500_000_000
#: an inactive replication slot holding more WAL than this fills the disk
SLOT_WARN_BYTES = 1 << 30
TOP_STATEMENTS = 10
MAX_TABLE_ROWS = 200
QUERY_TEXT_MAX = 300


# --- statement text without literals --------------------------------------------------------

# --- typed rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableStat:
    """One user table: live and dead tuples, last maintenance, size and estimated bloat."""

    schema: str
    table: str
    live: int
    dead: int
    last_vacuum: str
    last_autovacuum: str
    last_analyze: str
    last_autoanalyze: str
    size_bytes: int
    bloat_bytes: int | None  # None: no statistics to estimate from (never analyzed)
    autovacuum_enabled: bool
    xid_age: int

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def dead_pct(self) -> float:
        total = self.live + self.dead
        return 100.0 * self.dead / total if total else 0.0

    @property
    def bloat_pct(self) -> float | None:
        if self.bloat_bytes is None or not self.size_bytes:
            return None
        return 100.0 * self.bloat_bytes / self.size_bytes


@dataclass(frozen=True)
class IndexStat:
    """One index: size, scans since the statistics were reset, estimated bloat."""

    schema: str
    table: str
    index: str
    method: str
    size_bytes: int
    scans: int
    unique: bool
    primary: bool
    valid: bool
    bloat_bytes: int | None

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.index}"

    @property
    def table_name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def bloat_pct(self) -> float | None:
        if self.bloat_bytes is None or not self.size_bytes:
            return None
        return 100.0 * self.bloat_bytes / self.size_bytes

    @property
    def unused(self) -> bool:
        """Never scanned and not enforcing a constraint: a candidate to drop (after review)."""
        return self.scans == 0 and not self.unique and not self.primary


@dataclass(frozen=True)
class Statement:
    """One pg_stat_statements row of this database, its text without literals."""

    queryid: int
    calls: int
    mean_ms: float
    total_ms: float
    rows: int
    query: str

    def to_dict(self) -> dict:
        return {
            "queryid": self.queryid,
            "calls": self.calls,
            "mean_ms": round(self.mean_ms, 3),
            "total_ms": round(self.total_ms, 1),
        }


@dataclass(frozen=True)
class DatabaseAge:
    """Transaction-ID age of one database (``age(datfrozenxid)``)."""

    database: str
    age: int
    freeze_max_age: int

    @property
    def pct_of_limit(self) -> float:
        return 100.0 * self.age / XID_LIMIT


@dataclass(frozen=True)
class ReplicationSlot:
    """A replication slot and how much WAL it keeps on disk."""

    name: str
    slot_type: str
    active: bool
    retained_bytes: int
    wal_status: str


@dataclass(frozen=True)
class MaintenanceReport:
    """The read-only maintenance picture of one database (and its server)."""

    database: str
    activity: act.Activity
    states: tuple[tuple[str, int], ...]  # (state, client connections) server-wide
    tables: tuple[TableStat, ...]  # most dead tuples first
    indexes: tuple[IndexStat, ...]
    by_mean: tuple[Statement, ...]
    by_total: tuple[Statement, ...]
    statements_note: str
    statements_total_ms: float
    databases: tuple[DatabaseAge, ...]
    slots: tuple[ReplicationSlot, ...]
    stats_reset: str
    dead_tuple_pct: float
    findings: tuple[Finding, ...] = field(default=())

    @property
    def flagged(self) -> tuple[TableStat, ...]:
        """Tables at or above ``dead_tuple_pct`` dead tuples, most dead tuples first."""
        return tuple(
            t
            for t in self.tables
            if t.dead >= MIN_DEAD_TUPLES and t.dead_pct >= self.dead_tuple_pct
        )

    @property
    def bloated_indexes(self) -> tuple[IndexStat, ...]:
        return tuple(
            i
            for i in self.indexes
            if i.valid
            and i.method == "btree"
            and (i.bloat_pct or 0) >= INDEX_BLOAT_PCT
            and i.size_bytes >= INDEX_BLOAT_MIN_BYTES
        )

    def table(self, name: str) -> TableStat | None:
        return next((t for t in self.tables if t.name == name), None)

    def dead_tuples(self, names: Sequence[str]) -> dict[str, int]:
        return {n: (t.dead if (t := self.table(n)) else 0) for n in names}

    def summary(self) -> list[dict[str, str]]:
        """[{severity, title}] of the findings, most urgent first, for the evidence record."""
        from opslib.core.findings import rank

        return [{"severity": f.severity.value, "title": f.title} for f in rank(self.findings)]

    def top_statements(self) -> list[dict]:
        """[{queryid, calls, mean_ms, total_ms}] by total time, for the evidence record."""
        return [s.to_dict() for s in self.by_total]

    # frames for the notebook ------------------------------------------------------------
    def connections_frame(self):
        import pandas as pd

        a = self.activity
        rows = [{"state": s, "connections": n} for s, n in self.states]
        rows.append({"state": "TOTAL (client backends)", "connections": a.connections})
        frame = pd.DataFrame(rows, columns=["state", "connections"])
        frame["pct_of_max"] = (100.0 * frame["connections"] / max(a.max_connections, 1)).round(1)
        return frame

    def statements_frame(self, order: str = "total"):
        import pandas as pd

        rows = self.by_total if order == "total" else self.by_mean
        total = self.statements_total_ms or 0.0
        return pd.DataFrame(
            [
                {
                    "queryid": s.queryid,
                    "calls": s.calls,
                    "mean_ms": round(s.mean_ms, 2),
                    "total_ms": round(s.total_ms, 1),
                    "share_pct": round(100.0 * s.total_ms / total, 1) if total else None,
                    "rows": s.rows,
                    "query": s.query,
                }
                for s in rows
            ],
            columns=["queryid", "calls", "mean_ms", "total_ms", "share_pct", "rows", "query"],
        )

    def tables_frame(self, limit: int = 30):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "table": t.name,
                    "flagged": t in self.flagged,
                    "dead_pct": round(t.dead_pct, 1),
                    "dead": t.dead,
                    "live": t.live,
                    "est_bloat_pct": None if t.bloat_pct is None else round(t.bloat_pct, 1),
                    "size_mb": round(t.size_bytes / 2**20, 2),
                    "autovacuum": "on" if t.autovacuum_enabled else "OFF",
                    "last_vacuum": t.last_vacuum or "never",
                    "last_autovacuum": t.last_autovacuum or "never",
                    "last_analyze": t.last_analyze or "never",
                    "last_autoanalyze": t.last_autoanalyze or "never",
                }
                for t in self.tables[:limit]
            ]
        )

    def indexes_frame(self):
        import pandas as pd

        bloated = set(self.bloated_indexes)
        rows = [
            {
                "index": i.name,
                "table": i.table_name,
                "size_mb": round(i.size_bytes / 2**20, 2),
                "est_bloat_pct": None if i.bloat_pct is None else round(i.bloat_pct, 1),
                "scans": i.scans,
                "unused": i.unused,
                "reindex": i in bloated,
                "valid": i.valid,
            }
            for i in self.indexes
            if i in bloated or i.unused or not i.valid
        ]
        return pd.DataFrame(
            rows,
            columns=[
                "index",
                "table",
                "size_mb",
                "est_bloat_pct",
                "scans",
                "unused",
                "reindex",
                "valid",
            ],
        )

    def wraparound_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "database": d.database,
                    "xid_age": d.age,
                    "pct_of_limit": round(d.pct_of_limit, 2),
                    "autovacuum_freeze_max_age": d.freeze_max_age,
                }
                for d in self.databases
            ],
            columns=["database", "xid_age", "pct_of_limit", "autovacuum_freeze_max_age"],
        )

    def slots_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "slot": s.name,
                    "type": s.slot_type,
                    "active": s.active,
                    "retained_mb": round(s.retained_bytes / 2**20, 1),
                    "wal_status": s.wal_status,
                }
                for s in self.slots
            ],
            columns=["slot", "type", "active", "retained_mb", "wal_status"],
        )


# --- reading --------------------------------------------------------------------------------

_STATES_SQL = """
SELECT coalesce(nullif(state, ''), 'unknown'), count(*)
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC, 1
"""

_TABLES_SQL = """
SELECT s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       pg_table_size(s.relid), c.relpages, c.reltuples, w.width,
       coalesce(c.reloptions, '{}'::text[]), age(c.relfrozenxid)
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
LEFT JOIN (SELECT schemaname, tablename, sum(avg_width)::float8 AS width
           FROM pg_stats GROUP BY 1, 2) w
       ON w.schemaname = s.schemaname AND w.tablename = s.relname
ORDER BY s.n_dead_tup DESC, s.schemaname, s.relname
LIMIT %(limit)s
"""

_INDEXES_SQL = """
SELECT s.schemaname, s.relname, s.indexrelname, am.amname, pg_relation_size(s.indexrelid),
       s.idx_scan, i.indisunique, i.indisprimary, i.indisvalid, c.relpages, c.reltuples,
       (SELECT sum(st.avg_width)::float8 FROM pg_attribute a
          JOIN pg_stats st ON st.schemaname = s.schemaname AND st.tablename = s.relname
                           AND st.attname = a.attname
         WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey))
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
JOIN pg_class c ON c.oid = s.indexrelid
JOIN pg_am am ON am.oid = c.relam
ORDER BY pg_relation_size(s.indexrelid) DESC
LIMIT %(limit)s
"""

_DATABASES_SQL = """
SELECT datname, age(datfrozenxid), current_setting('autovacuum_freeze_max_age')::bigint
FROM pg_database WHERE datallowconn ORDER BY 2 DESC
"""

_SLOTS_SQL = """
SELECT slot_name, slot_type, active,
       coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                     ELSE pg_current_wal_lsn() END, restart_lsn), 0)::bigint,
       coalesce(wal_status, '')
FROM pg_replication_slots ORDER BY 4 DESC
"""


def _iso(ts) -> str:
    return ts.isoformat(timespec="seconds") if ts is not None else ""


def _fillfactor(options: Sequence[str], default: int) -> int:
    for o in options:
        if o.startswith("fillfactor="):
            return int(o.split("=", 1)[1])
    return default


def _table_bloat(relpages, reltuples, width, block, fillfactor) -> int | None:
    """Estimated bloat in bytes: pages on disk minus the pages the live rows need."""
    if width is None or reltuples is None or reltuples < 0 or not relpages:
        return None
    row = 24 + 4 + float(width)  # tuple header + line pointer + data
    per_page = max((block - 24) * fillfactor / 100.0 // row, 1)
    expected = math.ceil(reltuples / per_page)
    return max(int(relpages) - expected, 0) * block


def _index_bloat(method, relpages, reltuples, width, block) -> int | None:
    """B-tree estimate: leaf pages the entries need at the default 90 % fill, plus the meta page."""
    if method != "btree" or width is None or reltuples is None or reltuples < 0 or not relpages:
        return None
    entry = 8 + 4 + float(width)  # index tuple header + line pointer + key
    per_page = max((block - 24 - 16) * 0.9 // entry, 1)
    expected = math.ceil(reltuples / per_page) + 1
    return max(int(relpages) - expected, 0) * block


def _statements(cur, limit: int) -> tuple[tuple[Statement, ...], tuple[Statement, ...], str, float]:
    """Top statements of this database by mean and by total time, or a note saying why none."""
    import psycopg
    from psycopg import sql

    cur.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_stat_statements'"
    )
    row = cur.fetchone()
    if row is None:
        return (
            (),
            (),
            (
                "pg_stat_statements is not installed in this database: CREATE EXTENSION "
                "pg_stat_statements (it needs shared_preload_libraries = 'pg_stat_statements')."
            ),
            0.0,
        )
    view = sql.Identifier(row[0], "pg_stat_statements")
    for mean, total in (("mean_exec_time", "total_exec_time"), ("mean_time", "total_time")):
        where = sql.SQL(
            "FROM {view} WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).format(view=view)
        try:
            with cur.connection.transaction():  # a savepoint: a failure must not end the report
                out = []
                for order in (mean, total):
                    cur.execute(
                        sql.SQL(
                            "SELECT coalesce(queryid, 0), calls, {mean}, {total}, rows, left(query, %s) "
                            "{where} ORDER BY {order} DESC LIMIT %s"
                        ).format(
                            mean=sql.Identifier(mean),
                            total=sql.Identifier(total),
                            where=where,
                            order=sql.Identifier(order),
                        ),
                        (QUERY_TEXT_MAX, int(limit)),
                    )
                    out.append(
                        tuple(
                            Statement(
                                int(r[0]),
                                int(r[1]),
                                float(r[2]),
                                float(r[3]),
                                int(r[4]),
                                redact_sql(r[5]),
                            )
                            for r in cur.fetchall()
                        )
                    )
                cur.execute(
                    sql.SQL("SELECT coalesce(sum({total}), 0)::float8 ").format(
                        total=sql.Identifier(total)
                    )
                    + where
                )
                grand = float(cur.fetchone()[0])
        except psycopg.errors.UndefinedColumn:
            continue
        except psycopg.Error as exc:
            note = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return (), (), f"pg_stat_statements is installed but not readable: {note}", 0.0
        return out[0], out[1], "", grand
    return (), (), "pg_stat_statements has neither mean_exec_time nor mean_time columns", 0.0


def read_report(
    *,
    conn,
    dead_tuple_pct: float = 20.0,
    long_query_seconds: int = 300,
    top_statements: int = TOP_STATEMENTS,
    statement_timeout_ms: int = act.STATEMENT_TIMEOUT_MS,
) -> MaintenanceReport:
    """Read the whole maintenance picture in one READ ONLY transaction (plus the session snapshot)."""
    from psycopg.rows import tuple_row

    activity = act.snapshot(
        conn=conn, long_query_seconds=long_query_seconds, top_statements=top_statements
    )
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        act.read_only_limits(cur, statement_timeout_ms)
        cur.execute(
            "SELECT current_database(), current_setting('block_size')::int, "
            "(SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())"
        )
        dbname, block, reset = cur.fetchone()
        cur.execute(_STATES_SQL)
        states = tuple((str(r[0]), int(r[1])) for r in cur.fetchall())
        cur.execute(_TABLES_SQL, {"limit": MAX_TABLE_ROWS})
        tables = tuple(
            TableStat(
                schema=r[0],
                table=r[1],
                live=int(r[2] or 0),
                dead=int(r[3] or 0),
                last_vacuum=_iso(r[4]),
                last_autovacuum=_iso(r[5]),
                last_analyze=_iso(r[6]),
                last_autoanalyze=_iso(r[7]),
                size_bytes=int(r[8] or 0),
                bloat_bytes=_table_bloat(r[9], r[10], r[11], block, _fillfactor(r[12], 100)),
                autovacuum_enabled="autovacuum_enabled=false" not in [o.lower() for o in r[12]],
                xid_age=int(r[13] or 0),
            )
            for r in cur.fetchall()
        )
        cur.execute(_INDEXES_SQL, {"limit": MAX_TABLE_ROWS})
        indexes = tuple(
            IndexStat(
                schema=r[0],
                table=r[1],
                index=r[2],
                method=r[3],
                size_bytes=int(r[4] or 0),
                scans=int(r[5] or 0),
                unique=bool(r[6]),
                primary=bool(r[7]),
                valid=bool(r[8]),
                bloat_bytes=_index_bloat(r[3], r[9], r[10], r[11], block),
            )
            for r in cur.fetchall()
        )
        by_mean, by_total, note, grand = _statements(cur, top_statements)
        cur.execute(_DATABASES_SQL)
        dbs = tuple(DatabaseAge(r[0], int(r[1]), int(r[2])) for r in cur.fetchall())
        cur.execute(_SLOTS_SQL)
        slots = tuple(
            ReplicationSlot(r[0], r[1], bool(r[2]), int(r[3]), r[4]) for r in cur.fetchall()
        )
    report = MaintenanceReport(
        database=str(dbname),
        activity=activity,
        states=states,
        tables=tables,
        indexes=indexes,
        by_mean=by_mean,
        by_total=by_total,
        statements_note=note,
        statements_total_ms=grand,
        databases=dbs,
        slots=slots,
        stats_reset=_iso(reset),
        dead_tuple_pct=float(dead_tuple_pct),
    )
    return replace(report, findings=tuple(findings(report)))


# --- what it means --------------------------------------------------------------------------


def findings(r: MaintenanceReport) -> list[Finding]:
    """The report's problems, each with the next action (the runbook's own actions first)."""
    out: list[Finding] = []
    a = r.activity
    pct = a.connection_pct
    sev = (
        Severity.CRITICAL
        if pct >= CONN_CRIT_PCT
        else Severity.WARNING
        if pct >= CONN_WARN_PCT
        else Severity.OK
    )
    out.append(
        Finding(
            sev,
            f"PostgreSQL connections at {pct:.0f}% of max_connections",
            SOURCE,
            f"{a.connections} client connections / {a.max_connections}; "
            + ", ".join(f"{s} {n}" for s, n in r.states),
            ""
            if sev is Severity.OK
            else "Check the application's pool sizes; idle connections are the first to cut.",
        )
    )
    if a.long_queries:
        top = a.long_queries[0]
        out.append(
            Finding(
                Severity.WARNING,
                f"PostgreSQL: {len(a.long_queries)} query(ies) running longer than "
                f"{a.long_query_seconds}s",
                SOURCE,
                f"longest {top.label} for {top.query_age_s or 0:.0f}s: {redact_sql(top.query)[:120]!r}",
                "Look at the plan of the longest (EXPLAIN); if stuck, run action=terminate-long "
                "(never this runbook's own session, never replication or background workers).",
                {"pids": [s.pid for s in a.long_queries]},
            )
        )
    if a.idle_in_transaction:
        top = a.idle_in_transaction[0]
        out.append(
            Finding(
                Severity.WARNING,
                f"PostgreSQL: {len(a.idle_in_transaction)} session(s) idle in transaction",
                SOURCE,
                f"oldest {top.label} idle for {top.state_age_s or 0:.0f}s; it holds back VACUUM",
                "Fix the application's transaction handling; set idle_in_transaction_session_timeout.",
                {"pids": [s.pid for s in a.idle_in_transaction]},
            )
        )
    for t in r.flagged:
        off = "" if t.autovacuum_enabled else "; autovacuum is DISABLED on this table"
        out.append(
            Finding(
                Severity.WARNING,
                f"PostgreSQL: {t.name} has {t.dead_pct:.0f}% dead tuples",
                SOURCE,
                f"{t.dead} dead / {t.live} live; last vacuum {t.last_vacuum or 'never'}, "
                f"last autovacuum {t.last_autovacuum or 'never'}{off}",
                "Run action=vacuum (VACUUM (VERBOSE, ANALYZE); reads and writes continue)"
                + ("; re-enable autovacuum on the table" if not t.autovacuum_enabled else ""),
                {"table": t.name, "dead": t.dead},
            )
        )
    if r.by_total and r.statements_total_ms > 0:
        s = r.by_total[0]
        share = 100.0 * s.total_ms / r.statements_total_ms
        if share >= DOMINANT_SHARE_PCT and len(r.by_total) > 1:
            out.append(
                Finding(
                    Severity.WARNING,
                    f"PostgreSQL: one statement takes {share:.0f}% of the database's statement time",
                    SOURCE,
                    f"queryid {s.queryid}: {s.calls} calls, mean {s.mean_ms:.1f} ms: {s.query[:120]!r}",
                    "Review its plan and indexes (EXPLAIN (ANALYZE, BUFFERS)); to catch its slow "
                    "executions, run action=log-slow for a while.",
                    {"queryid": s.queryid},
                )
            )
    if r.statements_note:
        out.append(
            Finding(
                Severity.INFO, "PostgreSQL: top statements unavailable", SOURCE, r.statements_note
            )
        )
    for i in r.bloated_indexes:
        out.append(
            Finding(
                Severity.WARNING,
                f"PostgreSQL: index {i.name} is ~{i.bloat_pct:.0f}% bloat",
                SOURCE,
                f"{i.size_bytes / 2**20:.1f} MB on {i.table_name} (estimate from planner statistics)",
                "Run action=reindex (REINDEX INDEX CONCURRENTLY: writes continue).",
                {"index": i.name},
            )
        )
    unused = [i for i in r.indexes if i.unused]
    if unused:
        out.append(
            Finding(
                Severity.INFO,
                f"PostgreSQL: {len(unused)} index(es) never scanned",
                SOURCE,
                ", ".join(i.name for i in unused[:8])
                + f" (statistics since {r.stats_reset or 'the server started'})",
                "Review before dropping: check replicas and rare jobs; statistics are per server.",
            )
        )
    for d in r.databases:
        if d.age >= XID_CRIT_AGE:
            sev = Severity.CRITICAL
        elif d.age > d.freeze_max_age:
            sev = Severity.WARNING
        else:
            continue
        out.append(
            Finding(
                sev,
                f"PostgreSQL: database {d.database} at {d.pct_of_limit:.0f}% of the transaction-ID limit",
                SOURCE,
                f"age(datfrozenxid) {d.age:,} (autovacuum_freeze_max_age {d.freeze_max_age:,}; "
                "PostgreSQL stops accepting writes near 2^31)",
                "Find what holds the freeze back (long transactions, inactive slots, prepared "
                "transactions) and VACUUM (FREEZE) the oldest tables now.",
            )
        )
    for s in r.slots:
        if s.wal_status in ("lost", "unreserved") or (
            not s.active and s.retained_bytes >= SLOT_WARN_BYTES
        ):
            out.append(
                Finding(
                    Severity.CRITICAL if s.wal_status == "lost" else Severity.WARNING,
                    f"PostgreSQL: replication slot {s.name} holds {s.retained_bytes / 2**30:.1f} GiB of WAL",
                    SOURCE,
                    f"{s.slot_type}, {'active' if s.active else 'inactive'}, wal_status {s.wal_status or '?'}",
                    "Reconnect its consumer, or drop the slot (pg_drop_replication_slot) if it is abandoned.",
                )
            )
    return out
