"""Self-hosted PostgreSQL: base backup + archived WAL into a NEW data dir, a new server on its
own port; validation compares row counts (or ``validation_sql``) on source and target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from opslib.clients import pg_connect, refuse_password_in_conninfo
from opslib.core.errors import BadInputError, ClientConfigError, NotFoundError, PreflightError
from opslib.core.plans import ApplyResult, Plan
from opslib.pg import basebackup, pitr
from opslib.runbooks.pitr_restore.engines.base import RestoreEngine, check_window
from opslib.runbooks.pitr_restore.model import (
    RUNBOOK,
    Check,
    CheckResult,
    Engine,
    Preflight,
    RestoreClients,
    RestoreOutcome,
    RestoreRequest,
    RestoreStatus,
    Validation,
    cell,
    iso,
    iso_precise,
    side_by_side,
)

if TYPE_CHECKING:
    import pandas as pd
    import psycopg


@dataclass(frozen=True)
class PgSource:
    """A self-hosted PostgreSQL source: its base backup, its WAL archive, and the restore spec."""

    conninfo: str
    base_backup: pitr.BaseBackupInfo
    wal_archive: pitr.WalArchiveInfo
    spec: pitr.PgRestoreSpec

    def settings_frame(self) -> pd.DataFrame:
        """Nothing is dropped: the restored data dir is a copy of the base backup."""
        import pandas as pd

        return pd.DataFrame(columns=["setting", "source value", "restore"])


def source_of(pre: Preflight) -> PgSource:
    """The PostgreSQL part of a preflight (the backup, the archive, the restore spec)."""
    if not isinstance(pre.source, PgSource):
        raise TypeError(f"not a PostgreSQL preflight: {type(pre.source).__name__}")
    return pre.source


def query_cells(cols: list[str], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Flatten a result set into check -> value; keyed by the first column when it is a unique key."""
    if len(cols) >= 2 and len({r[0] for r in rows}) == len(rows):
        return {f"{r[0]}.{c}": cell(v) for r in rows for c, v in zip(cols[1:], r[1:], strict=True)}
    return {
        (f"row {i + 1}.{c}" if len(rows) > 1 else c): cell(v)
        for i, r in enumerate(rows)
        for c, v in zip(cols, r, strict=True)
    }


