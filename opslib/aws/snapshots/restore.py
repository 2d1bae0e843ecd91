"""Restore an RDS/Aurora snapshot or a DynamoDB on-demand backup into a NEW target.

Why beside the point-in-time path: a snapshot restore drops the same settings a PITR does
(subnet group, security groups, parameter groups, tags, log exports, IAM auth, deletion
protection; and a restored Aurora cluster has no instance), so the plan carries them from the
live source exactly as :mod:`opslib.aws.rds` does. When the source is gone (the DR case), only
what the snapshot itself records is carried, and the plan says so.

Cross-region (``target_region``): the snapshot is first copied into the target region
(``CopyDBSnapshot`` / ``CopyDBClusterSnapshot`` called there, naming the source ARN), then
restored there. Subnet groups and security groups are regional, so they are not carried. A
DynamoDB backup cannot be copied across regions by the DynamoDB API (AWS Backup can): refused.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opslib.aws import dynamodb as d
from opslib.aws import rds as r
from opslib.aws.snapshots.model import call, utc
from opslib.core import executors
from opslib.core.errors import ConflictError, NotFoundError, PreflightError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.waits import poll_until

if TYPE_CHECKING:
    import pandas as pd
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_rds import RDSClient

ACTION_RESTORE_CLUSTER = "rds:RestoreDBClusterFromSnapshot"
ACTION_RESTORE_INSTANCE = "rds:RestoreDBInstanceFromDBSnapshot"
ACTION_COPY_CLUSTER = "rds:CopyDBClusterSnapshot"
ACTION_COPY_DB = "rds:CopyDBSnapshot"
ACTION_RESTORE_TABLE = "dynamodb:RestoreTableFromBackup"

RDS_ACTIONS = frozenset(
    {ACTION_RESTORE_CLUSTER, ACTION_RESTORE_INSTANCE, ACTION_COPY_CLUSTER, ACTION_COPY_DB}
)
#: parameters that name regional resources: never carried into another region
_REGIONAL = ("DBSubnetGroupName", "VpcSecurityGroupIds", "DBClusterParameterGroupName",
             "DBParameterGroupName", "OptionGroupName", "KmsKeyId")  # fmt: skip


def _split(snapshot: str) -> tuple[str, str]:
    """(identifier, region) of a snapshot id or ARN (region "" for a bare id)."""
    if snapshot.startswith("arn:"):
        parts = snapshot.split(":")
        return parts[-1], parts[3]
    return snapshot, ""


@dataclass(frozen=True)
class SnapshotSource:
    """An RDS/Aurora snapshot to restore, and the live source it came from (None when gone)."""

    kind: r.DbKind
    identifier: str
    arn: str
    status: str
    created: _dt.datetime | None
    source_id: str
    engine: str
    engine_version: str
    port: int
    encrypted: bool
    size_bytes: int | None
    region: str
    db: r.DbSource | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def settings(self) -> tuple[r.CarriedSetting, ...]:
        return self.db.settings if self.db else ()

    def settings_frame(self) -> pd.DataFrame:
        import pandas as pd

        if self.db is not None:
            return self.db.settings_frame()
        rows = [{"setting": "(source gone)", "level": "", "source value": self.source_id,
                 "carried by": "only what the snapshot records: engine, version, port, KMS key"}]  # fmt: skip
        return pd.DataFrame(rows, columns=["setting", "level", "source value", "carried by"])


def describe_snapshot(snapshot: str, kind: r.DbKind, *, rds: RDSClient) -> SnapshotSource:
    """The snapshot (id or ARN) and, when it still exists, its source with the settings to carry."""
    ident, region = _split(snapshot)
    try:
        if kind is r.DbKind.AURORA:
            s = call(
                f"rds:DescribeDBClusterSnapshots {ident}",
                rds.describe_db_cluster_snapshots,
                DBClusterSnapshotIdentifier=ident,
            )["DBClusterSnapshots"][0]
            source_id, arn = s.get("DBClusterIdentifier", ""), s.get("DBClusterSnapshotArn", "")
        else:
            s = call(
                f"rds:DescribeDBSnapshots {ident}",
                rds.describe_db_snapshots,
                DBSnapshotIdentifier=ident,
            )["DBSnapshots"][0]
            source_id, arn = s.get("DBInstanceIdentifier", ""), s.get("DBSnapshotArn", "")
    except NotFoundError as exc:
        noun = "cluster snapshot" if kind is r.DbKind.AURORA else "DB snapshot"
        raise NotFoundError(
            f"{noun} {snapshot!r} not found in this account/region. Check from_snapshot and region "
            f"(aws rds describe-db-{'cluster-' if kind is r.DbKind.AURORA else ''}snapshots)."
        ) from exc
    db = None
    try:
        db = (r.describe_cluster if kind is r.DbKind.AURORA else r.describe_instance)(
            source_id, rds=rds
        )
    except NotFoundError:
        db = None  # the source is gone: restore from what the snapshot records
    gib = s.get("AllocatedStorage")
    return SnapshotSource(
        kind=kind,
        identifier=ident,
        arn=arn,
        status=s.get("Status", ""),
        created=utc(s.get("SnapshotCreateTime")),
        source_id=source_id,
        engine=s.get("Engine", ""),
        engine_version=s.get("EngineVersion", ""),
        port=int(s.get("Port") or 0),
        encrypted=bool(s.get("StorageEncrypted") or s.get("Encrypted")),
        size_bytes=None if gib is None else int(gib) * 2**30,
        region=region or rds.meta.region_name,
        db=db,
        raw=s,
    )


def check_available(src: SnapshotSource) -> None:
    """Refuse (exit 2) a snapshot that is not ``available`` yet (e.g. still ``creating``)."""
    if src.status != "available":
        raise PreflightError(
            f"Snapshot {src.identifier} is '{src.status}', not 'available': it cannot be restored yet. "
            f"Wait (aws rds wait db-{'cluster-' if src.kind is r.DbKind.AURORA else ''}snapshot-available) "
            "and run again."
        )


def _carried(src: SnapshotSource, level: r.DbResource, *, cross_region: bool) -> dict[str, Any]:
    out = r.carry_params(src.settings, level)
    if cross_region:
        for k in _REGIONAL:
            out.pop(k, None)
    return out


def _copy(src: SnapshotSource, *, target_region: str, copy_id: str) -> Change:
    cluster = src.kind is r.DbKind.AURORA
    params: dict[str, Any] = {
        "SourceRegion": src.region,
        ("SourceDBClusterSnapshotIdentifier" if cluster else "SourceDBSnapshotIdentifier"): src.arn,
        ("TargetDBClusterSnapshotIdentifier" if cluster else "TargetDBSnapshotIdentifier"): copy_id,
        "CopyTags": True,
    }
    if src.encrypted:
        params["KmsKeyId"] = "alias/aws/rds"  # a KMS key is regional: the target region's default
    return Change(
        ACTION_COPY_CLUSTER if cluster else ACTION_COPY_DB,
        copy_id,
        f"copy {src.identifier} from {src.region} to {target_region}; wait until available",
        params,
    )


def plan_restore(
    src: SnapshotSource,
    *,
    target: str,
    instance_class: str = "",
    target_region: str = "",
    target_az: str = "",
) -> Plan:
    """Restore ``src`` into the NEW ``target`` (after a copy when ``target_region`` differs)."""
    cross = bool(target_region) and target_region != src.region
    changes: list[Change] = []
    snap = src.identifier
    if cross:
        snap = f"{src.identifier}-{target_region}"[:255]
        changes.append(_copy(src, target_region=target_region, copy_id=snap))
    warnings = [
        "The snapshot and its source are not modified. The restored target is billed until deleted."
    ]
    if src.db is None:
        warnings.append(
            f"The source {src.source_id} no longer exists: subnet group, security groups, parameter "
            "groups and tags cannot be carried; the target gets the defaults. Fix them after the restore."
        )
    if cross:
        warnings.append(
            f"Restoring in {target_region}: subnet groups, security groups, parameter/option groups and "
            "KMS keys are regional and are not carried; the target gets that region's defaults."
        )
    if src.kind is r.DbKind.AURORA:
        cp = {"DBClusterIdentifier": target, "SnapshotIdentifier": snap, "Engine": src.engine,
              **_carried(src, r.DbResource.CLUSTER, cross_region=cross)}  # fmt: skip
        if target_az:
            cp["AvailabilityZones"] = [target_az]
        changes.append(
            Change(
                ACTION_RESTORE_CLUSTER,
                target,
                f"new cluster from snapshot {snap}, {len(cp) - 3} source settings carried; wait until available",
                cp,
            )  # fmt: skip
        )
        inst = _carried(src, r.DbResource.INSTANCE, cross_region=cross)
        inst["DBInstanceClass"] = (
            instance_class or (src.db.instance_class if src.db else "") or "db.r6g.large"
        )
        ip = {"DBInstanceIdentifier": r.writer_instance_id(target), "DBClusterIdentifier": target,
              "Engine": src.engine, **inst}  # fmt: skip
        if target_az:
            ip["AvailabilityZone"] = target_az
        changes.append(
            Change(
                r.ACTION_CREATE_INSTANCE,
                ip["DBInstanceIdentifier"],
                f"writer instance {inst['DBInstanceClass']} in {target} (a restored cluster has none)",
                ip,
            )  # fmt: skip
        )
    else:
        ip = {"DBInstanceIdentifier": target, "DBSnapshotIdentifier": snap,
              **_carried(src, r.DbResource.INSTANCE, cross_region=cross)}  # fmt: skip
        ip["DBInstanceClass"] = instance_class or (src.db.instance_class if src.db else "") or ""
        if not ip["DBInstanceClass"]:
            ip.pop("DBInstanceClass")
        if target_az:
            ip["AvailabilityZone"] = target_az
            if ip.pop("MultiAZ", False):
                warnings.append(
                    f"target_az {target_az}: the restored instance is Single-AZ (the source is Multi-AZ)."
                )
        changes.append(
            Change(
                ACTION_RESTORE_INSTANCE,
                target,
                f"new instance from snapshot {snap}, {len(ip) - 2} settings carried; wait until available",
                ip,
            )  # fmt: skip
        )
    where = f" in {target_region}" if cross else ""
    return Plan(title=f"Restore snapshot {src.identifier} -> {target}{where}", changes=tuple(changes),
                warnings=tuple(warnings))  # fmt: skip


# --- DynamoDB on-demand backups --------------------------------------------------------------


@dataclass(frozen=True)
class BackupSource:
    """A DynamoDB backup to restore, and its live source table (None when gone)."""

    arn: str
    name: str
    status: str
    created: _dt.datetime | None
    table: str
    item_count: int | None
    size_bytes: int | None
    table_source: d.TableSource | None = None

    def settings_frame(self) -> pd.DataFrame:
        import pandas as pd

        if self.table_source is not None:
            return self.table_source.settings_frame()
        return pd.DataFrame(
            [
                (
                    "(source table gone)",
                    self.table,
                    "TTL, tags and PITR cannot be read: set them after",
                )
            ],
            columns=["setting", "source value", "restore"],
        )


def describe_backup(arn: str, *, dynamodb: DynamoDBClient) -> BackupSource:
    """The backup and, when it still exists, its source table (TTL, tags, PITR to re-apply)."""
    try:
        desc = call(f"dynamodb:DescribeBackup {arn}", dynamodb.describe_backup, BackupArn=arn)[
            "BackupDescription"
        ]
    except NotFoundError as exc:
        raise NotFoundError(
            f"DynamoDB backup {arn!r} not found. Give from_backup = a BackupArn (aws dynamodb list-backups)."
        ) from exc
    b, t = desc["BackupDetails"], desc.get("SourceTableDetails") or {}
    table = t.get("TableName", "")
    try:
        live = d.describe_table(table, dynamodb=dynamodb) if table else None
    except NotFoundError:
        live = None
    return BackupSource(
        arn=b.get("BackupArn", arn),
        name=b.get("BackupName", ""),
        status=b.get("BackupStatus", ""),
        created=utc(b.get("BackupCreationDateTime")),
        table=table,
        item_count=t.get("ItemCount"),
        size_bytes=b.get("BackupSizeBytes"),
        table_source=live,
    )


def plan_table_restore(src: BackupSource, *, target: str) -> Plan:
    """RestoreTableFromBackup into ``target``, then TTL, tags and PITR from the live source."""
    changes = [
        Change(
            ACTION_RESTORE_TABLE,
            target,
            f"new table from backup {src.name}; wait until ACTIVE",
            {"TargetTableName": target, "BackupArn": src.arn},
        )  # fmt: skip
    ]
    if src.table_source is not None:
        after = d.plan_restore(src.table_source, target=target, restore_time=None).changes[1:]
        changes += list(after)
    else:
        changes.append(
            Change(
                d.ACTION_PITR,
                target,
                "enable point-in-time recovery on the restored table",
                {
                    "TableName": target,
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                },
            )  # fmt: skip
        )
    return Plan(
        title=f"DynamoDB restore of backup {src.name} -> {target}",
        changes=tuple(changes),
        warnings=(
            "The backup and the source table are not modified.",
            "Not carried by a restore: " + "; ".join(d.NOT_CARRIED) + ".",
        ),  # fmt: skip
    )


# --- the handlers (opslib.core.executors) -----------------------------------------------------


def _done(change: Change, t0: float, detail: str, data: dict[str, Any]) -> ChangeOutcome:
    data["seconds"] = round(time.monotonic() - t0, 3)
    return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, detail, data)


def _wait_snapshot(
    sid: str, *, cluster: bool, rds: RDSClient, timeout_s: float, poll_s: float
) -> str:
    def check() -> tuple[bool, str, str]:
        if cluster:
            s = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=sid)[
                "DBClusterSnapshots"
            ][0]
        else:
            s = rds.describe_db_snapshots(DBSnapshotIdentifier=sid)["DBSnapshots"][0]
        st = s.get("Status", "")
        if st in ("failed", "deleting"):
            raise ConflictError(f"snapshot copy {sid} is {st}")
        return st == "available", st, st

    return poll_until(check, timeout_s=timeout_s, poll_s=poll_s, desc=f"{sid} -> available (s)",
                      on_timeout=lambda st, _s: f"Snapshot copy {sid} is '{st}' after {timeout_s:.0f} s; "
                      "it exists and AWS keeps copying: wait for it, then run again with a larger "
                      "wait_timeout_minutes.")  # fmt: skip


@executors.register(ACTION_COPY_CLUSTER, ACTION_COPY_DB)
def copy_snapshot(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = r.DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = r.DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Copy the snapshot into this client's (the target) region and wait until available."""
    t0, p = time.monotonic(), dict(change.params)
    cluster = change.action == ACTION_COPY_CLUSTER
    fn = rds.copy_db_cluster_snapshot if cluster else rds.copy_db_snapshot
    call(f"{change.action} {change.target}", fn, **p)
    _wait_snapshot(change.target, cluster=cluster, rds=rds, timeout_s=timeout_s, poll_s=poll_s)
    return _done(change, t0, f"copy {change.target} available in {rds.meta.region_name}", {})


