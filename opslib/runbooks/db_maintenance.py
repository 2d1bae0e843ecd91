"""db-maintenance: the PostgreSQL maintenance report, then one gated action per run.

The runbook (notebooks/db_maintenance.ipynb) follows the table-maintenance, query-performance
and connection-management procedures: it reads the report first (always, read only), then
plans one action: ``vacuum`` / ``analyze`` of the tables the report flags (or those named),
``reindex`` concurrently, ``terminate-long`` queries, or ``log-slow`` (temporary
``log_min_duration_statement``, reverted by this run after ``log_revert_minutes`` or by a later
run with ``log_min_duration_ms=-1``). Nothing changes without ``dry_run=False`` and an approval
of exactly the plan shown.

Bad input (an unknown action, a table that does not exist or is not schema-qualified, limits
out of range, a password in ``pg_dsn``) is refused before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opslib import clients
from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.plans import ApplyResult, ChangeStatus, Plan, parse_csv, unique
from opslib.pg import maintenance as mt
from opslib.pg import maintenance_actions as ma

RUNBOOK = "db-maintenance"


class Action(StrEnum):
    """What one run of the runbook does after the report."""

    REPORT = "report"
    VACUUM = "vacuum"
    ANALYZE = "analyze"
    REINDEX = "reindex"
    TERMINATE_LONG = "terminate-long"
    LOG_SLOW = "log-slow"


@dataclass(frozen=True)
class Inputs:
    """The validated parameters of one run."""

    pg_dsn: str
    action: Action
    tables: tuple[str, ...]
    dead_tuple_pct: float
    long_query_minutes: float
    max_tables: int
    max_terminations: int
    log_min_duration_ms: int
    log_revert_minutes: float

    @property
    def long_query_seconds(self) -> int:
        return max(int(round(self.long_query_minutes * 60)), 0)


def inputs(
    *,
    pg_dsn: str = "",
    action: str = "report",
    tables: str = "",
    dead_tuple_pct: float = 20,
    long_query_minutes: float = 5,
    max_tables: int = 10,
    max_terminations: int = 5,
    log_min_duration_ms: int = 1000,
    log_revert_minutes: float = 30,
) -> Inputs:
    """Validate every parameter before anything is read or changed (one BadInputError)."""
    clients.refuse_password_in_conninfo(pg_dsn, parameter="pg_dsn")
    problems: list[str] = []
    try:
        act = Action(action.strip())
    except ValueError:
        act = Action.REPORT
        problems.append(f"action={action!r}: use one of {', '.join(a.value for a in Action)}")
    names = unique(parse_csv(tables))
    for n in names:
        try:
            ma.parse_table(n)
        except BadInputError:
            problems.append(f"tables: {n!r} is not schema-qualified (give schema.table)")
    if not 0 < float(dead_tuple_pct) <= 100:
        problems.append(f"dead_tuple_pct={dead_tuple_pct}: use a percentage in (0, 100]")
    if float(long_query_minutes) <= 0:
        problems.append(
            f"long_query_minutes={long_query_minutes}: use a positive number of minutes"
        )
    if int(max_tables) < 1:
        problems.append(f"max_tables={max_tables}: use 1 or more")
    if int(max_terminations) < 0:
        problems.append(
            f"max_terminations={max_terminations}: use 0 or more (0 terminates nothing)"
        )
    if int(log_min_duration_ms) < -1:
        problems.append(
            f"log_min_duration_ms={log_min_duration_ms}: use milliseconds >= 0, or -1 to revert"
        )
    if not 0 <= float(log_revert_minutes) <= 24 * 60:
        problems.append(
            f"log_revert_minutes={log_revert_minutes}: use 0 (no automatic revert) to 1440"
        )
    if names and act not in (Action.VACUUM, Action.ANALYZE, Action.REINDEX, Action.REPORT):
        problems.append(f"tables is only used by vacuum, analyze and reindex, not {act.value}")
    if len(names) > int(max_tables) >= 1:
        problems.append(f"{len(names)} tables named but max_tables={max_tables}")
    if problems:
        raise BadInputError(
            "Bad parameters, nothing was read or changed: " + "; ".join(problems) + "."
        )
    return Inputs(
        pg_dsn=pg_dsn.strip(),
        action=act,
        tables=tuple(names),
        dead_tuple_pct=float(dead_tuple_pct),
        long_query_minutes=float(long_query_minutes),
        max_tables=int(max_tables),
        max_terminations=int(max_terminations),
        log_min_duration_ms=int(log_min_duration_ms),
        log_revert_minutes=float(log_revert_minutes),
    )


@dataclass(frozen=True)
class Connections:
    """The runbook's one PostgreSQL connection (application_name opslib/db-maintenance)."""

    pg: Any

    def close(self) -> None:
        if self.pg is not None and not self.pg.closed:
            self.pg.close()


