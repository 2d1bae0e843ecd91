"""Point-in-time restore to a NEW target, validated, with DR-drill timing (runbook pitr-restore).

One flow for four engines (seed 000 §3, 001 §7.2, 002, 003 §3.3):

    prepare(params) -> RestoreRequest       parameters checked, nothing read yet
    connect(req) -> RestoreClients          only the clients this engine needs (opslib.clients)
    preflight(req, clients=) -> Preflight   read only: source, window, target free; refuses here
    plan(pre) -> Plan                       the exact calls, with what is carried from the source
    apply(plan, pre, ...) -> RestoreOutcome through opslib.safety.gate (dry run / approval)
    validate(pre, outcome, ...) -> Validation  source vs target side by side, timing
    next_steps(pre, outcome)                cutover is never automatic
    plan_cutover / apply_cutover            optional secret update, its own approval
    plan_drill_cleanup / apply_cleanup      drill mode: delete the drill target, gated

Every refusal raises a BadInputError subclass from :mod:`opslib.core.errors` (exit 2) before anything
is created: a restore time that is malformed, in the future or outside the restorable window;
a target that exists; a missing source; a pg_target_dir that exists; an unknown engine.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from opslib.core.errors import (
    BadInputError,
    ClientConfigError,
    NotFoundError,
    OpslibError,
    PreflightError,
    RestoreFailedError,
)
from opslib.core.plans import ApplyResult, Change, ChangeOutcome, ChangeStatus, Plan
from opslib.safety import gate

RUNBOOK = "pitr-restore"
ENGINES = ("aurora", "rds", "dynamodb", "postgres")
MAX_TABLES = 500


class Engine(StrEnum):
    AURORA = "aurora"
    RDS = "rds"
    DYNAMODB = "dynamodb"
    POSTGRES = "postgres"


class RestoreStatus(StrEnum):
    """Where a run ended."""

    DRY_RUN = "dry_run"  # plan shown, nothing created
    NOT_APPROVED = "not_approved"  # dry_run=False but no approval (or awaiting a click)
    RESTORED = "restored"  # target created, not validated yet
    VALIDATED = "validated"  # target created and validated
    UNVALIDATED = "unvalidated"  # target created, validation could not run completely
    FAILED = "failed"


@dataclass(frozen=True)
class RestoreRequest:
    """The runbook parameters, checked and normalised (no client used yet)."""

    engine: Engine
    source: str
    restore_time_param: str
    restore_time: _dt.datetime | None  # None = latest restorable
    target: str
    instance_class: str = ""
    validation_sql: str = ""
    drill: bool = False
    wait_timeout_minutes: int = 60
    region: str = ""
    pg_base_backup: str = ""
    pg_wal_archive: str = ""
    pg_target_dir: str = ""
    pg_target_port: int = 0
    cutover_secret: str = ""
    requested_at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))
    poll_seconds: float = 15.0

    @property
    def timeout_s(self) -> float:
        return float(self.wait_timeout_minutes) * 60.0


@dataclass
class RestoreClients:
    """The clients one restore uses; built by :func:`connect` through :mod:`opslib.clients`."""

    rds: Any = None
    dynamodb: Any = None
    secretsmanager: Any = None
    source_conn: Any = None  # postgres: read-only connection to the source (validation only)


@dataclass(frozen=True)
class Preflight:
    """What was checked before anything changes, and what the restore will target."""

    request: RestoreRequest
    source: Any  # rds.DbSource | dynamodb.TableSource | PgSource
    target: str
    earliest: _dt.datetime | None
    latest: _dt.datetime | None
    restore_time: (
        _dt.datetime | None
    )  # resolved (UTC); None only for postgres "latest" w/o archive time
    checks: tuple[tuple[str, str, str], ...]  # (check, result, detail)
    pg_spec: Any = None  # pitr.PgRestoreSpec for postgres

    @property
    def engine(self) -> Engine:
        return self.request.engine

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(list(self.checks), columns=["check", "result", "detail"])

    def window_frame(self):
        import pandas as pd

        rows = [
            ("earliest restorable", _iso(self.earliest)),
            ("restore to", _iso(self.restore_time) if self.restore_time else "latest"),
            ("latest restorable", _iso(self.latest)),
        ]
        return pd.DataFrame(rows, columns=["point", "UTC"])

    def settings_frame(self):
        """What a bare restore drops and how this plan carries it (Aurora/RDS/DynamoDB)."""
        import pandas as pd

        if hasattr(self.source, "settings_frame"):
            return self.source.settings_frame()
        return pd.DataFrame(columns=["setting", "source value", "restore"])


@dataclass(frozen=True)
class PgSource:
    """A self-hosted PostgreSQL source: its base backup, its WAL archive, the validation conninfo."""

    conninfo: str
    base_backup: Any  # pitr.BaseBackupInfo
    wal_archive: Any  # pitr.WalArchiveInfo


@dataclass(frozen=True)
class RestoreOutcome:
    """What the apply did: status, the target and how to reach it, when the approval happened."""

    engine: Engine
    status: RestoreStatus
    target: str
    endpoint: str = ""
    port: int = 0
    plan_hash: str = ""
    approved_by: str = ""
    approved_at: str = ""
    approved_monotonic: float = 0.0  # time.monotonic() at approval (for time_to_restore)
    restored_seconds: float = 0.0
    apply_result: ApplyResult | None = None
    detail: str = ""

    @property
    def restored(self) -> bool:
        return self.status in (
            RestoreStatus.RESTORED,
            RestoreStatus.VALIDATED,
            RestoreStatus.UNVALIDATED,
        )

    def to_frame(self):
        import pandas as pd

        if self.apply_result is None:
            return pd.DataFrame([{"status": self.status.value, "detail": self.detail}])
        frame = self.apply_result.to_frame()
        frame["seconds"] = [o.data.get("seconds", "") for o in self.apply_result.outcomes]
        return frame


@dataclass(frozen=True)
class ValidationRow:
    """One check on source and target side by side."""

    check: str
    source: Any
    target: Any
    match: bool | None  # None: not comparable (e.g. target not restored)
    difference: str = ""


@dataclass(frozen=True)
class Validation:
    """Source vs target, a sample of restored data, and the time from approval to validated target."""

    status: RestoreStatus
    kind: str  # "row counts", "validation_sql", "item counts", "status and settings"
    rows: tuple[ValidationRow, ...] = ()
    sample: tuple[Mapping[str, Any], ...] = ()
    errors: tuple[str, ...] = ()
    validated_at: str = ""
    time_to_restore_seconds: float | None = None

    def to_frame(self):
        import pandas as pd

        rows = [
            {
                "check": r.check,
                "source": _cell(r.source),
                "target": _cell(r.target),
                "match": "" if r.match is None else ("yes" if r.match else "NO"),
                "difference": r.difference,
            }
            for r in self.rows
        ]
        return pd.DataFrame(rows, columns=["check", "source", "target", "match", "difference"])

    def records(self) -> list[dict[str, Any]]:
        """Per check: source value, target value, match (what the evidence record keeps)."""
        return [
            {
                "check": r.check,
                "source": _cell(r.source),
                "target": _cell(r.target),
                "match": r.match,
            }
            for r in self.rows
        ]


def _cell(v: Any) -> Any:
    if isinstance(v, int | float | str | bool) or v is None:
        return v
    return str(v)


def _iso(t: _dt.datetime | None) -> str:
    if t is None:
        return "(unknown)"
    return t.astimezone(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- parameters ------------------------------------------------------------------------------


def parse_restore_time(value: str, *, now: _dt.datetime | None = None) -> _dt.datetime | None:
    """'latest' -> None; ISO 8601 (Z, offset, or naive = UTC) -> aware UTC datetime.

    Refuses (BadInputError) a malformed value and (PreflightError) one in the future.
    """
    now = now or _dt.datetime.now(_dt.UTC)
    v = (value or "").strip()
    if v.lower() in ("", "latest"):
        return None
    try:
        t = _dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise BadInputError(
            f"restore_time {value!r} is not an ISO 8601 time. Use e.g. 2024-01-22T14:00:00Z (UTC) "
            "or 'latest'."
        ) from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    t = t.astimezone(_dt.UTC)
    if t > now:
        raise PreflightError(
            f"restore_time {_iso(t)} is in the future (now {_iso(now)}). Give a past time, or 'latest'."
        )
    return t


_RDS_ID = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")
_DDB_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def default_target(source: str, now: _dt.datetime) -> str:
    return f"{source}-recovery-{now.strftime('%Y%m%d%H%M')}"


def prepare(
    *,
    engine: str,
    source: str = "",
    restore_time: str = "latest",
    target: str = "",
    instance_class: str = "",
    validation_sql: str = "",
    drill: bool = False,
    wait_timeout_minutes: int = 60,
    region: str = "",
    pg_base_backup: str = "",
    pg_wal_archive: str = "",
    pg_target_dir: str = "",
    pg_target_port: int = 0,
    cutover_secret: str = "",
    poll_seconds: float = 15.0,
) -> RestoreRequest:
    """Check the parameters (no client, nothing changed); refuses with a message saying what to give."""
    from opslib.clients import refuse_password_in_conninfo

    e = (engine or "").strip().lower()
    if e not in ENGINES:
        raise BadInputError(
            f"engine {engine!r} is not supported. Use one of: {', '.join(ENGINES)} "
            "(aurora = Aurora cluster, rds = RDS instance, dynamodb = table, postgres = self-hosted)."
        )
    eng = Engine(e)
    now = _dt.datetime.now(_dt.UTC)
    t = parse_restore_time(restore_time, now=now)
    if wait_timeout_minutes <= 0:
        raise BadInputError("wait_timeout_minutes must be > 0 (how long to wait for the restore).")
    src = (source or "").strip()
    if eng is Engine.POSTGRES:
        refuse_password_in_conninfo(src, parameter="source")
        missing = [
            n
            for n, v in (
                ("pg_base_backup", pg_base_backup),
                ("pg_wal_archive", pg_wal_archive),
                ("pg_target_dir", pg_target_dir),
            )
            if not v.strip()
        ]
        if missing:
            raise BadInputError(
                f"engine=postgres needs {', '.join(missing)}: the base backup directory, the WAL archive "
                "directory and a NEW data directory for the restored server."
            )
        if not 0 <= int(pg_target_port) < 65536:
            raise BadInputError("pg_target_port must be 0 (a free port) or a TCP port number.")
        tgt = str(Path(pg_target_dir.strip()))
    else:
        if not src:
            raise BadInputError(
                f"source is required for engine={e}: the {'table' if e == 'dynamodb' else 'cluster' if e == 'aurora' else 'instance'} id to restore from."
            )
        tgt = (target or "").strip() or default_target(src, now)
        if tgt == src:
            raise PreflightError(
                "target equals source: a restore never overwrites; give a new name."
            )
        ok = _DDB_NAME.match(tgt) if eng is Engine.DYNAMODB else _RDS_ID.match(tgt)
        if not ok:
            rule = (
                "3-255 letters, digits, '_', '-', '.'"
                if eng is Engine.DYNAMODB
                else "1-63 letters, digits and hyphens, starting with a letter, no '--', no trailing '-'"
            )
            raise BadInputError(f"target {tgt!r} is not a valid name ({rule}).")
    if cutover_secret.strip() and eng in (Engine.DYNAMODB, Engine.POSTGRES):
        raise BadInputError(
            "cutover_secret applies to aurora/rds endpoints only; leave it empty for this engine."
        )
    if cutover_secret.strip() and drill:
        raise BadInputError(
            "cutover_secret with drill=True: a drill target is deleted after validation, so the "
            "secret must not point at it. Run the drill without cutover_secret."
        )
    if validation_sql.strip() and eng is Engine.DYNAMODB:
        raise BadInputError(
            "validation_sql does not apply to DynamoDB (item counts are compared); leave it empty."
        )
    return RestoreRequest(
        engine=eng,
        source=src,
        restore_time_param=restore_time,
        restore_time=t,
        target=tgt,
        instance_class=instance_class.strip(),
        validation_sql=validation_sql.strip(),
        drill=bool(drill),
        wait_timeout_minutes=int(wait_timeout_minutes),
        region=region.strip(),
        pg_base_backup=pg_base_backup.strip(),
        pg_wal_archive=pg_wal_archive.strip(),
        pg_target_dir=pg_target_dir.strip(),
        pg_target_port=int(pg_target_port),
        cutover_secret=cutover_secret.strip(),
        requested_at=now,
        poll_seconds=poll_seconds,
    )


def connect(req: RestoreRequest) -> RestoreClients:
    """The clients this engine needs, from the standard chains (opslib.clients builds them)."""
    from opslib import clients

    c = RestoreClients()
    if req.engine in (Engine.AURORA, Engine.RDS):
        c.rds = clients.aws_client("rds", region=req.region)
        if req.cutover_secret:
            c.secretsmanager = clients.aws_client("secretsmanager", region=req.region)
    elif req.engine is Engine.DYNAMODB:
        c.dynamodb = clients.aws_client("dynamodb", region=req.region)
    elif req.source:
        try:
            c.source_conn = clients.pg_connect(req.source, runbook=RUNBOOK, parameter="source")
        except ClientConfigError as exc:
            raise NotFoundError(
                f"The source database is unreachable: {exc} Give source = a conninfo of the source "
                "(no password: use PGPASSWORD or ~/.pgpass), or leave it empty to validate the target only."
            ) from exc
        # the source is used read-only: any write attempt fails on the server
        c.source_conn.execute("SET default_transaction_read_only = on")
    return c


# --- preflight -------------------------------------------------------------------------------


def _check_window(
    t: _dt.datetime | None,
    earliest: _dt.datetime | None,
    latest: _dt.datetime | None,
    *,
    hint: str = "",
) -> None:
    if t is None:
        return
    if earliest is not None and t < earliest:
        raise PreflightError(
            f"restore_time {_iso_precise(t)} is before the earliest restorable time {_iso_precise(earliest)} "
            f"(window {_iso_precise(earliest)} .. {_iso_precise(latest)}). Choose a time inside the window."
        )
    if latest is not None and t > latest:
        raise PreflightError(
            f"restore_time {_iso_precise(t)} is after the latest restorable time {_iso_precise(latest)} "
            f"(window {_iso_precise(earliest)} .. {_iso_precise(latest)}). Choose a time inside the window, or 'latest'.{hint}"
        )


def preflight(req: RestoreRequest, *, clients: RestoreClients) -> Preflight:
    """Read-only checks; raises (exit 2) before anything is created when the restore must not go on."""
    if req.engine in (Engine.AURORA, Engine.RDS):
        return _preflight_rds(req, clients.rds)
    if req.engine is Engine.DYNAMODB:
        return _preflight_dynamodb(req, clients.dynamodb)
    return _preflight_pg(req, clients.source_conn)


def _preflight_rds(req: RestoreRequest, rds) -> Preflight:
    from opslib.aws import rds as r

    aurora = req.engine is Engine.AURORA
    src = (
        r.describe_cluster(req.source, rds=rds)
        if aurora
        else r.describe_instance(req.source, rds=rds)
    )
    checks = [
        (
            "source exists",
            "ok",
            f"{src.kind} {src.identifier} ({src.engine} {src.engine_version}), status {src.status}",
        )
    ]
    if src.backup_retention_days < 1:
        raise PreflightError(
            f"{src.identifier} has automated backups disabled (retention 0 days): no point-in-time "
            "restore is possible. Restore from a snapshot instead (aws rds describe-db-snapshots)."
        )
    checks.append(("backups enabled", "ok", f"retention {src.backup_retention_days} days"))
    _check_window(req.restore_time, src.earliest_restorable, src.latest_restorable)
    resolved = req.restore_time or src.latest_restorable
    checks.append(
        (
            "restore time in window",
            "ok",
            f"{_iso(resolved)} in {_iso(src.earliest_restorable)} .. {_iso(src.latest_restorable)}",
        )
    )
    exists = (
        r.cluster_exists(req.target, rds=rds) if aurora else r.instance_exists(req.target, rds=rds)
    )
    if exists:
        raise PreflightError(
            f"Target {req.target!r} already exists. A restore never overwrites: give another target "
            "(or leave it empty for <source>-recovery-<UTC time>)."
        )
    if aurora and r.instance_exists(r.writer_instance_id(req.target), rds=rds):
        raise PreflightError(
            f"Instance {r.writer_instance_id(req.target)!r} already exists; give another target."
        )
    checks.append(("target does not exist", "ok", req.target))
    carried = sum(1 for s in src.settings if s.api_param)
    checks.append(
        (
            "settings carried from source",
            "ok",
            f"{carried} of {len(src.settings)} (see the settings table)",
        )
    )
    if src.status != "available":
        checks.append(
            ("source status", "warning", f"{src.status}: a restore works from backups anyway")
        )
    return Preflight(
        req,
        src,
        req.target,
        src.earliest_restorable,
        src.latest_restorable,
        resolved,
        tuple(checks),
    )


def _preflight_dynamodb(req: RestoreRequest, dynamodb) -> Preflight:
    from opslib.aws import dynamodb as d

    src = d.describe_table(req.source, dynamodb=dynamodb)
    checks = [
        ("source exists", "ok", f"table {src.name}, status {src.status}, ~{src.item_count} items")
    ]
    if src.pitr_status != "ENABLED":
        raise PreflightError(
            f"Point-in-time recovery is {src.pitr_status} on {src.name}: no PITR restore is possible. "
            "Restore from an on-demand backup instead (aws dynamodb list-backups), and enable PITR."
        )
    checks.append(("PITR enabled", "ok", "continuous backups on"))
    _check_window(req.restore_time, src.earliest_restorable, src.latest_restorable)
    resolved = req.restore_time or src.latest_restorable
    checks.append(
        (
            "restore time in window",
            "ok",
            f"{_iso(resolved)} in {_iso(src.earliest_restorable)} .. {_iso(src.latest_restorable)}",
        )
    )
    if d.table_exists(req.target, dynamodb=dynamodb):
        raise PreflightError(
            f"Target table {req.target!r} already exists. A restore never overwrites: give another target."
        )
    checks.append(("target does not exist", "ok", req.target))
    return Preflight(
        req,
        src,
        req.target,
        src.earliest_restorable,
        src.latest_restorable,
        resolved,
        tuple(checks),
    )


def _preflight_pg(req: RestoreRequest, source_conn) -> Preflight:
    from opslib.pg import pitr

    backup = pitr.inspect_base_backup(req.pg_base_backup, wal_archive=req.pg_wal_archive)
    archive = pitr.inspect_wal_archive(req.pg_wal_archive)
    checks = [
        (
            "base backup",
            "ok",
            f"{backup.path}: PostgreSQL {backup.pg_major}, taken {_iso(backup.start_time)}, owner {backup.owner}, {backup.size_bytes / 1e6:.0f} MB",
        ),
    ]
    if archive.segments == 0:
        raise PreflightError(
            f"The WAL archive {archive.path} holds no WAL segments: nothing to replay. Check the "
            "source's archive_command and pg_stat_archiver."
        )
    checks.append(
        (
            "WAL archive",
            "ok",
            f"{archive.segments} segments, {archive.total_bytes / 1e6:.0f} MB, newest {archive.newest_segment} at {_iso(archive.newest_archived_at)}",
        )
    )
    if source_conn is not None:
        row = source_conn.execute(
            "select current_database(), current_setting('server_version')"
        ).fetchone()
        checks.append(
            ("source reachable (read only)", "ok", f"database {row[0]}, PostgreSQL {row[1]}")
        )
    else:
        checks.append(("source", "skipped", "no source conninfo: the target is validated alone"))
    earliest, latest = backup.consistent_from, archive.newest_archived_at
    _check_window(
        req.restore_time,
        earliest,
        latest,
        hint=" WAL after the newest archived segment is not archived yet: on the source run "
        "`select pg_switch_wal()` (or wait archive_timeout), then retry.",
    )
    spec = pitr.spec(
        base_backup=req.pg_base_backup,
        wal_archive=req.pg_wal_archive,
        target_dir=req.pg_target_dir,
        port=req.pg_target_port,
        restore_time=req.restore_time,
    )
    resolved = req.restore_time or latest
    checks.append(
        (
            "restore time in window",
            "ok",
            f"{_iso(resolved) if req.restore_time else 'end of archived WAL (~' + _iso(latest) + ')'} in {_iso(earliest)} .. {_iso(latest)}",
        )
    )
    checks.append(
        (
            "target dir does not exist",
            "ok",
            f"{spec.target_dir}; server as {spec.os_user} on port {spec.port}",
        )
    )
    src = PgSource(conninfo=req.source, base_backup=backup, wal_archive=archive)
    return Preflight(
        req, src, spec.target_dir, earliest, latest, resolved, tuple(checks), pg_spec=spec
    )


# --- plan and apply --------------------------------------------------------------------------


def plan(pre: Preflight) -> Plan:
    """The restore's changes (read only)."""
    req = pre.request
    if req.engine is Engine.AURORA:
        from opslib.aws import rds as r

        return r.plan_cluster_restore(
            pre.source,
            target=pre.target,
            restore_time=req.restore_time,
            instance_class=req.instance_class,
        )
    if req.engine is Engine.RDS:
        from opslib.aws import rds as r

        return r.plan_instance_restore(
            pre.source,
            target=pre.target,
            restore_time=req.restore_time,
            instance_class=req.instance_class,
        )
    if req.engine is Engine.DYNAMODB:
        from opslib.aws import dynamodb as d

        return d.plan_restore(pre.source, target=pre.target, restore_time=req.restore_time)
    from opslib.pg import pitr

    return pitr.plan_restore(pre.pg_spec)


