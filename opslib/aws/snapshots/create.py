"""Pre-change snapshots and backups: unique names, tags, the handlers that create and wait."""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from opslib.aws.snapshots.audit import cluster_snapshots, instance_snapshots, table_backups
from opslib.aws.snapshots.model import (
    TAG_RUN_ID,
    TAG_TICKET,
    ResourceKind,
    SnapshotInfo,
    call,
    iso,
    utc,
)
from opslib.core import executors
from opslib.core.errors import ConflictError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus
from opslib.core.waits import poll_until

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_rds import RDSClient

T = TypeVar("T")

ACTION_CLUSTER_SNAPSHOT = "rds:CreateDBClusterSnapshot"
ACTION_DB_SNAPSHOT = "rds:CreateDBSnapshot"
ACTION_TABLE_BACKUP = "dynamodb:CreateBackup"
CREATE_ACTIONS = frozenset({ACTION_CLUSTER_SNAPSHOT, ACTION_DB_SNAPSHOT, ACTION_TABLE_BACKUP})

DEFAULT_POLL_SECONDS = 10.0
DEFAULT_TIMEOUT_SECONDS = 3600.0


# --- pre-change snapshots (gated) -------------------------------------------------------------

_RDS_NAME_BAD = re.compile(r"[^A-Za-z0-9-]+")
_DDB_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def snapshot_name(resource: str, label: str, now: _dt.datetime, *, kind: ResourceKind) -> str:
    """``<id>-<label>-<YYYYmmddHHMM>``, made valid for the service (RDS: letters, digits, '-')."""
    stamp = now.astimezone(_dt.UTC).strftime("%Y%m%d%H%M")
    raw = f"{resource}-{label}-{stamp}" if label else f"{resource}-{stamp}"
    if kind is ResourceKind.DYNAMODB:
        return _DDB_NAME_BAD.sub("-", raw)[:255]
    name = re.sub("-{2,}", "-", _RDS_NAME_BAD.sub("-", raw)).strip("-")
    if not name[:1].isalpha():
        name = "s-" + name
    return name[:255].lower()


