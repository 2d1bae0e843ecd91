"""PostgreSQL activity: long-running queries, the blocking tree, idle transactions, connections.

The high database latency procedure: during a latency incident the on-call engineer needs to see
which session holds everyone up (the root of the ``pg_blocking_pids`` tree), which queries run
for too long, who sits idle in a transaction, how close connections are to ``max_connections``,
and the slowest statements (``pg_stat_statements`` when installed).

Everything here reads only, inside a READ ONLY transaction with a ``statement_timeout`` and a
short ``lock_timeout``, so the diagnosis never waits behind, or adds to, the pile-up it looks
at. Identifiers go through :mod:`psycopg.sql`, values are bound parameters.

The one change, ``pg_terminate_backend``, is planned by :func:`plan_terminate` (root blockers
only, at most ``max_terminations``, never this runbook's own session, never a background
worker) and performed by the executor from :func:`terminator` through ``opslib.safety.gate``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan, check_limit
from opslib.pg.sqltext import redact_sql

#: the action of the changes this module plans and performs (see opslib.core.executors)
TERMINATE_ACTION = "pg_terminate_backend"

SOURCE = "postgres"
QUERY_TEXT_MAX = 300
STATEMENT_TIMEOUT_MS = 10_000
LOCK_TIMEOUT_MS = 1_000
TERMINATE_WAIT_MS = 5_000

#: the monitoring thresholds: DB connections warning at 80 % of max, critical at 95 %
CONN_WARN_PCT = 80.0
CONN_CRIT_PCT = 95.0

#: sessions the runbook must never terminate: its own (application_name opslib/...)
OWN_APPLICATION_PREFIX = "opslib"

_IDLE_IN_TX = ("idle in transaction", "idle in transaction (aborted)")


@dataclass(frozen=True)
class PgSession:
    """One row of pg_stat_activity with the ages and blocking pids already computed."""

    pid: int
    usename: str
    application_name: str
    client_addr: str
    datname: str
    state: str
    backend_type: str
    wait_event_type: str
    wait_event: str
    backend_start: str  # ISO timestamp; with pid it identifies the session (pids are reused)
    xact_age_s: float | None
    query_age_s: float | None
    state_age_s: float | None
    query: str
    blocked_by: tuple[int, ...]
    superuser: bool
    is_self: bool

    @property
    def is_own(self) -> bool:
        """This runbook's session (or another opslib run's): never a termination target."""
        return self.is_self or self.application_name.startswith(OWN_APPLICATION_PREFIX)

    @property
    def label(self) -> str:
        who = f"{self.usename or '?'}@{self.datname or '?'}"
        app = f" app={self.application_name}" if self.application_name else ""
        return f"pid {self.pid} ({who}{app}, {self.state or self.backend_type})"


@dataclass(frozen=True)
class BlockingNode:
    """A session in the blocking tree: whom it waits for, whom it holds up, and whether it is a root."""

    pid: int
    depth: int  # 0 for a root blocker
    root: bool  # blocks others and waits for no one: terminating it releases the chain
    blocked_by: tuple[int, ...]
    blocks: tuple[int, ...]  # directly waiting on it
    blocks_total: int  # transitively waiting on it
    session: PgSession | None  # None when the pid is not in pg_stat_activity (prepared xact = 0)


@dataclass(frozen=True)
class StatementStat:
    """One pg_stat_statements row: the statement and its timings (milliseconds)."""

    query: str
    calls: int
    mean_ms: float
    total_ms: float


@dataclass(frozen=True)
class Activity:
    """A read-only snapshot of the server's activity, taken at ``collected_at``."""

    collected_at: str
    server_version: str
    sessions: tuple[PgSession, ...]
    long_queries: tuple[PgSession, ...]
    idle_in_transaction: tuple[PgSession, ...]
    blocking: tuple[BlockingNode, ...]  # depth-first from each root, most blocked first
    connections: int  # client backends
    max_connections: int
    statements: tuple[StatementStat, ...]
    statements_note: str  # why statements is empty, when it is
    long_query_seconds: int
    own_pid: int

    @property
    def root_blockers(self) -> tuple[int, ...]:
        """Root blocking pids, the one holding up the most sessions first."""
        return tuple(n.pid for n in self.blocking if n.root)

    @property
    def waiting(self) -> tuple[int, ...]:
        return tuple(n.pid for n in self.blocking if n.blocked_by)

    @property
    def connection_pct(self) -> float:
        return 100.0 * self.connections / self.max_connections if self.max_connections else 0.0

    def session(self, pid: int) -> PgSession | None:
        return next((s for s in self.sessions if s.pid == pid), None)

    def blocking_frame(self):
        """The blocking tree as a table: one row per session, indented by depth, roots marked."""
        import pandas as pd

        rows = []
        for n in self.blocking:
            s = n.session
            rows.append(
                {
                    "pid": n.pid,
                    "tree": "  " * n.depth + ("ROOT " if n.root else "└ ") + str(n.pid),
                    "root_blocker": n.root,
                    "blocks_total": n.blocks_total,
                    "waits_for": ",".join(map(str, n.blocked_by)),
                    "state": s.state if s else "prepared transaction" if n.pid == 0 else "gone",
                    "user": s.usename if s else "",
                    "application": s.application_name if s else "",
                    "xact_age_s": _round(s.xact_age_s) if s else None,
                    "wait": f"{s.wait_event_type}:{s.wait_event}"
                    if s and s.wait_event_type
                    else "",
                    "query": s.query if s else "",
                }
            )
        cols = [
            "pid",
            "tree",
            "root_blocker",
            "blocks_total",
            "waits_for",
            "state",
            "user",
            "application",
            "xact_age_s",
            "wait",
            "query",
        ]
        return pd.DataFrame(rows, columns=cols)

    def long_queries_frame(self):
        return _sessions_frame(self.long_queries, "query_age_s")

    def idle_frame(self):
        return _sessions_frame(self.idle_in_transaction, "state_age_s")

    def statements_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "mean_ms": round(s.mean_ms, 2),
                    "calls": s.calls,
                    "total_ms": round(s.total_ms, 2),
                    "query": s.query,
                }
                for s in self.statements
            ],
            columns=["mean_ms", "calls", "total_ms", "query"],
        )

    def connections_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "connections": self.connections,
                    "max_connections": self.max_connections,
                    "used_pct": round(self.connection_pct, 1),
                }
            ]
        )


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _sessions_frame(sessions: Iterable[PgSession], age: str):
    import pandas as pd

    rows = [
        {
            "pid": s.pid,
            age: _round(getattr(s, age)),
            "state": s.state,
            "user": s.usename,
            "database": s.datname,
            "application": s.application_name,
            "wait": f"{s.wait_event_type}:{s.wait_event}" if s.wait_event_type else "",
            "query": s.query,
        }
        for s in sessions
    ]
    return pd.DataFrame(
        rows, columns=["pid", age, "state", "user", "database", "application", "wait", "query"]
    )