def _executor(pre: Preflight, clients: RestoreClients):
    req = pre.request
    if req.engine in (Engine.AURORA, Engine.RDS):
        from opslib.aws import rds as r

        return lambda ch: r.execute_change(
            ch, rds=clients.rds, timeout_s=req.timeout_s, poll_s=req.poll_seconds
        )
    if req.engine is Engine.DYNAMODB:
        from opslib.aws import dynamodb as d

        return lambda ch: d.execute_change(
            ch, dynamodb=clients.dynamodb, timeout_s=req.timeout_s, poll_s=req.poll_seconds
        )
    from opslib.pg import pitr

    return lambda ch: pitr.execute_change(ch, pre.pg_spec, timeout_s=req.timeout_s)


#: the outcome of an interactive (button) approval, for the cells that run after the click
LAST_OUTCOME: dict[str, RestoreOutcome] = {}


def _what_exists(pre: Preflight, result: ApplyResult | None) -> str:
    done = [o for o in (result.outcomes if result else ()) if o.status is ChangeStatus.APPLIED]
    req = pre.request
    if req.engine is Engine.POSTGRES:
        return (
            f"Data dir {pre.target} {'exists' if Path(pre.target).exists() else 'was not created'}; "
            f"log {pre.pg_spec.log_path}. Stop a server there with `pg_ctl -D {pre.target} stop -m fast`, "
            "delete the dir, fix the cause and run again."
        )
    names = ", ".join(o.target for o in done) or "nothing"
    return f"Created so far: {names}. Delete or reuse them before retrying with the same target."