def unique_name(base: str, taken: Iterable[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... when taken: a snapshot is never overwritten."""
    taken_l = {t.lower() for t in taken}
    if base.lower() not in taken_l:
        return base
    n = 2
    while f"{base}-{n}".lower() in taken_l:
        n += 1
    return f"{base}-{n}"


def tags(change_ticket: str, run_id: str) -> list[dict[str, str]]:
    return [
        {"Key": TAG_TICKET, "Value": change_ticket or "(none)"},
        {"Key": TAG_RUN_ID, "Value": run_id},
    ]


def plan_cluster_snapshot(
    identifier: str,
    *,
    rds: RDSClient,
    label: str,
    now: _dt.datetime,
    change_ticket: str,
    run_id: str,
) -> Change:
    taken = [s.identifier for s in cluster_snapshots(identifier, rds=rds, public_check=False)]
    name = unique_name(snapshot_name(identifier, label, now, kind=ResourceKind.AURORA), taken)
    return Change(
        ACTION_CLUSTER_SNAPSHOT,
        identifier,
        f"manual cluster snapshot {name}, tagged; wait until available",
        {
            "DBClusterIdentifier": identifier,
            "DBClusterSnapshotIdentifier": name,
            "Tags": tags(change_ticket, run_id),
        },
    )


def plan_db_snapshot(
    identifier: str,
    *,
    rds: RDSClient,
    label: str,
    now: _dt.datetime,
    change_ticket: str,
    run_id: str,
) -> Change:
    taken = [s.identifier for s in instance_snapshots(identifier, rds=rds, public_check=False)]
    name = unique_name(snapshot_name(identifier, label, now, kind=ResourceKind.RDS), taken)
    return Change(
        ACTION_DB_SNAPSHOT,
        identifier,
        f"manual DB snapshot {name}, tagged; wait until available",
        {
            "DBInstanceIdentifier": identifier,
            "DBSnapshotIdentifier": name,
            "Tags": tags(change_ticket, run_id),
        },
    )


def plan_table_backup(
    name: str, *, dynamodb: DynamoDBClient, label: str, now: _dt.datetime
) -> Change:
    taken = [s.identifier for s in table_backups(name, dynamodb=dynamodb)]
    backup = unique_name(snapshot_name(name, label, now, kind=ResourceKind.DYNAMODB), taken)
    return Change(
        ACTION_TABLE_BACKUP,
        name,
        f"on-demand backup {backup}; wait until AVAILABLE (DynamoDB backups take no tags: "
        "ticket and run id are in the evidence)",
        {"TableName": name, "BackupName": backup},
    )


# --- the handlers (opslib.core.executors) -----------------------------------------------------


def _created(change: Change, t0: float, snap: SnapshotInfo, kind: ResourceKind) -> ChangeOutcome:
    data = {
        "resource": change.target,
        "kind": kind.value,
        "snapshot_id": snap.identifier,
        "arn": snap.arn,
        "status": snap.status,
        "size_bytes": snap.size_bytes,
        "created_at": iso(snap.created),
        "seconds": round(time.monotonic() - t0, 3),
    }
    return ChangeOutcome(
        change.action, change.target, ChangeStatus.APPLIED, f"{snap.identifier} {snap.status}", data
    )


def _wait(
    what: str,
    read: Callable[[], SnapshotInfo],
    *,
    want: str,
    timeout_s: float,
    poll_s: float,
    resume: str,
) -> SnapshotInfo:
    def check() -> tuple[bool, SnapshotInfo, str]:
        s = read()
        if s.status.lower() in ("failed", "error", "deleted", "deleting"):
            raise ConflictError(f"{what} is {s.status}: it will not become {want}. {resume}")
        return s.status == want, s, s.status

    def timeout_message(s: SnapshotInfo, status: str) -> str:
        return (
            f"{what} is still '{status}' after {timeout_s:.0f} s (wanted '{want}'). It exists and AWS "
            f"keeps working on it: {resume}, or run again with a larger wait_timeout_minutes."
        )

    return poll_until(
        check,
        timeout_s=timeout_s,
        poll_s=poll_s,
        desc=f"{what} -> {want} (s)",
        on_timeout=timeout_message,
    )


def _one_cluster_snapshot(sid: str, *, rds: RDSClient) -> SnapshotInfo:
    s = call(
        f"rds:DescribeDBClusterSnapshots {sid}",
        rds.describe_db_cluster_snapshots,
        DBClusterSnapshotIdentifier=sid,
    )["DBClusterSnapshots"][0]
    gib = s.get("AllocatedStorage")
    return SnapshotInfo(
        s["DBClusterSnapshotIdentifier"], s.get("DBClusterSnapshotArn", ""), s.get("SnapshotType", ""),
        s.get("Status", ""), utc(s.get("SnapshotCreateTime")), None if gib is None else int(gib) * 2**30,
    )  # fmt: skip


def _one_db_snapshot(sid: str, *, rds: RDSClient) -> SnapshotInfo:
    s = call(f"rds:DescribeDBSnapshots {sid}", rds.describe_db_snapshots, DBSnapshotIdentifier=sid)[
        "DBSnapshots"
    ][0]
    gib = s.get("AllocatedStorage")
    return SnapshotInfo(
        s["DBSnapshotIdentifier"], s.get("DBSnapshotArn", ""), s.get("SnapshotType", ""),
        s.get("Status", ""), utc(s.get("SnapshotCreateTime")), None if gib is None else int(gib) * 2**30,
    )  # fmt: skip


def _one_backup(arn: str, *, dynamodb: DynamoDBClient) -> SnapshotInfo:
    b = call(f"dynamodb:DescribeBackup {arn}", dynamodb.describe_backup, BackupArn=arn)[
        "BackupDescription"
    ]["BackupDetails"]
    return SnapshotInfo(
        b.get("BackupName", ""), b.get("BackupArn", arn), b.get("BackupType", ""), b.get("BackupStatus", ""),
        utc(b.get("BackupCreationDateTime")), b.get("BackupSizeBytes"),
    )  # fmt: skip


@executors.register(ACTION_CLUSTER_SNAPSHOT)
def create_cluster_snapshot(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Create the tagged cluster snapshot (AWS refuses a taken name) and wait until available."""
    t0, p = time.monotonic(), dict(change.params)
    sid = p["DBClusterSnapshotIdentifier"]
    call(f"{change.action} {sid}", rds.create_db_cluster_snapshot, **p)
    snap = _wait(
        f"cluster snapshot {sid}",
        lambda: _one_cluster_snapshot(sid, rds=rds),
        want="available",
        timeout_s=timeout_s,
        poll_s=poll_s,
        resume=f"aws rds wait db-cluster-snapshot-available --db-cluster-snapshot-identifier {sid}",
    )
    return _created(change, t0, snap, ResourceKind.AURORA)


@executors.register(ACTION_DB_SNAPSHOT)
def create_db_snapshot(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Create the tagged DB snapshot (AWS refuses a taken name) and wait until available."""
    t0, p = time.monotonic(), dict(change.params)
    sid = p["DBSnapshotIdentifier"]
    call(f"{change.action} {sid}", rds.create_db_snapshot, **p)
    snap = _wait(
        f"DB snapshot {sid}",
        lambda: _one_db_snapshot(sid, rds=rds),
        want="available",
        timeout_s=timeout_s,
        poll_s=poll_s,
        resume=f"aws rds wait db-snapshot-available --db-snapshot-identifier {sid}",
    )
    return _created(change, t0, snap, ResourceKind.RDS)


@executors.register(ACTION_TABLE_BACKUP)
def create_table_backup(
    change: Change,
    *,
    dynamodb: DynamoDBClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Create the on-demand backup and wait until AVAILABLE.

    DynamoDB accepts two backups of one name, so the name is checked again right before the
    call: a name taken since the plan was made fails this change instead of making a twin.
    """
    t0, p = time.monotonic(), dict(change.params)
    table, name = p["TableName"], p["BackupName"]
    if any(b.identifier == name for b in table_backups(table, dynamodb=dynamodb)):
        raise ConflictError(
            f"A backup named {name} of {table} appeared after the plan; run again for a new name."
        )
    arn = call(f"{change.action} {name}", dynamodb.create_backup, **p)["BackupDetails"]["BackupArn"]
    snap = _wait(
        f"backup {name}",
        lambda: _one_backup(arn, dynamodb=dynamodb),
        want="AVAILABLE",
        timeout_s=timeout_s,
        poll_s=poll_s,
        resume=f"aws dynamodb describe-backup --backup-arn {arn}",
    )
    return _created(change, t0, snap, ResourceKind.DYNAMODB)
