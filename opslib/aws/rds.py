"""Aurora clusters and RDS instances: describe a source, its restorable window, and restore it
point-in-time to a NEW target that keeps what a bare restore would drop.

A bare ``restore-db-cluster-to-point-in-time`` gives a cluster in the default subnet group and
security group, with the default parameter group, no tags, no log exports, no IAM auth, no
deletion protection, and no instance at all: an endpoint nobody can reach from the
application subnets. :func:`carried_settings` lists each such setting read from the source,
and the plan passes each one explicitly, so the operator sees them before approving.

The module registers the handler of every action it plans (:mod:`opslib.core.executors`);
AWS errors are translated once by :func:`opslib.clients.translate_aws_error`.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.errors import NotFoundError, PreflightError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.waits import poll_until

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    import pandas as pd
    from mypy_boto3_rds import RDSClient

T = TypeVar("T")


class DbKind(StrEnum):
    """What a :class:`DbSource` is."""

    AURORA = "aurora"  # an Aurora cluster (with its writer instance)
    RDS = "rds"  # an RDS instance


class DbResource(StrEnum):
    """The two RDS resources a restore creates, waits for and deletes."""

    CLUSTER = "cluster"
    INSTANCE = "instance"


AURORA = DbKind.AURORA
RDS = DbKind.RDS

ACTION_RESTORE_CLUSTER = "rds:RestoreDBClusterToPointInTime"
ACTION_CREATE_INSTANCE = "rds:CreateDBInstance"
ACTION_RESTORE_INSTANCE = "rds:RestoreDBInstanceToPointInTime"
ACTION_MODIFY_CLUSTER = "rds:ModifyDBCluster"
ACTION_MODIFY_INSTANCE = "rds:ModifyDBInstance"
ACTION_DELETE_INSTANCE = "rds:DeleteDBInstance"
ACTION_DELETE_CLUSTER = "rds:DeleteDBCluster"

#: every action of a cluster or instance restore and of its drill cleanup
RESTORE_ACTIONS = frozenset(
    {
        ACTION_RESTORE_CLUSTER,
        ACTION_CREATE_INSTANCE,
        ACTION_RESTORE_INSTANCE,
        ACTION_MODIFY_CLUSTER,
        ACTION_MODIFY_INSTANCE,
        ACTION_DELETE_INSTANCE,
        ACTION_DELETE_CLUSTER,
    }
)

DEFAULT_POLL_SECONDS = 15.0
DEFAULT_TIMEOUT_SECONDS = 3600.0


def _call(what: str, fn: Callable[..., T], /, **params: Any) -> T:
    """One RDS API call; an AWS error becomes the opslib error of its kind, naming ``what``."""
    try:
        return fn(**params)
    except ClientError as exc:
        raise translate_aws_error(exc, what) from exc


@dataclass(frozen=True)
class CarriedSetting:
    """One source setting a bare restore would drop, and the API parameter that carries it."""

    name: str
    value: Any
    api_param: str  # parameter of the restore/create call, or "" when AWS keeps it (verified after)
    level: DbResource = DbResource.CLUSTER


@dataclass(frozen=True)
class DbSource:
    """An Aurora cluster (with its writer instance) or an RDS instance, as the restore needs it."""

    kind: DbKind
    identifier: str
    arn: str
    engine: str
    engine_version: str
    status: str
    endpoint: str
    port: int
    backup_retention_days: int
    earliest_restorable: _dt.datetime | None
    latest_restorable: _dt.datetime | None
    instance_class: str
    writer_instance: str = ""
    settings: tuple[CarriedSetting, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def settings_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {
                "setting": s.name,
                "level": s.level.value,
                "source value": _show(s.value),
                "carried by": s.api_param or "kept by AWS (verified after restore)",
            }
            for s in self.settings
        ]
        return pd.DataFrame(rows, columns=["setting", "level", "source value", "carried by"])


def _show(v: Any) -> str:
    if isinstance(v, list | tuple):
        if v and isinstance(v[0], dict) and "Key" in v[0]:
            return ", ".join(f"{t['Key']}={t.get('Value', '')}" for t in v)
        return ", ".join(str(x) for x in v) or "(none)"
    if v is None or v == "":
        return "(none)"
    return str(v)


def _tags(raw: Mapping[str, Any]) -> list[dict[str, str]]:
    # restored targets get the source's tags, minus the aws: namespace AWS reserves
    return [
        {"Key": t["Key"], "Value": t.get("Value", "")}
        for t in raw.get("TagList") or []
        if not t["Key"].startswith("aws:")
    ]


def _missing(exc: ClientError) -> bool:
    return aws_error_kind(exc) is AwsErrorKind.NOT_FOUND


def cluster_exists(identifier: str, *, rds: RDSClient) -> bool:
    return _status(DbResource.CLUSTER, identifier, rds=rds) != ""


def instance_exists(identifier: str, *, rds: RDSClient) -> bool:
    return _status(DbResource.INSTANCE, identifier, rds=rds) != ""


def _cluster_settings(
    c: Mapping[str, Any], writer: Mapping[str, Any]
) -> tuple[CarriedSetting, ...]:
    s = [
        CarriedSetting("DB subnet group", c.get("DBSubnetGroup", ""), "DBSubnetGroupName"),
        CarriedSetting(
            "VPC security groups",
            [g["VpcSecurityGroupId"] for g in c.get("VpcSecurityGroups") or []],
            "VpcSecurityGroupIds",
        ),
        CarriedSetting(
            "cluster parameter group",
            c.get("DBClusterParameterGroup", ""),
            "DBClusterParameterGroupName",
        ),
        CarriedSetting(
            "KMS key", c.get("KmsKeyId", "") if c.get("StorageEncrypted") else "", "KmsKeyId"
        ),
        CarriedSetting("port", c.get("Port"), "Port"),
        CarriedSetting(
            "IAM database authentication",
            bool(c.get("IAMDatabaseAuthenticationEnabled")),
            "EnableIAMDatabaseAuthentication",
        ),
        CarriedSetting(
            "deletion protection", bool(c.get("DeletionProtection")), "DeletionProtection"
        ),
        CarriedSetting("tags", _tags(c), "Tags"),
        CarriedSetting(
            "log exports",
            list(c.get("EnabledCloudwatchLogsExports") or []),
            "EnableCloudwatchLogsExports",
        ),
        CarriedSetting(
            "copy tags to snapshot", bool(c.get("CopyTagsToSnapshot")), "CopyTagsToSnapshot"
        ),
        CarriedSetting("engine version", c.get("EngineVersion", ""), ""),
    ]
    if writer:
        pgs = [g["DBParameterGroupName"] for g in writer.get("DBParameterGroups") or []]
        ogs = [o["OptionGroupName"] for o in writer.get("OptionGroupMemberships") or []]
        s += [
            CarriedSetting(
                "instance class",
                writer.get("DBInstanceClass", ""),
                "DBInstanceClass",
                DbResource.INSTANCE,
            ),
            CarriedSetting(
                "instance parameter group",
                pgs[0] if pgs else "",
                "DBParameterGroupName",
                DbResource.INSTANCE,
            ),
            CarriedSetting(
                "option group",
                ogs[0] if ogs and not ogs[0].startswith("default:") else "",
                "OptionGroupName",
                DbResource.INSTANCE,
            ),
            CarriedSetting(
                "publicly accessible",
                bool(writer.get("PubliclyAccessible")),
                "PubliclyAccessible",
                DbResource.INSTANCE,
            ),
            CarriedSetting("instance tags", _tags(writer), "Tags", DbResource.INSTANCE),
        ]
    return tuple(s)


def _instance_settings(i: Mapping[str, Any]) -> tuple[CarriedSetting, ...]:
    pgs = [g["DBParameterGroupName"] for g in i.get("DBParameterGroups") or []]
    ogs = [o["OptionGroupName"] for o in i.get("OptionGroupMemberships") or []]
    sg = i.get("DBSubnetGroup") or {}
    return (
        CarriedSetting(
            "DB subnet group",
            sg.get("DBSubnetGroupName", ""),
            "DBSubnetGroupName",
            DbResource.INSTANCE,
        ),
        CarriedSetting(
            "VPC security groups",
            [g["VpcSecurityGroupId"] for g in i.get("VpcSecurityGroups") or []],
            "VpcSecurityGroupIds",
            DbResource.INSTANCE,
        ),
        CarriedSetting(
            "parameter group", pgs[0] if pgs else "", "DBParameterGroupName", DbResource.INSTANCE
        ),
        CarriedSetting(
            "option group",
            ogs[0] if ogs and not ogs[0].startswith("default:") else "",
            "OptionGroupName",
            DbResource.INSTANCE,
        ),
        CarriedSetting(
            "KMS key",
            i.get("KmsKeyId", "") if i.get("StorageEncrypted") else "",
            "",
            DbResource.INSTANCE,
        ),
        CarriedSetting(
            "port",
            (i.get("Endpoint") or {}).get("Port") or i.get("DbInstancePort"),
            "Port",
            DbResource.INSTANCE,
        ),
        CarriedSetting(
            "IAM database authentication",
            bool(i.get("IAMDatabaseAuthenticationEnabled")),
            "EnableIAMDatabaseAuthentication",
            DbResource.INSTANCE,
        ),
        CarriedSetting(
            "deletion protection",
            bool(i.get("DeletionProtection")),
            "DeletionProtection",
            DbResource.INSTANCE,
        ),
        CarriedSetting("tags", _tags(i), "Tags", DbResource.INSTANCE),
        CarriedSetting(
            "log exports",
            list(i.get("EnabledCloudwatchLogsExports") or []),
            "EnableCloudwatchLogsExports",
            DbResource.INSTANCE,
        ),
        CarriedSetting("Multi-AZ", bool(i.get("MultiAZ")), "MultiAZ", DbResource.INSTANCE),
        CarriedSetting(
            "publicly accessible",
            bool(i.get("PubliclyAccessible")),
            "PubliclyAccessible",
            DbResource.INSTANCE,
        ),
        CarriedSetting(
            "storage type", i.get("StorageType", ""), "StorageType", DbResource.INSTANCE
        ),
        CarriedSetting(
            "copy tags to snapshot",
            bool(i.get("CopyTagsToSnapshot")),
            "CopyTagsToSnapshot",
            DbResource.INSTANCE,
        ),
        CarriedSetting("engine version", i.get("EngineVersion", ""), "", DbResource.INSTANCE),
    )


def describe_cluster(identifier: str, *, rds: RDSClient) -> DbSource:
    """The Aurora cluster, its writer instance and the settings a restore must carry."""
    try:
        c = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    except ClientError as exc:
        if not _missing(exc):
            raise translate_aws_error(exc, f"rds:DescribeDBClusters {identifier}") from exc
        raise NotFoundError(
            f"Aurora cluster {identifier!r} not found in this account/region. Check `source` and "
            "`region` (aws rds describe-db-clusters --query 'DBClusters[].DBClusterIdentifier')."
        ) from exc
    writer_id = next(
        (
            m["DBInstanceIdentifier"]
            for m in c.get("DBClusterMembers") or []
            if m.get("IsClusterWriter")
        ),
        "",
    )
    writer: Mapping[str, Any] = {}
    if writer_id:
        writer = _call(
            f"rds:DescribeDBInstances {writer_id}",
            rds.describe_db_instances,
            DBInstanceIdentifier=writer_id,
        )["DBInstances"][0]
    return DbSource(
        kind=AURORA,
        identifier=identifier,
        arn=c.get("DBClusterArn", ""),
        engine=c.get("Engine", ""),
        engine_version=c.get("EngineVersion", ""),
        status=c.get("Status", ""),
        endpoint=c.get("Endpoint", ""),
        port=int(c.get("Port") or 0),
        backup_retention_days=int(c.get("BackupRetentionPeriod") or 0),
        earliest_restorable=c.get("EarliestRestorableTime"),
        latest_restorable=c.get("LatestRestorableTime"),
        instance_class=writer.get("DBInstanceClass", ""),
        writer_instance=writer_id,
        settings=_cluster_settings(c, writer),
        raw=c,
    )


def describe_instance(identifier: str, *, rds: RDSClient) -> DbSource:
    """The RDS instance and the settings a restore must carry.

    DescribeDBInstances gives only the latest restorable time; the earliest comes from the
    automated backup's RestoreWindow, else (older APIs, emulators) the later of the instance's
    creation and now minus the retention period.
    """
    try:
        i = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except ClientError as exc:
        if not _missing(exc):
            raise translate_aws_error(exc, f"rds:DescribeDBInstances {identifier}") from exc
        raise NotFoundError(
            f"RDS instance {identifier!r} not found in this account/region. Check `source` and "
            "`region` (aws rds describe-db-instances --query 'DBInstances[].DBInstanceIdentifier')."
        ) from exc
    earliest = None
    try:
        backups = rds.describe_db_instance_automated_backups(DBInstanceIdentifier=identifier).get(
            "DBInstanceAutomatedBackups", []
        )
        for b in backups:
            earliest = (b.get("RestoreWindow") or {}).get("EarliestTime") or earliest
    except ClientError as exc:  # older partitions/emulators, no backup yet: fall back below
        if aws_error_kind(exc) not in (AwsErrorKind.UNSUPPORTED, AwsErrorKind.NOT_FOUND):
            raise translate_aws_error(
                exc, f"rds:DescribeDBInstanceAutomatedBackups {identifier}"
            ) from exc
    retention = int(i.get("BackupRetentionPeriod") or 0)
    if earliest is None and i.get("InstanceCreateTime") and retention:
        created = i["InstanceCreateTime"]
        earliest = max(created, _dt.datetime.now(_dt.UTC) - _dt.timedelta(days=retention))
    endpoint = i.get("Endpoint") or {}
    return DbSource(
        kind=RDS,
        identifier=identifier,
        arn=i.get("DBInstanceArn", ""),
        engine=i.get("Engine", ""),
        engine_version=i.get("EngineVersion", ""),
        status=i.get("DBInstanceStatus", ""),
        endpoint=endpoint.get("Address", ""),
        port=int(endpoint.get("Port") or i.get("DbInstancePort") or 0),
        backup_retention_days=retention,
        earliest_restorable=earliest,
        latest_restorable=i.get("LatestRestorableTime"),
        instance_class=i.get("DBInstanceClass", ""),
        settings=_instance_settings(i),
        raw=i,
    )


def _time_params(restore_time: _dt.datetime | None, *, key: str) -> dict[str, Any]:
    if restore_time is None:
        return {"UseLatestRestorableTime": True}
    return {key: restore_time.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")}


def carry_params(settings: tuple[CarriedSetting, ...], level: DbResource) -> dict[str, Any]:
    """The API parameters that carry ``level``'s settings (the snapshot restores use them too)."""
    out: dict[str, Any] = {}
    for s in settings:
        if s.level != level or not s.api_param:
            continue
        if s.value in ("", None, []) and not isinstance(s.value, bool):
            continue
        out[s.api_param] = s.value
    return out