def apply(
    restore_plan: Plan,
    pre: Preflight,
    *,
    clients: RestoreClients,
    dry_run: bool,
    approved_by: str,
    change_ticket: str = "",
) -> RestoreOutcome:
    """Apply the restore plan through the safety gate; raises RestoreFailedError on a failed step.

    The time of approval is taken when the first step starts (right after the gate approves),
    so ``time_to_restore_seconds`` measures approval -> validated target, as the DR drill asks.
    """
    execute = _executor(pre, clients)
    state: dict[str, Any] = {"t0": 0.0, "errors": []}

    def run_step(change: Change) -> ChangeOutcome:
        if not state["t0"]:
            state["t0"] = time.monotonic()
        try:
            return execute(change)
        except Exception as exc:  # noqa: BLE001 - kept (typed) and re-raised after the gate recorded it
            state["errors"].append(exc)
            raise

    def finish(result: ApplyResult) -> RestoreOutcome:
        out = _outcome(pre, result, state["t0"])
        LAST_OUTCOME[restore_plan.digest()] = out
        return out

    result = gate(
        restore_plan,
        dry_run=dry_run,
        approved_by=approved_by,
        change_ticket=change_ticket,
        execute=run_step,
        on_applied=finish,
    )
    if result is None:
        status = RestoreStatus.DRY_RUN if dry_run else RestoreStatus.NOT_APPROVED
        detail = "dry run: nothing created" if dry_run else "not applied: no approval yet"
        return RestoreOutcome(
            pre.engine, status, pre.target, plan_hash=restore_plan.digest(), detail=detail
        )
    out = LAST_OUTCOME[restore_plan.digest()]
    if out.status is RestoreStatus.FAILED:
        err = state["errors"][0] if state["errors"] else None
        failed = next(o for o in result.outcomes if o.status is ChangeStatus.FAILED)
        msg = f"Restore step {failed.action} on {failed.target} failed: {failed.detail}\n{_what_exists(pre, result)}"
        if isinstance(err, OpslibError) and not isinstance(err, BadInputError):
            raise type(err)(f"{err}\n{_what_exists(pre, result)}") from err
        raise RestoreFailedError(msg) from err
    return out


