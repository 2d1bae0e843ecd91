"""The backup audit of one resource (public: the health check reuses it) and of a selection."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from opslib.aws.snapshots.model import (
    BackupAudit,
    BackupPolicy,
    ResourceKind,
    SnapshotInfo,
    call,
    hours,
    iso,
    pages,
    round_,
    utc,
)
from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core.errors import NotFoundError
from opslib.core.findings import Finding, Severity

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_rds import RDSClient

T = TypeVar("T")

DEFAULT_POLICY = BackupPolicy()


# --- snapshots of one resource ---------------------------------------------------------------


def cluster_snapshots(
    identifier: str, *, rds: RDSClient, public_check: bool = True
) -> list[SnapshotInfo]:
    """Every snapshot of an Aurora cluster; manual ones checked for public sharing."""
    out = []
    for s in pages(
        rds, "describe_db_cluster_snapshots", "DBClusterSnapshots", DBClusterIdentifier=identifier
    ):
        sid = s["DBClusterSnapshotIdentifier"]
        manual = s.get("SnapshotType") == "manual"
        public = False
        if manual and public_check:
            res = call(
                f"rds:DescribeDBClusterSnapshotAttributes {sid}",
                rds.describe_db_cluster_snapshot_attributes,
                DBClusterSnapshotIdentifier=sid,
            )["DBClusterSnapshotAttributesResult"]
            public = _restorable_by_all(res.get("DBClusterSnapshotAttributes") or [])
        gib = s.get("AllocatedStorage")
        out.append(
            SnapshotInfo(
                sid,
                s.get("DBClusterSnapshotArn", ""),
                s.get("SnapshotType", ""),
                s.get("Status", ""),
                utc(s.get("SnapshotCreateTime")),
                None if gib is None else int(gib) * 2**30,
                public,
            )
        )
    return out


def instance_snapshots(
    identifier: str, *, rds: RDSClient, public_check: bool = True
) -> list[SnapshotInfo]:
    """Every snapshot of an RDS instance; manual ones checked for public sharing."""
    out = []
    for s in pages(rds, "describe_db_snapshots", "DBSnapshots", DBInstanceIdentifier=identifier):
        sid = s["DBSnapshotIdentifier"]
        manual = s.get("SnapshotType") == "manual"
        public = False
        if manual and public_check:
            res = call(
                f"rds:DescribeDBSnapshotAttributes {sid}",
                rds.describe_db_snapshot_attributes,
                DBSnapshotIdentifier=sid,
            )["DBSnapshotAttributesResult"]
            public = _restorable_by_all(res.get("DBSnapshotAttributes") or [])
        gib = s.get("AllocatedStorage")
        out.append(
            SnapshotInfo(
                sid,
                s.get("DBSnapshotArn", ""),
                s.get("SnapshotType", ""),
                s.get("Status", ""),
                utc(s.get("SnapshotCreateTime")),
                None if gib is None else int(gib) * 2**30,
                public,
            )
        )
    return out


def table_backups(name: str, *, dynamodb: DynamoDBClient) -> list[SnapshotInfo]:
    """Every on-demand (USER) and system backup of a DynamoDB table."""
    out, kw = [], {"TableName": name}
    while True:
        page = call(f"dynamodb:ListBackups {name}", dynamodb.list_backups, **kw)
        for b in page.get("BackupSummaries", []):
            out.append(
                SnapshotInfo(
                    b.get("BackupName", ""),
                    b.get("BackupArn", ""),
                    b.get("BackupType", ""),
                    b.get("BackupStatus", ""),
                    utc(b.get("BackupCreationDateTime")),
                    b.get("BackupSizeBytes"),
                )
            )
        if not page.get("LastEvaluatedBackupArn"):
            return out
        kw["ExclusiveStartBackupArn"] = page["LastEvaluatedBackupArn"]


def _restorable_by_all(attributes: Iterable[Mapping[str, Any]]) -> bool:
    return any(
        a.get("AttributeName") == "restore" and "all" in (a.get("AttributeValues") or [])
        for a in attributes
    )


def newest_completed(snaps: Iterable[SnapshotInfo], *, manual: bool) -> _dt.datetime | None:
    """Creation time of the newest ``available`` snapshot, manual or automated: the one rule
    for "how old is the last good backup" (the backup audit and the morning check use it)."""
    done = [
        s.created
        for s in snaps
        if s.manual == manual and s.created and s.status.lower() == "available"
    ]
    return max(done, default=None)


# --- the audit of one resource ---------------------------------------------------------------


def _findings(
    a: BackupAudit,
    policy: BackupPolicy,
    *,
    has_retention: bool = True,
    snapshots_known: bool = True,
) -> tuple[Finding, ...]:
    src = f"{a.kind.value}:{a.resource}"
    out: list[Finding] = []

    def add(sev: Severity, title: str, evidence: str, next_action: str) -> None:
        out.append(Finding(sev, f"{a.resource}: {title}", src, evidence, next_action))

    for sid in a.public_snapshots:
        add(
            Severity.CRITICAL,
            f"snapshot {sid} is public",
            "restore attribute includes 'all': any AWS account can copy and restore this data",
            f"Stop sharing it now: aws rds modify-db-{'cluster-' if a.kind is ResourceKind.AURORA else ''}"
            f"snapshot-attribute --attribute-name restore --values-to-remove all (snapshot {sid}); "
            "then review who copied it (CloudTrail).",
        )
    if has_retention:
        if not a.retention_days:
            add(
                Severity.CRITICAL,
                "automated backups are off",
                "backup retention 0 days: no point-in-time recovery, no automated snapshot",
                f"Set the retention to {policy.min_retention_days} days (modify --backup-retention-period).",
            )
        elif a.retention_days < policy.min_retention_days:
            add(
                Severity.WARNING,
                f"retention {a.retention_days} days < {policy.min_retention_days}",
                f"backup retention {a.retention_days} days",
                f"Raise it to {policy.min_retention_days} days (modify --backup-retention-period "
                f"{policy.min_retention_days} --apply-immediately).",
            )
    elif not a.pitr:
        add(
            Severity.WARNING,
            "point-in-time recovery is off",
            "ContinuousBackups: PointInTimeRecoveryStatus DISABLED"
            if a.kind is ResourceKind.DYNAMODB
            else "WAL archiving is off or failing",
            "aws dynamodb update-continuous-backups --point-in-time-recovery-specification "
            "PointInTimeRecoveryEnabled=true"
            if a.kind is ResourceKind.DYNAMODB
            else "Set archive_mode = on and an archive_command that copies WAL off the host; "
            "check pg_stat_archiver.failed_count.",
        )
    if a.pitr and a.restore_lag_minutes is not None and a.restore_lag_minutes > policy.rpo_minutes:
        add(
            Severity.WARNING,
            f"latest restorable time {a.restore_lag_minutes:.0f} min ago > RPO {policy.rpo_minutes:g} min",
            f"latest restorable {iso(a.latest_restorable)}",
            "Check that backups/WAL shipping run (instance status, storage, events).",
        )
    age = a.newest_snapshot_age_hours
    if not snapshots_known:
        add(
            Severity.INFO,
            "base backups not checked",
            "no backup directory given",
            "Give pg_backup_dir to check them.",
        )
    elif age is None:
        sev = Severity.WARNING if a.pitr else Severity.CRITICAL
        add(
            sev,
            "no completed snapshot or backup",
            "none listed",
            "Take one now (this runbook, mode=create).",
        )
    elif age > policy.max_snapshot_age_hours:
        add(
            Severity.WARNING,
            f"newest snapshot {age:.1f} h old > {policy.max_snapshot_age_hours:g} h",
            f"automated {round_(a.newest_automated_age_hours)} h, manual {round_(a.newest_manual_age_hours)} h",
            "Check the backup window/daily backup job; take one now (mode=create) before any change.",
        )
    if a.encrypted is False:
        add(
            Severity.WARNING,
            "storage not encrypted",
            "StorageEncrypted false: its snapshots are unencrypted too",
            "Restore an encrypted copy (copy the snapshot with a KMS key, restore, cut over).",
        )
    if a.deletion_protection is False:
        add(
            Severity.INFO,
            "deletion protection off",
            "DeletionProtection false",
            "Turn it on for production data.",
        )
    if not out:
        out.append(Finding(Severity.OK, f"{a.resource}: backups meet the policy", src))
    return tuple(out)


def audit_cluster(
    identifier: str,
    *,
    rds: RDSClient,
    policy: BackupPolicy = DEFAULT_POLICY,
    now: _dt.datetime | None = None,
) -> BackupAudit:
    """The backup posture of one Aurora cluster (NotFoundError when it does not exist)."""
    now = now or _dt.datetime.now(_dt.UTC)
    try:
        c = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
            raise NotFoundError(
                f"Aurora cluster {identifier!r} not found in this account/region. Check aurora_clusters "
                "and region (aws rds describe-db-clusters --query 'DBClusters[].DBClusterIdentifier')."
            ) from exc
        raise translate_aws_error(exc, f"rds:DescribeDBClusters {identifier}") from exc
    return _db_audit(
        identifier, ResourceKind.AURORA, c, cluster_snapshots(identifier, rds=rds), policy, now
    )


def audit_instance(
    identifier: str,
    *,
    rds: RDSClient,
    policy: BackupPolicy = DEFAULT_POLICY,
    now: _dt.datetime | None = None,
) -> BackupAudit:
    """The backup posture of one RDS instance (NotFoundError when it does not exist)."""
    now = now or _dt.datetime.now(_dt.UTC)
    try:
        i = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
            raise NotFoundError(
                f"RDS instance {identifier!r} not found in this account/region. Check rds_instances and "
                "region (aws rds describe-db-instances --query 'DBInstances[].DBInstanceIdentifier')."
            ) from exc
        raise translate_aws_error(exc, f"rds:DescribeDBInstances {identifier}") from exc
    return _db_audit(
        identifier, ResourceKind.RDS, i, instance_snapshots(identifier, rds=rds), policy, now
    )


def _db_audit(
    identifier: str,
    kind: ResourceKind,
    raw: Mapping[str, Any],
    snaps: list[SnapshotInfo],
    policy: BackupPolicy,
    now: _dt.datetime,
) -> BackupAudit:
    retention = int(raw.get("BackupRetentionPeriod") or 0)
    latest = utc(raw.get("LatestRestorableTime"))
    lag = None if latest is None else max(0.0, (now - latest).total_seconds() / 60.0)
    a = BackupAudit(
        resource=identifier,
        kind=kind,
        retention_days=retention,
        pitr=retention > 0,
        latest_restorable=latest,
        restore_lag_minutes=lag,
        newest_automated_age_hours=hours(now, newest_completed(snaps, manual=False)),
        newest_manual_age_hours=hours(now, newest_completed(snaps, manual=True)),
        deletion_protection=bool(raw.get("DeletionProtection")),
        encrypted=bool(raw.get("StorageEncrypted")),
        public_snapshots=tuple(s.identifier for s in snaps if s.public),
    )
    return with_findings(a, policy)


def with_findings(
    a: BackupAudit,
    policy: BackupPolicy,
    *,
    has_retention: bool = True,
    snapshots_known: bool = True,
) -> BackupAudit:
    """``a`` with the findings the policy gives it (public for audits built elsewhere, e.g. PostgreSQL)."""
    return replace(
        a,
        findings=_findings(a, policy, has_retention=has_retention, snapshots_known=snapshots_known),
    )


def audit_table(
    name: str,
    *,
    dynamodb: DynamoDBClient,
    policy: BackupPolicy = DEFAULT_POLICY,
    now: _dt.datetime | None = None,
) -> BackupAudit:
    """The backup posture of one DynamoDB table: PITR (ContinuousBackups) and on-demand backups."""
    now = now or _dt.datetime.now(_dt.UTC)
    try:
        t = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
            raise NotFoundError(
                f"DynamoDB table {name!r} not found in this account/region. Check dynamodb_tables and "
                "region (aws dynamodb list-tables)."
            ) from exc
        raise translate_aws_error(exc, f"dynamodb:DescribeTable {name}") from exc
    cb = call(
        f"dynamodb:DescribeContinuousBackups {name}",
        dynamodb.describe_continuous_backups,
        TableName=name,
    )["ContinuousBackupsDescription"]
    p = cb.get("PointInTimeRecoveryDescription") or {}
    pitr = p.get("PointInTimeRecoveryStatus") == "ENABLED"
    latest = utc(p.get("LatestRestorableDateTime")) if pitr else None
    if pitr and latest is None:
        latest = now  # DynamoDB restores to ~5 minutes ago; the API omits it until the first restore window
    snaps = table_backups(name, dynamodb=dynamodb)
    sse = (t.get("SSEDescription") or {}).get("Status")
    a = BackupAudit(
        resource=name,
        kind=ResourceKind.DYNAMODB,
        retention_days=35 if pitr else None,
        pitr=pitr,
        latest_restorable=latest,
        restore_lag_minutes=None
        if latest is None
        else max(0.0, (now - latest).total_seconds() / 60.0),
        newest_automated_age_hours=hours(now, newest_completed(snaps, manual=False)),
        newest_manual_age_hours=hours(now, newest_completed(snaps, manual=True)),
        deletion_protection=bool(t.get("DeletionProtectionEnabled")),
        # DynamoDB encrypts every table at rest (AWS-owned key when SSEDescription is absent)
        encrypted=sse in (None, "ENABLED", "ENABLING", "UPDATING"),
    )
    return with_findings(a, policy, has_retention=False)


# --- inventory and the audit of a selection ---------------------------------------------------


def list_clusters(*, rds: RDSClient) -> list[str]:
    return [c["DBClusterIdentifier"] for c in pages(rds, "describe_db_clusters", "DBClusters")]


def list_instances(*, rds: RDSClient) -> list[str]:
    """RDS instances that are not Aurora cluster members (those are audited with their cluster)."""
    return [
        i["DBInstanceIdentifier"]
        for i in pages(rds, "describe_db_instances", "DBInstances")
        if not i.get("DBClusterIdentifier")
    ]


def list_tables(*, dynamodb: DynamoDBClient) -> list[str]:
    return [
        n
        for page in dynamodb.get_paginator("list_tables").paginate()
        for n in page.get("TableNames", [])
    ]


def error_audit(resource: str, kind: ResourceKind, exc: BaseException) -> BackupAudit:
    """An audit row for a check that could not run (denied, throttled): shown, not swallowed."""
    f = Finding(
        Severity.ERROR,
        f"{resource}: backup check failed: {type(exc).__name__}",
        f"{kind.value}:{resource}",
        str(exc)[:500],
        "Check credentials and the rds:Describe*/dynamodb:Describe*/ListBackups permissions.",
    )
    return BackupAudit(resource, kind, None, False, None, None, None, None, None, None, (), (f,))