@executors.register(ACTION_RESTORE_CLUSTER)
def restore_cluster(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = r.DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = r.DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Restore the cluster from the snapshot and wait (bounded) until it is available."""
    t0, ident = time.monotonic(), change.params["DBClusterIdentifier"]
    call(f"{change.action} {ident}", rds.restore_db_cluster_from_snapshot, **change.params)
    r.wait_for(r.DbResource.CLUSTER, ident, rds=rds, timeout_s=timeout_s, poll_s=poll_s,
               resume_hint=", then create its writer instance (aws rds create-db-instance)")  # fmt: skip
    c = call(
        f"rds:DescribeDBClusters {ident}", rds.describe_db_clusters, DBClusterIdentifier=ident
    )["DBClusters"][0]
    data = {
        "endpoint": c.get("Endpoint", ""),
        "port": c.get("Port"),
        "arn": c.get("DBClusterArn", ""),
    }
    return _done(change, t0, f"cluster {ident} available at {data['endpoint']}", data)


@executors.register(ACTION_RESTORE_INSTANCE)
def restore_instance(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = r.DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = r.DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Restore the instance from the snapshot and wait (bounded) until it is available."""
    t0, ident = time.monotonic(), change.params["DBInstanceIdentifier"]
    call(f"{change.action} {ident}", rds.restore_db_instance_from_db_snapshot, **change.params)
    r.wait_for(r.DbResource.INSTANCE, ident, rds=rds, timeout_s=timeout_s, poll_s=poll_s)
    i = call(
        f"rds:DescribeDBInstances {ident}", rds.describe_db_instances, DBInstanceIdentifier=ident
    )["DBInstances"][0]
    ep = i.get("Endpoint") or {}
    data = {
        "endpoint": ep.get("Address", ""),
        "port": ep.get("Port"),
        "az": i.get("AvailabilityZone", ""),
    }
    return _done(change, t0, f"instance {ident} available at {data['endpoint']}", data)


@executors.register(ACTION_RESTORE_TABLE)
def restore_table(
    change: Change,
    *,
    dynamodb: DynamoDBClient,
    timeout_s: float = d.DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = d.DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Restore the backup into a new table and wait (bounded) until it is ACTIVE."""
    t0, target = time.monotonic(), change.params["TargetTableName"]
    desc = call(f"{change.action} {target}", dynamodb.restore_table_from_backup, **change.params)
    d.wait_active(target, dynamodb=dynamodb, timeout_s=timeout_s, poll_s=poll_s)
    return _done(
        change, t0, f"table {target} ACTIVE", {"arn": desc["TableDescription"].get("TableArn", "")}
    )