def _outcome(pre: Preflight, result: ApplyResult, t0: float) -> RestoreOutcome:
    failed = result.failed > 0
    endpoint, port = "", 0
    for o in result.outcomes:
        endpoint = o.data.get("endpoint") or endpoint
        port = int(o.data.get("port") or port or 0)
    if pre.engine is Engine.POSTGRES:
        endpoint, port = "127.0.0.1", pre.pg_spec.port
    elif pre.engine is Engine.AURORA:
        cl = next(
            (o for o in result.outcomes if o.action.endswith("RestoreDBClusterToPointInTime")), None
        )
        endpoint = (cl.data.get("endpoint") if cl else "") or endpoint
        port = port or int(getattr(pre.source, "port", 0) or 0)
    elif pre.engine is Engine.DYNAMODB:
        endpoint = ""
    return RestoreOutcome(
        engine=pre.engine,
        status=RestoreStatus.FAILED if failed else RestoreStatus.RESTORED,
        target=pre.target,
        endpoint=endpoint,
        port=port,
        plan_hash=result.plan_hash,
        approved_by=result.approval.approver,
        approved_at=result.approval.approved_at,
        approved_monotonic=t0,
        restored_seconds=round(time.monotonic() - t0, 3) if t0 else 0.0,
        apply_result=result,
        detail="; ".join(o.detail for o in result.outcomes if o.detail),
    )