def writer_instance_id(target: str) -> str:
    return f"{target}-1"


def plan_cluster_restore(
    src: DbSource, *, target: str, restore_time: _dt.datetime | None, instance_class: str = ""
) -> Plan:
    """Restore the cluster to ``restore_time`` (None = latest) as ``target``, then add a writer."""
    cparams = {
        "SourceDBClusterIdentifier": src.identifier,
        "DBClusterIdentifier": target,
        "RestoreType": "full-copy",
        **_time_params(restore_time, key="RestoreToTime"),
        **carry_params(src.settings, DbResource.CLUSTER),
    }
    inst = carry_params(src.settings, DbResource.INSTANCE)
    inst["DBInstanceClass"] = (
        instance_class or src.instance_class or inst.get("DBInstanceClass", "")
    )
    iparams = {
        "DBInstanceIdentifier": writer_instance_id(target),
        "DBClusterIdentifier": target,
        "Engine": src.engine,
        **inst,
    }
    when = cparams.get("RestoreToTime", "the latest restorable time")
    return Plan(
        title=f"Aurora PITR {src.identifier} -> {target}",
        changes=(
            Change(
                ACTION_RESTORE_CLUSTER,
                target,
                f"new cluster from {src.identifier} at {when}, with {len(carry_params(src.settings, DbResource.CLUSTER))} "
                "source settings carried; wait until available",
                cparams,
            ),
            Change(
                ACTION_CREATE_INSTANCE,
                iparams["DBInstanceIdentifier"],
                f"writer instance {iparams['DBInstanceClass']} in {target} (a restored cluster has none); "
                "wait until available",
                iparams,
            ),
        ),
        warnings=(
            "The source cluster is not modified. The restored cluster is billed until deleted.",
            "Not carried by any restore: CloudWatch alarms, event subscriptions, Route53 records, "
            "secrets, reader instances; recreate them if the target becomes primary.",
        ),
    )


