"""Backup posture and pre-change backups of Aurora clusters, RDS instances and DynamoDB tables.

Why one module: "is this database recoverable, and how far back" must mean the same thing in
every runbook (the backup audit, the morning health check, a pre-deploy gate). The audit of one
resource is a public function (:func:`audit_cluster`, :func:`audit_instance`, :func:`audit_table`)
returning a typed :class:`BackupAudit` measured against a :class:`BackupPolicy`: retention,
point-in-time recovery, the lag of the latest restorable time (the RPO actually achieved), the
age of the newest automated and manual snapshot, deletion protection, encryption, and manual
snapshots shared with everyone (a public snapshot is a data leak: critical).

The pre-change backup (:func:`plan_create`) names each snapshot ``<id>-<label>-<YYYYmmddHHMM>``
and, when that name is taken, adds a suffix: a snapshot is never overwritten. Every RDS
snapshot carries the tags ``opslib:change_ticket`` and ``opslib:run_id``; DynamoDB on-demand
backups take no tags through the DynamoDB API, so there the ticket and run id live in the
evidence record. The handlers wait, bounded, until each snapshot is ``available``/``AVAILABLE``.

One module per concern: :mod:`.model` (the types), :mod:`.audit` (read only),
:mod:`.create` (plans and handlers of the pre-change backups), :mod:`.restore` (restore a
snapshot or backup into a NEW target, optionally after a copy to another region).
"""

from opslib.aws.snapshots import restore
from opslib.aws.snapshots.audit import (
    audit_cluster,
    audit_instance,
    audit_table,
    cluster_snapshots,
    error_audit,
    instance_snapshots,
    list_clusters,
    list_instances,
    list_tables,
    table_backups,
    with_findings,
)
from opslib.aws.snapshots.create import (
    ACTION_CLUSTER_SNAPSHOT,
    ACTION_DB_SNAPSHOT,
    ACTION_TABLE_BACKUP,
    CREATE_ACTIONS,
    plan_cluster_snapshot,
    plan_db_snapshot,
    plan_table_backup,
    snapshot_name,
    tags,
    unique_name,
)
from opslib.aws.snapshots.model import (
    SOURCE,
    TAG_RUN_ID,
    TAG_TICKET,
    AuditReport,
    BackupAudit,
    BackupPolicy,
    ResourceKind,
    SnapshotInfo,
    sort_worst_first,
)

__all__ = [
    "ACTION_CLUSTER_SNAPSHOT",
    "ACTION_DB_SNAPSHOT",
    "ACTION_TABLE_BACKUP",
    "CREATE_ACTIONS",
    "SOURCE",
    "TAG_RUN_ID",
    "TAG_TICKET",
    "AuditReport",
    "BackupAudit",
    "BackupPolicy",
    "ResourceKind",
    "SnapshotInfo",
    "audit_cluster",
    "audit_instance",
    "audit_table",
    "cluster_snapshots",
    "error_audit",
    "instance_snapshots",
    "list_clusters",
    "list_instances",
    "list_tables",
    "plan_cluster_snapshot",
    "restore",
    "plan_db_snapshot",
    "plan_table_backup",
    "snapshot_name",
    "sort_worst_first",
    "table_backups",
    "tags",
    "unique_name",
    "with_findings",
]