def current(outcome: RestoreOutcome) -> RestoreOutcome:
    """The outcome after an interactive click (if any) for the plan this outcome was waiting on."""
    if outcome.status is RestoreStatus.NOT_APPROVED and outcome.plan_hash in LAST_OUTCOME:
        return LAST_OUTCOME[outcome.plan_hash]
    return outcome


# --- validation ------------------------------------------------------------------------------


def _diff(a: Any, b: Any) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        d = b - a
        return f"{d:+}" if d else ""
    return "" if a == b else "differs"


def _row(check: str, a: Any, b: Any) -> ValidationRow:
    return ValidationRow(check, a, b, a == b, _diff(a, b))


def validate(pre: Preflight, outcome: RestoreOutcome, *, clients: RestoreClients) -> Validation:
    """Run the checks on source and target; the target side only when it was restored."""
    outcome = current(outcome)
    if pre.engine is Engine.POSTGRES:
        v = _validate_pg(pre, outcome, clients)
    elif pre.engine is Engine.DYNAMODB:
        v = _validate_dynamodb(pre, outcome, clients)
    else:
        v = _validate_rds(pre, outcome, clients)
    if not outcome.restored:
        return Validation(
            status=outcome.status,
            kind=v.kind,
            rows=v.rows,
            sample=v.sample,
            errors=v.errors,
            validated_at="",
            time_to_restore_seconds=None,
        )
    ok = not v.errors
    ttr = (
        round(time.monotonic() - outcome.approved_monotonic, 3)
        if ok and outcome.approved_monotonic
        else None
    )
    return Validation(
        status=RestoreStatus.VALIDATED if ok else RestoreStatus.UNVALIDATED,
        kind=v.kind,
        rows=v.rows,
        sample=v.sample,
        errors=v.errors,
        validated_at=_iso(_dt.datetime.now(_dt.UTC)),
        time_to_restore_seconds=ttr,
    )