_SESSIONS_SQL = """
SELECT a.pid, coalesce(a.usename, '') AS usename, coalesce(a.application_name, '') AS application_name,
       coalesce(host(a.client_addr), '') AS client_addr, coalesce(a.datname, '') AS datname,
       coalesce(a.state, '') AS state, coalesce(a.backend_type, '') AS backend_type,
       coalesce(a.wait_event_type, '') AS wait_event_type, coalesce(a.wait_event, '') AS wait_event,
       a.backend_start,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_age_s,
       extract(epoch FROM clock_timestamp() - a.query_start)::float8 AS query_age_s,
       extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS state_age_s,
       left(coalesce(a.query, ''), %(qlen)s) AS query,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END
           AS blocked_by,
       coalesce(r.rolsuper, false) AS superuser,
       a.pid = pg_backend_pid() AS is_self
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
ORDER BY a.pid
"""


def _set_local_limits(cur, statement_timeout_ms: int) -> None:
    """READ ONLY, with bounded statement and lock waits, for this transaction only."""
    read_only_limits(cur, statement_timeout_ms)


def read_only_limits(cur, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> None:
    """READ ONLY, with bounded statement and lock waits, for the current transaction only
    (every read-only PostgreSQL report uses it, so none waits behind the pile-up it reads)."""
    from psycopg import sql

    cur.execute("SET TRANSACTION READ ONLY")
    cur.execute(
        sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(int(statement_timeout_ms)))
    )
    cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(int(LOCK_TIMEOUT_MS))))