def connect(inp: Inputs) -> Connections:
    """Connect (libpq conninfo plus PG* variables and .pgpass); the runbook needs the database."""
    return Connections(pg=clients.pg_connect(inp.pg_dsn, runbook=RUNBOOK))


def report(inp: Inputs, conns: Connections) -> mt.MaintenanceReport:
    """The read-only maintenance report (always taken first)."""
    return mt.read_report(
        conn=conns.pg,
        dead_tuple_pct=inp.dead_tuple_pct,
        long_query_seconds=inp.long_query_seconds,
    )


def selected_tables(inp: Inputs, rep: mt.MaintenanceReport, conns: Connections) -> tuple[str, ...]:
    """The tables the action works on: those named (checked to exist), else those flagged."""
    if inp.tables:
        return ma.resolve_tables(inp.tables, conn=conns.pg)
    if inp.action in (Action.VACUUM, Action.ANALYZE):
        return tuple(t.name for t in rep.flagged[: inp.max_tables])
    return ()


def plan(inp: Inputs, rep: mt.MaintenanceReport, conns: Connections) -> Plan:
    """The plan of this run's action (empty for ``report``); reads only."""
    tables = selected_tables(inp, rep, conns)
    if inp.action is Action.REPORT:
        return Plan("Report only: nothing to change")
    if inp.action in (Action.VACUUM, Action.ANALYZE):
        return ma.plan_vacuum(
            rep, tables, analyze_only=inp.action is Action.ANALYZE, max_tables=inp.max_tables
        )
    if inp.action is Action.REINDEX:
        return ma.plan_reindex(rep, tables, max_tables=inp.max_tables)
    if inp.action is Action.TERMINATE_LONG:
        return ma.plan_terminate_long(rep.activity, max_terminations=inp.max_terminations)
    return ma.plan_log_slow(
        ma.log_setting(conn=conns.pg),
        log_min_duration_ms=inp.log_min_duration_ms,
        revert_minutes=inp.log_revert_minutes,
    )


#: the change kinds this runbook plans (the handlers are registered by the PostgreSQL adapters)
ACTIONS = (
    ma.VACUUM_ACTION,
    ma.ANALYZE_ACTION,
    ma.REINDEX_ACTION,
    ma.TERMINATE_ACTION,
    ma.LOG_SLOW_ACTION,
    ma.LOG_SLOW_RESET_ACTION,
)


def executor(conns: Connections) -> executors.Executor:
    """The ``execute`` callable for ``opslib.safety.gate``."""
    return executors.bind(conn=conns.pg, allowed=ACTIONS)


@dataclass(frozen=True)
class Outcome:
    """What the run did, for the record: dead tuples after, terminated pids, log-slow state."""

    flagged_tables: tuple[str, ...]
    dead_tuples_before: dict[str, int]
    dead_tuples_after: dict[str, int]
    terminated_pids: tuple[int, ...]
    log_slow: dict[str, Any]
    after: mt.MaintenanceReport | None


def outcome(
    inp: Inputs,
    rep: mt.MaintenanceReport,
    plan_: Plan,
    applied: ApplyResult | None,
    conns: Connections,
) -> Outcome:
    """Read the effect back from the database (a fresh report after vacuum/analyze/reindex)."""
    tables = [c.target for c in plan_.changes if c.action in (ma.VACUUM_ACTION, ma.ANALYZE_ACTION)]
    tables = tables or [t.name for t in rep.flagged]
    before = rep.dead_tuples(tables)
    after_rep = None
    after = dict(before)
    if (
        applied is not None
        and applied.applied
        and inp.action in (Action.VACUUM, Action.ANALYZE, Action.REINDEX)
    ):
        after_rep = report(inp, conns)
        after = after_rep.dead_tuples(tables)
    done = [o for o in (applied.outcomes if applied else ()) if o.status is ChangeStatus.APPLIED]
    pids = tuple(int(o.data["pid"]) for o in done if o.action == ma.TERMINATE_ACTION)
    log: dict[str, Any] = {}
    if inp.action is Action.LOG_SLOW:
        now = ma.log_setting(conn=conns.pg)
        log = {
            "setting_ms": int(now.setting),
            "set_by_alter_system": now.by_alter_system,
            "applied": [o.action for o in done],
            "reverted": any(o.action == ma.LOG_SLOW_RESET_ACTION for o in done),
            "revert_with": "action=log-slow log_min_duration_ms=-1" if now.by_alter_system else "",
        }
    return Outcome(tuple(t.name for t in rep.flagged), before, after, pids, log, after_rep)