USER_TABLES_SQL = """
select n.nspname, c.relname
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%%'
order by 1, 2
"""


def row_counts(conn, *, max_tables: int = MAX_TABLES) -> dict[str, int]:
    """Exact ``count(*)`` of every user table (schema.table -> rows), in a read-only transaction."""
    from psycopg import sql

    out: dict[str, int] = {}
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        tables = conn.execute(USER_TABLES_SQL).fetchall()
        if len(tables) > max_tables:
            raise BadInputError(
                f"{len(tables)} user tables exceed max_tables={max_tables}; give validation_sql instead."
            )
        for schema, name in tables:
            q = sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
            out[f"{schema}.{name}"] = int(conn.execute(q).fetchone()[0])
    return out


def run_query(conn, query: str) -> tuple[list[str], list[tuple]]:
    """The validation query in a read-only transaction: (columns, rows), capped at 1000 rows."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        cur = conn.execute(query)
        cols = [d.name for d in cur.description or []]
        rows = cur.fetchmany(1000)
    return cols, rows


def _query_cells(cols: list[str], rows: list[tuple]) -> dict[str, Any]:
    """Flatten a result set into check -> value; keyed by the first column when it is a unique key."""
    if len(cols) >= 2 and len({r[0] for r in rows}) == len(rows):
        return {f"{r[0]}.{c}": _cell(v) for r in rows for c, v in zip(cols[1:], r[1:], strict=True)}
    return {
        (f"row {i + 1}.{c}" if len(rows) > 1 else c): _cell(v)
        for i, r in enumerate(rows)
        for c, v in zip(cols, r, strict=True)
    }


def target_conninfo(pre: Preflight, outcome: RestoreOutcome) -> str:
    """The restored PostgreSQL server: the source's conninfo with host/port of the target."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    d = conninfo_to_dict(pre.request.source) if pre.request.source else {}
    d.update(host="127.0.0.1", port=str(outcome.port or pre.pg_spec.port))
    d.pop("hostaddr", None)
    return make_conninfo(**{k: str(v) for k, v in d.items()})


def _side_by_side(
    src: dict[str, Any] | None, tgt: dict[str, Any] | None
) -> tuple[ValidationRow, ...]:
    keys = list(dict.fromkeys([*(src or {}), *(tgt or {})]))
    rows = []
    for k in keys:
        a = (src or {}).get(k, "(missing)") if src is not None else "(not read)"
        b = (tgt or {}).get(k, "(missing)") if tgt is not None else "(not restored)"
        if src is None or tgt is None:
            rows.append(ValidationRow(k, a, b, None, ""))
        else:
            rows.append(_row(k, a, b))
    return tuple(rows)


def _validate_pg(pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients) -> Validation:
    from opslib import clients as cl

    query = pre.request.validation_sql
    kind = "validation_sql" if query else "row counts"
    errors: list[str] = []

    def read(conn) -> dict[str, Any]:
        if query:
            return _query_cells(*run_query(conn, query))
        return row_counts(conn)

    src_vals: dict[str, Any] | None = None
    if clients.source_conn is not None:
        try:
            src_vals = read(clients.source_conn)
        except Exception as exc:  # noqa: BLE001 - shown in the validation, never swallowed
            errors.append(f"source: {type(exc).__name__}: {exc}")
    tgt_vals: dict[str, Any] | None = None
    if outcome.restored:
        try:
            with cl.pg_connect(
                target_conninfo(pre, outcome), runbook=RUNBOOK, parameter="source"
            ) as conn:
                tgt_vals = read(conn)
        except Exception as exc:  # noqa: BLE001 - shown in the validation, never swallowed
            errors.append(f"target: {type(exc).__name__}: {exc}")
    return Validation(
        RestoreStatus.RESTORED, kind, _side_by_side(src_vals, tgt_vals), errors=tuple(errors)
    )