def plan_instance_restore(
    src: DbSource, *, target: str, restore_time: _dt.datetime | None, instance_class: str = ""
) -> Plan:
    """Restore the RDS instance to ``restore_time`` (None = latest) as ``target``."""
    params = {
        "SourceDBInstanceIdentifier": src.identifier,
        "TargetDBInstanceIdentifier": target,
        **_time_params(restore_time, key="RestoreTime"),
        **carry_params(src.settings, DbResource.INSTANCE),
        "DBInstanceClass": instance_class or src.instance_class,
    }
    when = params.get("RestoreTime", "the latest restorable time")
    return Plan(
        title=f"RDS PITR {src.identifier} -> {target}",
        changes=(
            Change(
                ACTION_RESTORE_INSTANCE,
                target,
                f"new instance {params['DBInstanceClass']} from {src.identifier} at {when}, with "
                f"{len(carry_params(src.settings, DbResource.INSTANCE))} source settings carried; wait until available",
                params,
            ),
        ),
        warnings=(
            "The source instance is not modified. The restored instance is billed until deleted.",
            "Not carried: CloudWatch alarms, event subscriptions, read replicas, Route53 records, secrets.",
        ),
    )


def plan_delete(kind: DbKind, target: str, *, deletion_protection: bool) -> Plan:
    """Drill cleanup: delete the restored target (never the source), skipping a final snapshot."""
    changes: list[Change] = []
    if kind == AURORA:
        if deletion_protection:
            changes.append(
                Change(
                    ACTION_MODIFY_CLUSTER,
                    target,
                    "turn off deletion protection (copied from the source)",
                    {
                        "DBClusterIdentifier": target,
                        "DeletionProtection": False,
                        "ApplyImmediately": True,
                    },
                )
            )
        changes.append(
            Change(
                ACTION_DELETE_INSTANCE,
                writer_instance_id(target),
                "delete the drill writer instance",
                {"DBInstanceIdentifier": writer_instance_id(target), "SkipFinalSnapshot": True},
            )
        )
        changes.append(
            Change(
                ACTION_DELETE_CLUSTER,
                target,
                "delete the drill cluster (no final snapshot)",
                {"DBClusterIdentifier": target, "SkipFinalSnapshot": True},
            )
        )
    else:
        if deletion_protection:
            changes.append(
                Change(
                    ACTION_MODIFY_INSTANCE,
                    target,
                    "turn off deletion protection (copied from the source)",
                    {
                        "DBInstanceIdentifier": target,
                        "DeletionProtection": False,
                        "ApplyImmediately": True,
                    },
                )
            )
        changes.append(
            Change(
                ACTION_DELETE_INSTANCE,
                target,
                "delete the drill instance (no final snapshot)",
                {
                    "DBInstanceIdentifier": target,
                    "SkipFinalSnapshot": True,
                    "DeleteAutomatedBackups": True,
                },
            )
        )
    return Plan(title=f"Drill cleanup: delete {target}", changes=tuple(changes))


