"""Backup posture audit and gated pre-change backups (runbook ``backup``).

Every risky change starts with a backup, and every backup promise (35-day retention, a
snapshot a day, PITR on every table, RPO 15 minutes) is only worth what an audit shows. The
runbook does both:

    inputs(...) -> Inputs              parameters checked (no client yet)
    connect(inp) -> Connections        RDS, DynamoDB, PostgreSQL (read only)
    audit(inp, conns) -> AuditReport   read only, every named (or every) resource, worst first
    plan(inp, conns) -> Plan           mode=create: one snapshot/backup per resource
    executor(inp, conns)               what opslib.safety.gate applies the plan with
    create_outcome(plan, result, ...)  what was created (id/ARN, size, time, status)

Unknown ids, a non-empty ``pg_backup_dir`` and more resources than ``max_resources`` are
refused (exit 2) before anything is created.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from psycopg.conninfo import conninfo_to_dict

from opslib.aws import snapshots as s
from opslib.clients import aws_client, pg_connect, refuse_password_in_conninfo
from opslib.core import executors
from opslib.core.errors import BadInputError, ClientConfigError, NotFoundError, OpslibError
from opslib.core.findings import Finding, error_finding
from opslib.core.plans import ApplyResult, ChangeStatus, Plan, check_limit, parse_csv, unique
from opslib.pg import basebackup

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

RUNBOOK = "backup"
RUN_ID_ENV = "OPSLIB_RUN_ID"
ACTIONS = s.CREATE_ACTIONS | {basebackup.ACTION_BASEBACKUP}
_LABEL = re.compile(r"^[A-Za-z0-9-]{1,40}$")


class Mode(StrEnum):
    """audit reads only; create takes a snapshot/backup of each named resource (gated)."""

    AUDIT = "audit"
    CREATE = "create"


class CreateStatus(StrEnum):
    """Where the create step ended."""

    NOTHING_TO_DO = "nothing_to_do"  # audit mode, or an empty plan
    DRY_RUN = "dry_run"
    NOT_APPROVED = "not_approved"
    CREATED = "created"
    FAILED = "failed"


@dataclass(frozen=True)
class Inputs:
    """The parameters, checked and normalised."""

    mode: Mode
    aurora_clusters: tuple[str, ...]
    rds_instances: tuple[str, ...]
    dynamodb_tables: tuple[str, ...]
    pg_dsn: str
    pg_backup_dir: str
    label: str
    policy: s.BackupPolicy
    wait_timeout_minutes: int
    max_resources: int
    change_ticket: str
    region: str
    run_id: str
    now: _dt.datetime
    poll_seconds: float = 10.0

    @property
    def resource_count(self) -> int:
        return (
            len(self.aurora_clusters)
            + len(self.rds_instances)
            + len(self.dynamodb_tables)
            + (1 if self.pg_dsn and self.mode is Mode.CREATE else 0)
        )

    @property
    def timeout_s(self) -> float:
        return float(self.wait_timeout_minutes) * 60.0


@dataclass(frozen=True)
class Connections:
    """The clients the run uses; a source that cannot connect is None plus an error finding."""

    rds: Any = None
    dynamodb: Any = None
    pg: psycopg.Connection | None = None
    findings: tuple[Finding, ...] = ()


def inputs(
    *,
    mode: str = "audit",
    aurora_clusters: str = "",
    rds_instances: str = "",
    dynamodb_tables: str = "",
    pg_dsn: str = "",
    pg_backup_dir: str = "",
    label: str = "pre-deploy",
    min_retention_days: int = 35,
    max_snapshot_age_hours: float = 26,
    rpo_minutes: float = 15,
    wait_timeout_minutes: int = 60,
    max_resources: int = 10,
    change_ticket: str = "",
    region: str = "",
    poll_seconds: float = 10.0,
) -> Inputs:
    """Check every parameter (nothing read yet); one BadInputError naming each bad one."""
    errors: list[str] = []
    m = (mode or "").strip().lower()
    if m not in (Mode.AUDIT, Mode.CREATE):
        errors.append(f"mode {mode!r}: give 'audit' (read only) or 'create' (take backups, gated)")
    if not _LABEL.match(label or ""):
        errors.append(f"label {label!r}: 1-40 letters, digits or '-' (it goes into snapshot names)")
    if not 1 <= int(min_retention_days) <= 35:
        errors.append("min_retention_days: 1..35 (RDS and Aurora keep at most 35 days)")
    if float(max_snapshot_age_hours) <= 0:
        errors.append("max_snapshot_age_hours must be > 0")
    if float(rpo_minutes) <= 0:
        errors.append("rpo_minutes must be > 0")
    if int(wait_timeout_minutes) <= 0:
        errors.append("wait_timeout_minutes must be > 0 (how long to wait for each snapshot)")
    if int(max_resources) < 1:
        errors.append("max_resources must be >= 1")
    dsn, bdir = (pg_dsn or "").strip(), (pg_backup_dir or "").strip()
    refuse_password_in_conninfo(dsn, parameter="pg_dsn")
    if m == Mode.CREATE and dsn and not bdir:
        errors.append("pg_dsn with mode=create needs pg_backup_dir (a new or empty directory)")
    if bdir and not dsn:
        errors.append("pg_backup_dir needs pg_dsn (the server to back up)")
    if bdir and not os.path.isabs(bdir):
        errors.append(f"pg_backup_dir {bdir!r} must be an absolute path")
    ids = {
        "aurora_clusters": tuple(unique(parse_csv(aurora_clusters))),
        "rds_instances": tuple(unique(parse_csv(rds_instances))),
        "dynamodb_tables": tuple(unique(parse_csv(dynamodb_tables))),
    }
    if m == Mode.CREATE and not any(ids.values()) and not dsn:
        errors.append(
            "mode=create needs at least one of aurora_clusters, rds_instances, dynamodb_tables, pg_dsn "
            "(create never means 'everything')"
        )
    if errors:
        raise BadInputError("Bad parameters: " + "; ".join(errors) + ".")
    inp = Inputs(
        mode=Mode(m),
        **ids,
        pg_dsn=dsn,
        pg_backup_dir=bdir,
        label=label,
        policy=s.BackupPolicy(
            int(min_retention_days), float(max_snapshot_age_hours), float(rpo_minutes)
        ),
        wait_timeout_minutes=int(wait_timeout_minutes),
        max_resources=int(max_resources),
        change_ticket=(change_ticket or "").strip(),
        region=(region or "").strip(),
        run_id=os.environ.get(RUN_ID_ENV) or f"interactive-{uuid.uuid4().hex[:10]}",
        now=_dt.datetime.now(_dt.UTC),
        poll_seconds=float(poll_seconds),
    )
    if inp.mode is Mode.CREATE:
        check_limit("max_resources", inp.resource_count, inp.max_resources)
        if bdir:
            basebackup.check_backup_dir(bdir)
    return inp


def connect(inp: Inputs) -> Connections:
    """RDS and DynamoDB clients (standard chain); PostgreSQL read-only when pg_dsn is given."""
    findings: list[Finding] = []
    conn = None
    if inp.pg_dsn:
        try:
            conn = pg_connect(inp.pg_dsn, runbook=RUNBOOK, parameter="pg_dsn")
            conn.execute("SET default_transaction_read_only = on")
        except ClientConfigError as exc:
            if inp.mode is Mode.CREATE:
                raise NotFoundError(f"pg_dsn: {exc}") from exc
            findings.append(error_finding("postgres", exc))
    return Connections(
        rds=aws_client("rds", region=inp.region),
        dynamodb=aws_client("dynamodb", region=inp.region),
        pg=conn,
        findings=tuple(findings),
    )


# --- audit (read only) -----------------------------------------------------------------------


def _pg_name(dsn: str) -> str:
    d = conninfo_to_dict(dsn) if dsn else {}
    host = d.get("host") or os.environ.get("PGHOST", "localhost")
    port = d.get("port") or os.environ.get("PGPORT", "5432")
    db = d.get("dbname") or os.environ.get("PGDATABASE", "")
    return f"postgres {host}:{port}" + (f"/{db}" if db else "")


def audit_postgres(inp: Inputs, conn: psycopg.Connection) -> s.BackupAudit:
    """WAL archiving (the PITR half) and, with pg_backup_dir, the base backup's age.

    With a working archive and ``archive_timeout`` T, at most T of WAL is not archived yet: that
    is the restore lag; without archive_timeout it is the age of the last archived segment."""
    st = basebackup.archiver_status(conn)
    now = inp.now
    last = st.last_archived_time
    if st.archiving and st.archive_timeout_s > 0:
        lag: float | None = st.archive_timeout_s / 60.0
    else:
        lag = None if last is None else (now - last).total_seconds() / 60.0
    newest = basebackup.newest_backup_time(inp.pg_backup_dir) if inp.pg_backup_dir else None
    a = s.BackupAudit(
        resource=_pg_name(inp.pg_dsn),
        kind=s.ResourceKind.POSTGRES,
        retention_days=None,
        pitr=st.archiving,
        latest_restorable=last,
        restore_lag_minutes=lag,
        newest_automated_age_hours=None,
        newest_manual_age_hours=None if newest is None else (now - newest).total_seconds() / 3600.0,
        deletion_protection=None,
        encrypted=None,
    )
    known = bool(inp.pg_backup_dir) and inp.mode is Mode.AUDIT
    return s.with_findings(a, inp.policy, has_retention=False, snapshots_known=known)


def _selection(inp: Inputs, conns: Connections) -> list[tuple[s.ResourceKind, str]]:
    """The named resources; with audit and nothing named, every one in the region."""
    out = [(s.ResourceKind.AURORA, i) for i in inp.aurora_clusters]
    out += [(s.ResourceKind.RDS, i) for i in inp.rds_instances]
    out += [(s.ResourceKind.DYNAMODB, i) for i in inp.dynamodb_tables]
    if out or inp.mode is Mode.CREATE:
        return out
    out += [(s.ResourceKind.AURORA, i) for i in s.list_clusters(rds=conns.rds)]
    out += [(s.ResourceKind.RDS, i) for i in s.list_instances(rds=conns.rds)]
    out += [(s.ResourceKind.DYNAMODB, i) for i in s.list_tables(dynamodb=conns.dynamodb)]
    return out


def audit(inp: Inputs, conns: Connections) -> s.AuditReport:
    """The backup posture of each resource, worst first. An unknown named id refuses (exit 2);
    a denied or throttled check becomes an error row, never a traceback."""
    rows: list[s.BackupAudit] = []
    unknown: list[str] = []
    for kind, ident in _selection(inp, conns):
        try:
            if kind is s.ResourceKind.AURORA:
                rows.append(s.audit_cluster(ident, rds=conns.rds, policy=inp.policy, now=inp.now))
            elif kind is s.ResourceKind.RDS:
                rows.append(s.audit_instance(ident, rds=conns.rds, policy=inp.policy, now=inp.now))
            else:
                rows.append(
                    s.audit_table(ident, dynamodb=conns.dynamodb, policy=inp.policy, now=inp.now)
                )
        except NotFoundError as exc:
            unknown.append(f"{kind.value} {ident}: {exc}")
        except OpslibError as exc:
            rows.append(s.error_audit(ident, kind, exc))
    if unknown:
        raise NotFoundError("Unknown ids (nothing was created): " + " | ".join(unknown))
    if conns.pg is not None:
        try:
            rows.append(audit_postgres(inp, conns.pg))
        except Exception as exc:  # noqa: BLE001 - shown as an error row, never swallowed
            rows.append(s.error_audit(_pg_name(inp.pg_dsn), s.ResourceKind.POSTGRES, exc))
    for f in conns.findings:
        rows.append(
            s.BackupAudit(
                _pg_name(inp.pg_dsn),
                s.ResourceKind.POSTGRES,
                None,
                False,
                None,
                None,
                None,
                None,
                None,
                None,
                (),
                (f,),
            )  # fmt: skip
        )
    return s.AuditReport(s.sort_worst_first(rows), inp.policy)


# --- create (gated) --------------------------------------------------------------------------


def plan(inp: Inputs, conns: Connections) -> Plan:
    """mode=create: one tagged snapshot/backup per named resource, unique names (read only)."""
    if inp.mode is not Mode.CREATE:
        return Plan(title="backup audit: nothing to create (mode=audit)")
    kw = {"label": inp.label, "now": inp.now}
    tag = {"change_ticket": inp.change_ticket, "run_id": inp.run_id}
    changes = [s.plan_cluster_snapshot(i, rds=conns.rds, **kw, **tag) for i in inp.aurora_clusters]
    changes += [s.plan_db_snapshot(i, rds=conns.rds, **kw, **tag) for i in inp.rds_instances]
    changes += [s.plan_table_backup(t, dynamodb=conns.dynamodb, **kw) for t in inp.dynamodb_tables]
    if inp.pg_dsn:
        changes.append(
            basebackup.plan_base_backup(
                inp.pg_dsn,
                inp.pg_backup_dir,
                label=f"{inp.label}-{inp.run_id}",
                resource=_pg_name(inp.pg_dsn),
            )
        )
    return Plan(
        title=f"Pre-change backups ({inp.label}), {len(changes)} resource(s)",
        changes=tuple(changes),
        warnings=(
            "Snapshots are billed until deleted; manual snapshots are not removed by retention.",
            "Nothing is modified: each change only adds a snapshot/backup (never over an existing name).",
        ),
        limits={"max_resources": inp.max_resources},
    )


def executor(inp: Inputs, conns: Connections) -> executors.Executor:
    """Each change to the handler its adapter registered, with this run's clients and bounds."""
    return executors.bind(
        {"timeout_s": inp.timeout_s, "poll_s": inp.poll_seconds},
        allowed=ACTIONS,
        rds=conns.rds,
        dynamodb=conns.dynamodb,
    )