def _validate_dynamodb(
    pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients
) -> Validation:
    from opslib.aws import dynamodb as d

    ddb = clients.dynamodb
    errors: list[str] = []
    src_count = d.count_items(pre.source.name, dynamodb=ddb)
    src = {
        "item count (scan)": src_count.count,
        "TTL attribute": pre.source.ttl_attribute or "(none)",
        "tags": ", ".join(f"{k}={v}" for k, v in pre.source.tags) or "(none)",
        "PITR": pre.source.pitr_status,
    }
    if not outcome.restored:
        return Validation(RestoreStatus.RESTORED, "item counts", _side_by_side(src, None))
    tgt_src = d.describe_table(pre.target, dynamodb=ddb)
    tgt_count = d.count_items(pre.target, dynamodb=ddb)
    tgt = {
        "item count (scan)": tgt_count.count,
        "TTL attribute": tgt_src.ttl_attribute or "(none)",
        "tags": ", ".join(f"{k}={v}" for k, v in tgt_src.tags) or "(none)",
        "PITR": tgt_src.pitr_status,
    }
    if not (src_count.complete and tgt_count.complete):
        errors.append("item count capped: the scan stopped at max_items")
    if tgt_src.status != "ACTIVE":
        errors.append(f"target table status {tgt_src.status}")
    sample = tuple(d.sample_items(pre.target, dynamodb=ddb, limit=5))
    return Validation(
        RestoreStatus.RESTORED,
        "item counts",
        _side_by_side(src, tgt),
        sample=sample,
        errors=tuple(errors),
    )


def _validate_rds(pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients) -> Validation:
    from opslib.aws import rds as r

    src = pre.source
    aurora = pre.engine is Engine.AURORA
    if not outcome.restored:
        vals = {"status": src.status, "endpoint": src.endpoint}
        return Validation(RestoreStatus.RESTORED, "status and settings", _side_by_side(vals, None))
    tgt = (
        r.describe_cluster(pre.target, rds=clients.rds)
        if aurora
        else r.describe_instance(pre.target, rds=clients.rds)
    )
    rows = [
        ValidationRow(
            "status",
            src.status,
            tgt.status,
            tgt.status == "available",
            "" if tgt.status == "available" else "target not available",
        ),
        ValidationRow("endpoint", src.endpoint, tgt.endpoint, None, ""),
    ]
    if aurora:
        rows.append(
            ValidationRow(
                "writer instance",
                src.writer_instance,
                tgt.writer_instance,
                bool(tgt.writer_instance),
                "" if tgt.writer_instance else "no writer",
            )
        )
    # the carried settings on the target: the proof that the restore did not drop them
    for check, a, b in r.compare_settings(src, tgt):
        if check.endswith("instance class") and pre.request.instance_class:
            a = pre.request.instance_class
        rows.append(ValidationRow(check, a, b, a == b, "" if a == b else "differs"))
    errors = [] if tgt.status == "available" else [f"target status {tgt.status}"]
    if pre.request.validation_sql:
        errors.append(
            "validation_sql on Aurora/RDS: run it yourself against both endpoints with your DB "
            "credentials (this runbook holds no database password)."
        )
    return Validation(
        RestoreStatus.RESTORED, "status and settings", tuple(rows), errors=tuple(errors)
    )


# --- after the restore -----------------------------------------------------------------------


def next_steps(pre: Preflight, outcome: RestoreOutcome) -> list[str]:
    """The exact cutover steps for this engine; cutover is never automatic."""
    outcome = current(outcome)
    t, src = pre.target, pre.request.source
    if not outcome.restored:
        return [
            "Nothing was restored. Review the plan; to restore, run again with dry_run=False and approved_by=<your name>."
        ]
    if pre.engine is Engine.AURORA:
        return [
            f"Check the data on the new cluster {t} (endpoint {outcome.endpoint}, port {outcome.port}).",
            f"Point the application at it: update the Route53 CNAME (aws route53 change-resource-record-sets, "
            f"record -> {outcome.endpoint}) or the Secrets Manager secret holding the endpoint "
            f"(cutover_secret=<secret id> with its own approval in this runbook).",
            "Restart or roll the application so it re-reads the endpoint; watch errors and latency.",
            "Recreate what no restore carries: reader instances, CloudWatch alarms, event subscriptions.",
            f"Keep {src} untouched until the incident review; then delete it deliberately (deletion protection is on if it was).",
        ]
    if pre.engine is Engine.RDS:
        return [
            f"Check the data on the new instance {t} (endpoint {outcome.endpoint}).",
            f"Switch the Route53 CNAME or the endpoint secret to {outcome.endpoint} (cutover_secret with its own approval).",
            "Restart the application so it re-reads the endpoint; recreate alarms and read replicas.",
            f"Keep {src} untouched until the incident review.",
        ]
    if pre.engine is Engine.DYNAMODB:
        return [
            f"Check items in {t}. DynamoDB cannot rename tables: point the application's table name "
            f"setting (env var / config / SSM parameter) from {src} to {t}, or copy the needed items back into {src} "
            "with a reviewed script.",
            "Re-create what the restore does not carry: auto scaling, alarms, IAM policies, streams.",
            f"Keep {src} untouched until the incident review.",
        ]
    spec = pre.pg_spec
    return [
        f"The restored server runs on 127.0.0.1:{spec.port} from {spec.target_dir} (OS user {spec.os_user}).",
        f"Compare and extract what was lost, e.g. pg_dump -h 127.0.0.1 -p {spec.port} -t <table> --data-only, "
        "and load it into the source after review; or point the application at the restored server.",
        f"When done: pg_ctl -D {spec.target_dir} stop -m fast (as {spec.os_user}) and remove the directory.",
    ]