def _status(kind: DbResource, identifier: str, *, rds: RDSClient) -> str:
    """Current status, or "" when it no longer exists."""
    try:
        if kind is DbResource.CLUSTER:
            c = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
            return c.get("Status", "")
        i = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        return i.get("DBInstanceStatus", "")
    except ClientError as exc:
        if _missing(exc):
            return ""
        raise translate_aws_error(exc, f"rds:Describe {kind.value} {identifier}") from exc


def wait_for(
    kind: DbResource | str,
    identifier: str,
    *,
    rds: RDSClient,
    want: str = "available",
    timeout_s: float,
    poll_s: float = DEFAULT_POLL_SECONDS,
    resume_hint: str = "",
) -> str:
    """Poll a cluster/instance until its status is ``want`` ("" = deleted); bounded, with progress.

    On timeout: RunbookTimeoutError naming what exists now, its status, and how to resume.
    """
    kind = DbResource(kind)

    def check() -> tuple[bool, str, str]:
        status = _status(kind, identifier, rds=rds)
        return status == want, status, status or "gone"

    def timeout_message(status: str, _shown: str) -> str:
        return (
            f"{kind.value} {identifier} is '{status or 'gone'}' after {timeout_s:.0f} s (wanted "
            f"'{want or 'deleted'}'). It exists and AWS keeps working on it. To resume: "
            f"`aws rds wait db-{kind.value}-{'available' if want else 'deleted'} "
            f"--db-{kind.value}-identifier {identifier}`{resume_hint}, or run again with a larger "
            "wait_timeout_minutes."
        )

    return poll_until(
        check,
        timeout_s=timeout_s,
        poll_s=poll_s,
        desc=f"{identifier} -> {want or 'deleted'} (s)",
        on_timeout=timeout_message,
    )