def _statements(cur, limit: int) -> tuple[tuple[StatementStat, ...], str]:
    """Top statements by mean time, or a note saying why there are none."""
    import psycopg
    from psycopg import sql

    cur.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = %s",
        ("pg_stat_statements",),
    )
    row = cur.fetchone()
    if row is None:
        return (), (
            "pg_stat_statements is not installed in this database: top statements by mean time "
            "are unavailable (CREATE EXTENSION pg_stat_statements; needs shared_preload_libraries)."
        )
    view = sql.Identifier(row[0], "pg_stat_statements")
    for mean, total in (("mean_exec_time", "total_exec_time"), ("mean_time", "total_time")):
        q = sql.SQL(
            "SELECT left(query, %s), calls, {mean}, {total} FROM {view} ORDER BY {mean} DESC LIMIT %s"
        ).format(mean=sql.Identifier(mean), total=sql.Identifier(total), view=view)
        try:
            with (
                cur.connection.transaction()
            ):  # savepoint: a failure here must not abort the snapshot
                cur.execute(q, (QUERY_TEXT_MAX, int(limit)))
                rows = cur.fetchall()
        except psycopg.errors.UndefinedColumn:
            continue
        except psycopg.Error as exc:
            return (
                (),
                f"pg_stat_statements is installed but not readable: {str(exc).strip().splitlines()[0]}",
            )
        return tuple(
            StatementStat(redact_sql(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows
        ), ""
    return (), "pg_stat_statements has neither mean_exec_time nor mean_time columns"


def _tree(sessions: tuple[PgSession, ...]) -> tuple[BlockingNode, ...]:
    by_pid = {s.pid: s for s in sessions}
    waits = {s.pid: s.blocked_by for s in sessions if s.blocked_by}
    blocks: dict[int, list[int]] = {}
    for waiter, holders in waits.items():
        for h in holders:
            blocks.setdefault(h, []).append(waiter)
    involved = set(waits) | set(blocks)
    if not involved:
        return ()

    def descendants(pid: int) -> set[int]:
        seen: set[int] = set()
        stack = list(blocks.get(pid, []))
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                stack.extend(blocks.get(p, []))
        return seen

    total = {p: len(descendants(p)) for p in involved}
    roots = [p for p in involved if p in blocks and not waits.get(p)]
    # a deadlock-like cycle has no root: take its most-blocking member as the entry point
    if not roots:
        roots = [max(involved, key=lambda p: total[p])]

    def age(p: int) -> float:
        s = by_pid.get(p)
        return (s.xact_age_s or 0.0) if s else 0.0

    roots.sort(key=lambda p: (-total[p], -age(p), p))
    out: list[BlockingNode] = []
    visited: set[int] = set()

    def walk(pid: int, depth: int) -> None:
        if pid in visited:
            return
        visited.add(pid)
        out.append(
            BlockingNode(
                pid=pid,
                depth=depth,
                root=depth == 0 and pid in blocks and not waits.get(pid),
                blocked_by=tuple(waits.get(pid, ())),
                blocks=tuple(sorted(blocks.get(pid, []))),
                blocks_total=total[pid],
                session=by_pid.get(pid),
            )
        )
        for child in sorted(blocks.get(pid, []), key=lambda p: (-total[p], p)):
            walk(child, depth + 1)

    for r in roots:
        walk(r, 0)
    for p in sorted(involved - visited):  # members of cycles not reached from a root
        walk(p, 1)
    return tuple(out)


def snapshot(
    *,
    conn,
    long_query_seconds: int = 300,
    top_statements: int = 10,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    all_databases: bool = False,
) -> Activity:
    """Read pg_stat_activity, the blocking tree, connections and top statements in one pass.

    Sessions, locks and long queries are those of the connected database (the procedure filters
    on ``datname``), unless ``all_databases``; connections count the whole server, because
    ``max_connections`` is server-wide.
    """
    if long_query_seconds < 0:
        raise BadInputError(
            "long_query_seconds must be >= 0 (seconds a query may run before it is 'long')."
        )
    from psycopg.rows import tuple_row

    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        _set_local_limits(cur, statement_timeout_ms)
        cur.execute(
            "SELECT current_setting('server_version'), current_setting('max_connections')::int, "
            "pg_backend_pid(), clock_timestamp(), current_database()"
        )
        version, max_conn, own_pid, now, dbname = cur.fetchone()
        cur.execute(_SESSIONS_SQL, {"qlen": QUERY_TEXT_MAX})
        sessions = tuple(
            PgSession(
                pid=r[0],
                usename=r[1],
                application_name=r[2],
                client_addr=r[3],
                datname=r[4],
                state=r[5],
                backend_type=r[6],
                wait_event_type=r[7],
                wait_event=r[8],
                backend_start=r[9].isoformat() if r[9] else "",
                xact_age_s=r[10],
                query_age_s=r[11],
                state_age_s=r[12],
                query=redact_sql(r[13]),
                blocked_by=tuple(int(p) for p in (r[14] or ())),
                superuser=bool(r[15]),
                is_self=bool(r[16]),
            )
            for r in cur.fetchall()
        )
        statements, note = _statements(cur, top_statements)

    all_clients = [s for s in sessions if s.backend_type == "client backend"]
    if not all_databases:
        # background workers have no database; keep them so the tree can name them
        sessions = tuple(s for s in sessions if s.datname in (dbname, ""))
    clients = [s for s in sessions if s.backend_type == "client backend"]
    long_q = sorted(
        (
            s
            for s in clients
            if not s.is_self
            and s.state not in ("idle", "")
            and s.state not in _IDLE_IN_TX
            and (s.query_age_s or 0) > long_query_seconds
        ),
        key=lambda s: -(s.query_age_s or 0),
    )
    idle_tx = sorted(
        (s for s in clients if s.state in _IDLE_IN_TX and not s.is_self),
        key=lambda s: -(s.state_age_s or 0),
    )
    return Activity(
        collected_at=now.astimezone(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        server_version=str(version),
        sessions=sessions,
        long_queries=tuple(long_q),
        idle_in_transaction=tuple(idle_tx),
        blocking=_tree(sessions),
        connections=len(all_clients),
        max_connections=int(max_conn),
        statements=statements,
        statements_note=note,
        long_query_seconds=int(long_query_seconds),
        own_pid=int(own_pid),
    )


def findings(activity: Activity) -> list[Finding]:
    """What the snapshot means, with the next action the procedures prescribe."""
    out: list[Finding] = []
    roots = [n for n in activity.blocking if n.root]
    for n in roots:
        s = n.session
        waiting = n.blocks_total
        desc = s.label if s else f"pid {n.pid}"
        age = f", transaction open {s.xact_age_s:.0f}s" if s and s.xact_age_s is not None else ""
        out.append(
            Finding(
                severity=Severity.CRITICAL,
                title=f"PostgreSQL: {desc} blocks {waiting} session(s)",
                source=SOURCE,
                evidence=(
                    f"root blocker of the pg_blocking_pids tree{age}; waiting pids "
                    f"{sorted(p for p in activity.waiting)}; last query: {(s.query if s else '')[:120]!r}"
                ),
                next_action=(
                    f"Kill the blocking PID {n.pid} (pg_terminate_backend): rerun with "
                    "terminate_blocking=True, dry_run=False, approved_by=<you>; then find why the "
                    "application left the transaction open."
                ),
                data={"pid": n.pid, "blocks_total": waiting},
            )
        )
    if activity.long_queries:
        top = activity.long_queries[0]
        out.append(
            Finding(
                severity=Severity.WARNING,
                title=f"PostgreSQL: {len(activity.long_queries)} query(ies) running longer than "
                f"{activity.long_query_seconds}s",
                source=SOURCE,
                evidence=f"longest {top.label} for {top.query_age_s:.0f}s: {top.query[:120]!r}",
                next_action="Check the plan of the longest query (EXPLAIN); terminate it only if it is stuck.",
                data={"pids": [s.pid for s in activity.long_queries]},
            )
        )
    if activity.idle_in_transaction:
        top = activity.idle_in_transaction[0]
        out.append(
            Finding(
                severity=Severity.WARNING,
                title=f"PostgreSQL: {len(activity.idle_in_transaction)} session(s) idle in transaction",
                source=SOURCE,
                evidence=f"oldest {top.label} idle for {top.state_age_s or 0:.0f}s",
                next_action="Fix connection handling in the application (commit/rollback); "
                "set idle_in_transaction_session_timeout.",
                data={"pids": [s.pid for s in activity.idle_in_transaction]},
            )
        )
    pct = activity.connection_pct
    sev = (
        Severity.CRITICAL
        if pct >= CONN_CRIT_PCT
        else Severity.WARNING
        if pct >= CONN_WARN_PCT
        else Severity.OK
    )
    out.append(
        Finding(
            severity=sev,
            title=f"PostgreSQL connections at {pct:.0f}% of max_connections",
            source=SOURCE,
            evidence=f"{activity.connections} client connections / max_connections {activity.max_connections}",
            next_action=""
            if sev is Severity.OK
            else "Check the application's connection pooling; raise capacity if load is legitimate.",
        )
    )
    if activity.statements_note:
        out.append(
            Finding(
                Severity.INFO,
                "PostgreSQL: top statements unavailable",
                SOURCE,
                activity.statements_note,
            )
        )
    elif activity.statements:
        s = activity.statements[0]
        out.append(
            Finding(
                Severity.INFO,
                f"PostgreSQL: slowest statement averages {s.mean_ms:.0f} ms",
                SOURCE,
                f"{s.calls} calls: {s.query[:120]!r}",
                "Review its plan and indexes.",
            )
        )
    return out


def _terminable(s: PgSession | None) -> str:
    """Why a session must not be terminated, or '' when it may be."""
    return why_not_terminable(s)


def why_not_terminable(s: PgSession | None) -> str:
    """Why a session must never be terminated (own, other opslib run, background or replication
    process), or '' when it may be; shared by every plan that terminates sessions."""
    if s is None:
        return "not in pg_stat_activity (a prepared transaction or already gone)"
    if s.is_own:
        return "it is this runbook's own session"
    if s.backend_type != "client backend":
        return f"it is a {s.backend_type} (background/replication process), not a client session"
    return ""


def root_options(activity: Activity) -> list[tuple[str, int]]:
    """``(label, pid)`` of the root blockers that may be terminated, most blocking first.

    The options of the "which root blockers to terminate" choice in the runbook: a label an
    on-call engineer can decide on (pid, user, application, how many sessions wait on it).
    Roots that must never be terminated are not offered; the plan still names them.
    """
    out: list[tuple[str, int]] = []
    for n in activity.blocking:
        if not n.root or _terminable(n.session):
            continue
        s = n.session
        assert s is not None
        app = s.application_name or "(no application_name)"
        label = f"pid {n.pid} · {s.usename or '?'} · {app} · blocks {n.blocks_total}"
        out.append((label, n.pid))
    return out


def plan_terminate(
    activity: Activity,
    *,
    max_terminations: int = 1,
    only_pids: Sequence[int] | None = None,
) -> Plan:
    """Plan pg_terminate_backend for the root blockers only, at most ``max_terminations`` of them.

    Roots come ordered by how many sessions they hold up. Sessions that must never be
    terminated (this runbook's own, replication, autovacuum and other background workers) are
    left out with a warning, so the plan says why a visible blocker is not in it.

    ``only_pids`` is the engineer's choice (the runbook's selection widget): only those roots
    are planned, still within ``max_terminations``; the others are named in a warning. None
    plans the first roots up to the limit. A chosen pid that is not a root blocker of this
    snapshot is refused (BadInputError) before anything is planned.
    """
    if max_terminations < 0:
        raise BadInputError("max_terminations must be >= 0 (0 plans nothing).")
    changes: list[Change] = []
    warnings: list[str] = []
    candidates = [n for n in activity.blocking if n.root]
    chosen = None if only_pids is None else {int(p) for p in only_pids}
    if chosen is not None:
        unknown = sorted(chosen - {n.pid for n in candidates})
        if unknown:
            roots = ", ".join(str(n.pid) for n in candidates) or "none"
            raise BadInputError(
                f"pid(s) {', '.join(map(str, unknown))} are not root blockers in this snapshot "
                f"(root blockers: {roots}); choose among them, or re-run the database step to "
                "take a fresh snapshot."
            )
    for n in candidates:
        why = _terminable(n.session)
        if why:
            warnings.append(
                f"pid {n.pid} blocks {n.blocks_total} session(s) but is not terminated: {why}"
            )
            continue
        s = n.session
        assert s is not None
        if len(changes) >= max_terminations:
            warnings.append(
                f"pid {n.pid} blocks {n.blocks_total} session(s) but is beyond max_terminations="
                f"{max_terminations}"
            )
            continue
        if chosen is not None and n.pid not in chosen:
            warnings.append(
                f"pid {n.pid} blocks {n.blocks_total} session(s) but was not chosen for termination"
            )
            continue
        if s.superuser:
            warnings.append(
                f"pid {n.pid} belongs to superuser {s.usename}: make sure it is not maintenance"
            )
        changes.append(
            Change(
                action=TERMINATE_ACTION,
                target=s.label,
                effect=f"end the session and roll back its transaction; releases {n.blocks_total} waiting session(s)",
                params={
                    "pid": s.pid,
                    "backend_start": s.backend_start,
                    "usename": s.usename,
                    "datname": s.datname,
                },
            )
        )
    check_limit("max_terminations", len(changes), max_terminations)
    if not candidates:
        warnings.append("no blocking chain: nothing to terminate")
    return Plan(
        title="Terminate root blocking PostgreSQL sessions",
        changes=tuple(changes),
        warnings=tuple(warnings),
        limits={"max_terminations": max_terminations},
    )


@executors.register(TERMINATE_ACTION)
def terminate(change: Change, *, conn, wait_ms: int = TERMINATE_WAIT_MS) -> ChangeOutcome:
    """Perform one planned pg_terminate_backend, only if the pid is still the same session.

    A pid can be reused by a new backend after the plan was shown; ``backend_start`` in the
    change pins the exact session, so a different one is skipped, never terminated.
    """
    import psycopg

    pid = int(change.params["pid"])
    started = str(change.params.get("backend_start", ""))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT backend_start, backend_type, application_name, pid = pg_backend_pid() "
            "FROM pg_stat_activity WHERE pid = %s",
            (pid,),
        )
        row = cur.fetchone()
        if row is None:
            return ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.SKIPPED,
                "session already gone",
                {"pid": pid},
            )
        if started and row[0] and row[0].isoformat() != started:
            return ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.SKIPPED,
                "pid now belongs to a different session (backend_start changed)",
                {"pid": pid},
            )
        if (
            row[3]
            or (row[2] or "").startswith(OWN_APPLICATION_PREFIX)
            or row[1] != "client backend"
        ):
            return ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.SKIPPED,
                "refused: own session or background process",
                {"pid": pid},
            )
        try:
            cur.execute("SELECT pg_terminate_backend(%s, %s)", (pid, int(wait_ms)))
            ok = bool(cur.fetchone()[0])
        except psycopg.Error as exc:
            return ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.FAILED,
                str(exc).strip().splitlines()[0],
                {"pid": pid},
            )
    if not ok:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            f"pg_terminate_backend returned false (not permitted, or not gone within {wait_ms} ms)",
            {"pid": pid},
        )
    return ChangeOutcome(
        change.action, change.target, ChangeStatus.APPLIED, "session terminated", {"pid": pid}
    )


def terminator(*, conn, wait_ms: int = TERMINATE_WAIT_MS) -> Callable[[Change], ChangeOutcome]:
    """The ``execute`` callable for ``opslib.safety.gate``: terminates through ``conn``."""

    def execute(change: Change) -> ChangeOutcome:
        return terminate(change, conn=conn, wait_ms=wait_ms)

    return execute