class PostgresEngine(RestoreEngine):
    """A self-hosted PostgreSQL cluster, restored from its base backup and WAL archive."""

    engine: ClassVar[Engine] = Engine.POSTGRES
    description: ClassVar[str] = "self-hosted"
    actions: ClassVar[frozenset[str]] = pitr.RESTORE_ACTIONS

    def target_for(self, req: RestoreRequest) -> str:
        refuse_password_in_conninfo(req.source, parameter="source")
        missing = [
            n
            for n, v in (
                ("pg_base_backup", req.pg_base_backup),
                ("pg_wal_archive", req.pg_wal_archive),
                ("pg_target_dir", req.pg_target_dir),
            )
            if not v
        ]
        if missing:
            raise BadInputError(
                f"engine=postgres needs {', '.join(missing)}: the base backup directory, the WAL archive "
                "directory and a NEW data directory for the restored server."
            )
        if not 0 <= req.pg_target_port < 65536:
            raise BadInputError("pg_target_port must be 0 (a free port) or a TCP port number.")
        return str(Path(req.pg_target_dir))

    def connect(self, req: RestoreRequest) -> RestoreClients:
        if not req.source:
            return RestoreClients()
        try:
            conn = pg_connect(req.source, runbook=RUNBOOK, parameter="source")
        except ClientConfigError as exc:
            raise NotFoundError(
                f"The source database is unreachable: {exc} Give source = a conninfo of the source "
                "(no password: use PGPASSWORD or ~/.pgpass), or leave it empty to validate the target only."
            ) from exc
        # the source is used read-only: any write attempt fails on the server
        conn.execute("SET default_transaction_read_only = on")
        return RestoreClients(source_conn=conn)

    def preflight(self, req: RestoreRequest, clients: RestoreClients) -> Preflight:
        backup = pitr.inspect_base_backup(req.pg_base_backup, wal_archive=req.pg_wal_archive)
        archive = pitr.inspect_wal_archive(req.pg_wal_archive)
        checks = [
            Check(
                "base backup",
                CheckResult.OK,
                f"{backup.path}: PostgreSQL {backup.pg_major}, taken {iso(backup.start_time)}, owner {backup.owner}, {backup.size_bytes / 1e6:.0f} MB",
            ),
        ]
        verified = basebackup.verify(req.pg_base_backup, timeout_s=req.timeout_s)
        if verified.method == "none":
            checks.append(Check("pg_verifybackup", CheckResult.SKIPPED, verified.output))
        elif not verified.ok:
            raise PreflightError(
                f"pg_verifybackup failed on {req.pg_base_backup}: the base backup is damaged or "
                f"incomplete; nothing was restored. {verified.output[-600:]} Restore from another "
                "base backup (take a fresh one with the backup runbook)."
            )
        else:
            checks.append(
                Check(
                    "pg_verifybackup",
                    CheckResult.OK,
                    f"every file matches backup_manifest ({verified.method}, {verified.seconds:.1f} s)",
                )
            )
        if archive.segments == 0:
            raise PreflightError(
                f"The WAL archive {archive.path} holds no WAL segments: nothing to replay. Check the "
                "source's archive_command and pg_stat_archiver."
            )
        checks.append(
            Check(
                "WAL archive",
                CheckResult.OK,
                f"{archive.segments} segments, {archive.total_bytes / 1e6:.0f} MB, newest {archive.newest_segment} at {iso(archive.newest_archived_at)}",
            )
        )
        if clients.source_conn is not None:
            row = clients.source_conn.execute(
                "select current_database(), current_setting('server_version')"
            ).fetchone()
            checks.append(
                Check(
                    "source reachable (read only)",
                    CheckResult.OK,
                    f"database {row[0]}, PostgreSQL {row[1]}",
                )
            )
        else:
            checks.append(
                Check(
                    "source",
                    CheckResult.SKIPPED,
                    "no source conninfo: the target is validated alone",
                )
            )
        earliest, latest = backup.consistent_from, archive.newest_archived_at
        check_window(
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
        point = iso(resolved) if req.restore_time else f"end of archived WAL (~{iso(latest)})"
        checks.append(
            Check(
                "restore time in window",
                CheckResult.OK,
                f"{point} in {iso(earliest)} .. {iso(latest)}",
            )
        )
        checks.append(
            Check(
                "target dir does not exist",
                CheckResult.OK,
                f"{spec.target_dir}; server as {spec.os_user} on port {spec.port}",
            )
        )
        src = PgSource(conninfo=req.source, base_backup=backup, wal_archive=archive, spec=spec)
        return Preflight(req, src, spec.target_dir, earliest, latest, resolved, tuple(checks))

    def plan(self, pre: Preflight) -> Plan:
        return pitr.plan_restore(source_of(pre).spec)

    def plan_drill_cleanup(self, pre: Preflight) -> Plan:
        return pitr.plan_delete(pre.target)

    def executor_context(self, pre: Preflight) -> Mapping[str, Any]:
        return {"pg_spec": source_of(pre).spec, "timeout_s": pre.request.timeout_s}

    def endpoint(self, pre: Preflight, result: ApplyResult) -> tuple[str, int]:
        return "127.0.0.1", source_of(pre).spec.port

    def what_exists(self, pre: Preflight, result: ApplyResult | None) -> str:
        spec = source_of(pre).spec
        return (
            f"Data dir {pre.target} {'exists' if Path(pre.target).exists() else 'was not created'}; "
            f"log {spec.log_path}. Stop a server there with `pg_ctl -D {pre.target} stop -m fast`, "
            "delete the dir, fix the cause and run again."
        )

    def validate(
        self, pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients
    ) -> Validation:
        query = pre.request.validation_sql
        kind = "validation_sql" if query else "row counts"
        errors: list[str] = []

        def read(conn: psycopg.Connection) -> dict[str, Any]:
            if query:
                return query_cells(*pitr.run_query(conn, query))
            return dict(pitr.row_counts(conn))

        src_vals: dict[str, Any] | None = None
        if clients.source_conn is not None:
            try:
                src_vals = read(clients.source_conn)
            except Exception as exc:  # noqa: BLE001 - shown in the validation, never swallowed
                errors.append(f"source: {type(exc).__name__}: {exc}")
        tgt_vals: dict[str, Any] | None = None
        if outcome.restored:
            conninfo = pitr.restored_conninfo(
                pre.request.source, outcome.port or source_of(pre).spec.port
            )
            try:
                with pg_connect(conninfo, runbook=RUNBOOK, parameter="source") as conn:
                    tgt_vals = read(conn)
            except Exception as exc:  # noqa: BLE001 - shown in the validation, never swallowed
                errors.append(f"target: {type(exc).__name__}: {exc}")
        return Validation(
            RestoreStatus.RESTORED, kind, side_by_side(src_vals, tgt_vals), errors=tuple(errors)
        )

    def next_steps(self, pre: Preflight, outcome: RestoreOutcome) -> list[str]:
        spec = source_of(pre).spec
        return [
            f"The restored server runs on 127.0.0.1:{spec.port} from {spec.target_dir} (OS user {spec.os_user}).",
            f"Compare and extract what was lost, e.g. pg_dump -h 127.0.0.1 -p {spec.port} -t <table> --data-only, "
            "and load it into the source after review; or point the application at the restored server.",
            f"When done: pg_ctl -D {spec.target_dir} stop -m fast (as {spec.os_user}) and remove the directory.",
        ]

    def restore_point(self, pre: Preflight) -> str:
        if pre.request.restore_time is None:  # "latest": the end of the archived WAL
            return f"latest (~{iso_precise(pre.restore_time)})"
        return iso_precise(pre.restore_time)