# --- the handlers of the planned actions (opslib.core.executors) ------------------------------


def _applied(change: Change, t0: float, detail: str, data: dict[str, Any]) -> ChangeOutcome:
    data["seconds"] = round(time.monotonic() - t0, 3)
    return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, detail, data)


def _refuse_protected(identifier: str, protected: frozenset[str]) -> None:
    if identifier in protected:
        raise PreflightError(f"Refusing to modify or delete the source {identifier}.")


@executors.register(ACTION_RESTORE_CLUSTER)
def restore_cluster(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Restore the cluster point-in-time and wait (bounded) until it is available."""
    p = dict(change.params)
    t0 = time.monotonic()
    ident = p["DBClusterIdentifier"]
    _call(f"{change.action} {ident}", rds.restore_db_cluster_to_point_in_time, **p)
    wait_for(
        DbResource.CLUSTER,
        ident,
        rds=rds,
        timeout_s=timeout_s,
        poll_s=poll_s,
        resume_hint=", then create its writer instance (aws rds create-db-instance)",
    )
    c = _call(
        f"rds:DescribeDBClusters {ident}", rds.describe_db_clusters, DBClusterIdentifier=ident
    )
    c = c["DBClusters"][0]
    data = {
        "endpoint": c.get("Endpoint", ""),
        "status": c.get("Status", ""),
        "arn": c.get("DBClusterArn", ""),
    }
    return _applied(change, t0, f"cluster {ident} available at {data['endpoint']}", data)


def _instance_available(
    change: Change, ident: str, t0: float, *, rds: RDSClient, timeout_s: float, poll_s: float
) -> ChangeOutcome:
    wait_for(DbResource.INSTANCE, ident, rds=rds, timeout_s=timeout_s, poll_s=poll_s)
    i = _call(
        f"rds:DescribeDBInstances {ident}", rds.describe_db_instances, DBInstanceIdentifier=ident
    )["DBInstances"][0]
    ep = i.get("Endpoint") or {}
    data = {
        "endpoint": ep.get("Address", ""),
        "port": ep.get("Port"),
        "status": i.get("DBInstanceStatus", ""),
    }
    return _applied(change, t0, f"instance {ident} available at {data['endpoint']}", data)


@executors.register(ACTION_CREATE_INSTANCE)
def create_instance(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Create the writer instance of a restored cluster; wait (bounded) until it is available."""
    t0 = time.monotonic()
    ident = change.params["DBInstanceIdentifier"]
    _call(f"{change.action} {ident}", rds.create_db_instance, **change.params)
    return _instance_available(change, ident, t0, rds=rds, timeout_s=timeout_s, poll_s=poll_s)


@executors.register(ACTION_RESTORE_INSTANCE)
def restore_instance(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Restore an RDS instance point-in-time; wait (bounded) until it is available."""
    t0 = time.monotonic()
    ident = change.params["TargetDBInstanceIdentifier"]
    _call(f"{change.action} {ident}", rds.restore_db_instance_to_point_in_time, **change.params)
    return _instance_available(change, ident, t0, rds=rds, timeout_s=timeout_s, poll_s=poll_s)


@executors.register(ACTION_MODIFY_CLUSTER)
def modify_cluster(
    change: Change, *, rds: RDSClient, protected: frozenset[str] = frozenset()
) -> ChangeOutcome:
    """Turn off the deletion protection a drill cluster copied from its source."""
    p = dict(change.params)
    t0 = time.monotonic()
    _refuse_protected(p["DBClusterIdentifier"], protected)
    _call(f"{change.action} {p['DBClusterIdentifier']}", rds.modify_db_cluster, **p)
    return _applied(change, t0, "deletion protection off", {})


@executors.register(ACTION_MODIFY_INSTANCE)
def modify_instance(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
    protected: frozenset[str] = frozenset(),
) -> ChangeOutcome:
    """Turn off the deletion protection a drill instance copied from its source."""
    p = dict(change.params)
    t0 = time.monotonic()
    ident = p["DBInstanceIdentifier"]
    _refuse_protected(ident, protected)
    _call(f"{change.action} {ident}", rds.modify_db_instance, **p)
    wait_for(DbResource.INSTANCE, ident, rds=rds, timeout_s=timeout_s, poll_s=poll_s)
    return _applied(change, t0, "deletion protection off", {})


@executors.register(ACTION_DELETE_INSTANCE)
def delete_instance(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
    protected: frozenset[str] = frozenset(),
) -> ChangeOutcome:
    """Delete a drill instance and wait (bounded) until it is gone; never one in ``protected``."""
    p = dict(change.params)
    t0 = time.monotonic()
    ident = p["DBInstanceIdentifier"]
    _refuse_protected(ident, protected)
    _call(f"{change.action} {ident}", rds.delete_db_instance, **p)
    wait_for(DbResource.INSTANCE, ident, rds=rds, want="", timeout_s=timeout_s, poll_s=poll_s)
    return _applied(change, t0, f"instance {ident} deleted", {})


@executors.register(ACTION_DELETE_CLUSTER)
def delete_cluster(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
    protected: frozenset[str] = frozenset(),
) -> ChangeOutcome:
    """Delete a drill cluster and wait (bounded) until it is gone; never one in ``protected``."""
    p = dict(change.params)
    t0 = time.monotonic()
    ident = p["DBClusterIdentifier"]
    _refuse_protected(ident, protected)
    _call(f"{change.action} {ident}", rds.delete_db_cluster, **p)
    wait_for(DbResource.CLUSTER, ident, rds=rds, want="", timeout_s=timeout_s, poll_s=poll_s)
    return _applied(change, t0, f"cluster {ident} deleted", {})


def compare_settings(src: DbSource, restored: DbSource) -> list[tuple[str, str, str]]:
    """Each carried setting on the source and on the restored target, side by side."""
    tgt = {(s.level, s.name): s.value for s in restored.settings}
    rows = []
    for s in src.settings:
        t = tgt.get((s.level, s.name))
        sv, tv = _show(s.value), _show(t)
        rows.append((f"{s.level.value}: {s.name}", sv, tv))
    return rows