def plan_cutover(pre: Preflight, outcome: RestoreOutcome, *, clients: RestoreClients) -> Plan:
    """Plan the optional secret update (empty plan without cutover_secret or a restored endpoint)."""
    outcome = current(outcome)
    secret = pre.request.cutover_secret
    if not secret:
        return Plan(title="Cutover: no cutover_secret given (cutover stays manual)")
    if not outcome.restored or not outcome.endpoint:
        return Plan(
            title=f"Cutover of {secret}: nothing restored yet",
            warnings=("Restore first; the secret is untouched.",),
        )
    from opslib.aws import secrets

    return secrets.plan_cutover(secret, outcome.endpoint, secretsmanager=clients.secretsmanager)


def apply_cutover(
    cut_plan: Plan,
    *,
    clients: RestoreClients,
    dry_run: bool,
    approved_by: str,
    change_ticket: str = "",
) -> ApplyResult | None:
    """Apply the secret update with its own approval (``cutover_approved_by``)."""
    from opslib.aws import secrets

    result = gate(
        cut_plan,
        dry_run=dry_run,
        approved_by=approved_by,
        change_ticket=change_ticket,
        execute=lambda ch: secrets.execute_cutover(ch, secretsmanager=clients.secretsmanager),
    )
    if result is not None and result.failed:
        raise RestoreFailedError(
            f"Cutover failed: {result.outcomes[0].detail}. The previous secret version is still current."
        )
    return result


def plan_drill_cleanup(pre: Preflight, outcome: RestoreOutcome) -> Plan:
    """Drill mode: delete the drill target after validation (empty plan otherwise)."""
    outcome = current(outcome)
    if not pre.request.drill:
        return Plan(title="Drill cleanup: not a drill (drill=False); the restored target stays")
    if not outcome.restored:
        return Plan(title="Drill cleanup: nothing was restored")
    if pre.engine in (Engine.AURORA, Engine.RDS):
        from opslib.aws import rds as r

        prot = any(s.name == "deletion protection" and s.value for s in pre.source.settings)
        return r.plan_delete(pre.source.kind, pre.target, deletion_protection=prot)
    if pre.engine is Engine.DYNAMODB:
        from opslib.aws import dynamodb as d

        return d.plan_delete(pre.target)
    return Plan(
        title=f"Drill cleanup: stop and delete {pre.target}",
        changes=(
            Change(
                "pg:stop-and-delete",
                pre.target,
                f"pg_ctl stop -m fast, then delete {pre.target}",
                {"target_dir": pre.target},
            ),
        ),
    )


def apply_cleanup(
    cleanup_plan: Plan,
    pre: Preflight,
    *,
    clients: RestoreClients,
    dry_run: bool,
    approved_by: str,
    change_ticket: str = "",
) -> ApplyResult | None:
    """Delete the drill target through the gate (never the source: the plan names only the target)."""
    req = pre.request

    def execute(ch: Change) -> ChangeOutcome:
        if ch.target in (req.source,) and req.engine is not Engine.POSTGRES:
            raise PreflightError(f"Refusing to delete the source {req.source}.")
        if pre.engine in (Engine.AURORA, Engine.RDS):
            from opslib.aws import rds as r

            return r.execute_change(
                ch, rds=clients.rds, timeout_s=req.timeout_s, poll_s=req.poll_seconds
            )
        if pre.engine is Engine.DYNAMODB:
            from opslib.aws import dynamodb as d

            return d.execute_change(
                ch, dynamodb=clients.dynamodb, timeout_s=req.timeout_s, poll_s=req.poll_seconds
            )
        from opslib.pg import pitr

        pitr.remove_target(ch.params["target_dir"], bin_dir=pre.pg_spec.bin_dir)
        return ChangeOutcome(
            ch.action, ch.target, ChangeStatus.APPLIED, "server stopped, data dir deleted"
        )

    result = gate(
        cleanup_plan,
        dry_run=dry_run,
        approved_by=approved_by,
        change_ticket=change_ticket,
        execute=execute,
    )
    if result is not None and result.failed:
        raise RestoreFailedError(
            f"Drill cleanup failed: {'; '.join(o.detail for o in result.outcomes if o.detail)}. The drill "
            f"target {pre.target} may still exist: delete it by hand."
        )
    return result


def final_status(
    outcome: RestoreOutcome, validation: Validation, cleanup: ApplyResult | None = None
) -> str:
    """One word for the record: dry_run, not_approved, validated, unvalidated (+ _drill_cleaned)."""
    outcome = current(outcome)
    status = validation.status.value if outcome.restored else outcome.status.value
    if cleanup is not None and cleanup.applied and not cleanup.failed:
        status += "_drill_cleaned"
    return status


def _iso_precise(t: _dt.datetime | None) -> str:
    if t is None:
        return "(unknown)"
    return t.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def resolved_restore_time(pre: Preflight) -> str:
    """The restore point as recorded (UTC, full precision); 'latest (~time)' for postgres latest."""
    if pre.request.restore_time is None and pre.engine is Engine.POSTGRES:
        return f"latest (~{_iso_precise(pre.restore_time)})"
    return _iso_precise(pre.restore_time)


def endpoint(outcome: RestoreOutcome) -> str:
    """host:port of the restored target ("" for DynamoDB or when nothing was restored)."""
    out = current(outcome)
    if not out.endpoint:
        return ""
    return f"{out.endpoint}:{out.port}" if out.port else out.endpoint