@dataclass(frozen=True)
class CreateOutcome:
    """What the create step did, one row per planned backup."""

    status: CreateStatus
    rows: tuple[dict[str, Any], ...] = ()
    plan_hash: str = ""

    def records(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        cols = [
            "resource",
            "kind",
            "snapshot_id",
            "status",
            "size_bytes",
            "created_at",
            "arn",
            "seconds",
        ]
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in self.rows], columns=cols)


def create_outcome(
    create_plan: Plan, result: ApplyResult | None, *, dry_run: bool
) -> CreateOutcome:
    """The created backups from the gate's result (``result or interactive.applied(plan)``)."""
    if create_plan.empty:
        return CreateOutcome(CreateStatus.NOTHING_TO_DO, plan_hash=create_plan.digest())
    if result is None:
        st = CreateStatus.DRY_RUN if dry_run else CreateStatus.NOT_APPROVED
        rows = tuple(
            {
                "resource": c.target,
                "kind": c.action,
                "snapshot_id": _planned_id(c.params),
                "status": st.value,
            }
            for c in create_plan.changes
        )
        return CreateOutcome(st, rows, create_plan.digest())
    rows = []
    for o in result.outcomes:
        if o.status is ChangeStatus.APPLIED:
            rows.append(dict(o.data))
        else:
            change = next(
                c for c in create_plan.changes if c.target == o.target and c.action == o.action
            )
            rows.append(
                {
                    "resource": o.target,
                    "kind": o.action,
                    "snapshot_id": _planned_id(change.params),
                    "status": o.status.value,
                    "detail": o.detail,
                }
            )
    st = CreateStatus.FAILED if result.failed else CreateStatus.CREATED
    return CreateOutcome(st, tuple(rows), result.plan_hash)


def _planned_id(params: Any) -> str:
    for k in ("DBClusterSnapshotIdentifier", "DBSnapshotIdentifier", "BackupName", "backup_dir"):
        if k in params:
            return str(params[k])
    return ""


def verdict(report: s.AuditReport, created: CreateOutcome, inp: Inputs) -> str:
    """audit: critical / fail / ok; create: the create status (created, dry_run, failed, ...)."""
    return report.verdict if inp.mode is Mode.AUDIT else created.status.value


def raise_if_failed(created: CreateOutcome) -> None:
    """A failed backup fails the run (exit 1) after its outcome was shown and recorded."""
    if created.status is CreateStatus.FAILED:
        bad = [f"{r['resource']}: {r.get('detail', r['status'])}" for r in created.rows if r["status"] != "available"
               and r["status"] != "AVAILABLE" and r["status"] != "verified"]  # fmt: skip
        raise OpslibError(
            "Backup failed: " + "; ".join(bad) + ". Do not start the change without a backup."
        )
