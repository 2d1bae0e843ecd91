"""Restores from an RDS/Aurora snapshot or a DynamoDB on-demand backup, into a NEW target.

Same shape as the point-in-time engines (preflight, plan, validation, drill cleanup), with the
snapshot or backup as the source: it must be ``available``; a ``source`` given alongside must
be the resource it was taken of; the restore point is the moment it was taken. A snapshot can
go to another region (copied there first) or AZ; the carried settings come from the live
source when it still exists (:mod:`opslib.aws.snapshots.restore`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from opslib.aws import dynamodb as d
from opslib.aws import rds as r
from opslib.aws.snapshots import restore as sr
from opslib.clients import aws_client
from opslib.core.errors import BadInputError, PreflightError
from opslib.core.plans import Plan
from opslib.runbooks.pitr_restore.engines.base import default_target
from opslib.runbooks.pitr_restore.engines.dynamodb import _DDB_NAME, DynamoDbEngine
from opslib.runbooks.pitr_restore.engines.rds import _RDS_ID, _RDS_ID_RULE, AuroraEngine, RdsEngine
from opslib.runbooks.pitr_restore.model import (
    Check,
    CheckResult,
    Preflight,
    RestoreClients,
    RestoreOutcome,
    RestoreRequest,
    RestoreStatus,
    SourceKind,
    Validation,
    ValidationRow,
    compare,
    iso,
    side_by_side,
)

_REGIONAL_WORDS = ("subnet", "security", "parameter", "option", "KMS")


def _snap(pre: Preflight) -> sr.SnapshotSource:
    if not isinstance(pre.source, sr.SnapshotSource):
        raise TypeError(f"not a snapshot preflight: {type(pre.source).__name__}")
    return pre.source


def _short(snapshot: str) -> str:
    ident = snapshot.rsplit(":", 1)[-1]
    return re.sub("-{2,}", "-", re.sub(r"[^A-Za-z0-9-]", "-", ident)).strip("-")[:40] or "snapshot"


class RdsSnapshotEngine(RdsEngine):
    """An RDS instance restored from a DB snapshot (RestoreDBInstanceFromDBSnapshot)."""

    source_kind: ClassVar[SourceKind] = SourceKind.SNAPSHOT
    description: ClassVar[str] = "RDS instance from a DB snapshot"
    actions: ClassVar[frozenset[str]] = RdsEngine.actions | sr.RDS_ACTIONS

    def target_for(self, req: RestoreRequest) -> str:
        tgt = req.target or default_target(
            req.source or _short(req.from_snapshot), req.requested_at
        )
        tgt = tgt[:63].rstrip("-")
        if req.source and tgt == req.source:
            raise PreflightError(
                "target equals source: a restore never overwrites; give a new name."
            )
        if not _RDS_ID.match(tgt):
            raise BadInputError(f"target {tgt!r} is not a valid name ({_RDS_ID_RULE}).")
        return tgt

    def connect(self, req: RestoreRequest) -> RestoreClients:
        home = aws_client("rds", region=req.region)
        region = req.target_region or req.region
        target = aws_client("rds", region=region) if req.target_region else home
        sm = aws_client("secretsmanager", region=region) if req.cutover_secret else None
        return RestoreClients(rds=target, rds_source=home, secretsmanager=sm)

    def preflight(self, req: RestoreRequest, clients: RestoreClients) -> Preflight:
        home = clients.rds_source or clients.rds
        src = sr.describe_snapshot(req.from_snapshot, self.kind, rds=home)
        checks = [
            Check(
                "snapshot exists",
                CheckResult.OK,
                f"{src.identifier} of {src.source_id} ({src.engine} {src.engine_version}), "
                f"taken {iso(src.created)}, status {src.status}",
            )
        ]
        sr.check_available(src)
        if req.source and req.source != src.source_id:
            raise PreflightError(
                f"Snapshot {src.identifier} was taken of {src.source_id!r}, not of source {req.source!r}. "
                "Check from_snapshot (or leave source empty)."
            )
        checks.append(Check("snapshot available", CheckResult.OK, f"{src.region}"))
        if src.db is None:
            checks.append(
                Check(
                    "source",
                    CheckResult.WARNING,
                    f"{src.source_id} no longer exists: settings not carried",
                )
            )
        else:
            carried = sum(1 for s in src.settings if s.api_param)
            checks.append(
                Check(
                    "settings carried from source",
                    CheckResult.OK,
                    f"{carried} of {len(src.settings)}",
                )
            )
        if req.target_region and req.target_region != src.region:
            checks.append(
                Check(
                    "copy to another region",
                    CheckResult.OK,
                    f"{src.region} -> {req.target_region} first",
                )
            )
        if self.target_exists(req, clients):
            raise PreflightError(
                f"Target {req.target!r} already exists. A restore never overwrites: give another target."
            )
        checks.append(Check("target does not exist", CheckResult.OK, req.target))
        return Preflight(req, src, req.target, src.created, src.created, src.created, tuple(checks))

    def plan(self, pre: Preflight) -> Plan:
        req = pre.request
        return sr.plan_restore(
            _snap(pre),
            target=pre.target,
            instance_class=req.instance_class,
            target_region=req.target_region,
            target_az=req.target_az,
        )

    def retention_days(self, pre: Preflight) -> tuple[float | None, str]:
        return None, "a snapshot restore: automated-backup retention does not apply"

    def plan_drill_cleanup(self, pre: Preflight) -> Plan:
        prot = any(s.name == "deletion protection" and s.value for s in _snap(pre).settings)
        return r.plan_delete(self.kind, pre.target, deletion_protection=prot)

    def executor_context(self, pre: Preflight) -> Mapping[str, Any]:
        req = pre.request
        return {
            "timeout_s": req.timeout_s,
            "poll_s": req.poll_seconds,
            "protected": frozenset({_snap(pre).source_id}),
        }

    def validate(
        self, pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients
    ) -> Validation:
        snap = _snap(pre)
        want = {"status": "available", "engine": snap.engine, "engine version": snap.engine_version}
        if not outcome.restored:
            return Validation(
                RestoreStatus.RESTORED, "status and settings", side_by_side(want, None)
            )
        tgt = self.describe(pre.target, clients)
        rows = [
            compare("status", "available", tgt.status),
            compare("engine", snap.engine, tgt.engine),
            ValidationRow("endpoint", snap.db.endpoint if snap.db else "", tgt.endpoint, None, ""),
            *(self.extra_rows(snap.db, tgt) if snap.db else ()),
        ]
        want_az = pre.request.target_az
        if want_az:
            azs = tgt.raw.get("AvailabilityZones") or [tgt.raw.get("AvailabilityZone", "")]
            rows.append(
                compare("availability zone", want_az, want_az if want_az in azs else ", ".join(azs))
            )
        cross = bool(pre.request.target_region) and pre.request.target_region != snap.region
        if snap.db is not None:
            for check, a, b in r.compare_settings(snap.db, tgt):
                if check.endswith("instance class") and pre.request.instance_class:
                    a = pre.request.instance_class
                regional = cross and any(w in check for w in _REGIONAL_WORDS)
                note = "regional: not carried" if regional else ("" if a == b else "differs")
                rows.append(ValidationRow(check, a, b, None if regional else a == b, note))
        errors = [] if tgt.status == "available" else [f"target status {tgt.status}"]
        return Validation(
            RestoreStatus.RESTORED, "status and settings", tuple(rows), errors=tuple(errors)
        )

    def next_steps(self, pre: Preflight, outcome: RestoreOutcome) -> list[str]:
        steps = super().next_steps(pre, outcome)
        snap = _snap(pre)
        if pre.request.target_region and pre.request.target_region != snap.region:
            steps.append(
                f"The snapshot copy in {pre.request.target_region} stays (billed): delete it when the drill "
                "or recovery is closed."
            )
        return steps


class AuroraSnapshotEngine(RdsSnapshotEngine, AuroraEngine):
    """An Aurora cluster restored from a cluster snapshot, plus its writer instance."""

    engine = AuroraEngine.engine
    kind = AuroraEngine.kind
    noun = AuroraEngine.noun
    description: ClassVar[str] = "Aurora cluster from a cluster snapshot"
    actions: ClassVar[frozenset[str]] = AuroraEngine.actions | sr.RDS_ACTIONS

    def plan(self, pre: Preflight) -> Plan:
        return RdsSnapshotEngine.plan(self, pre)

    def endpoint(self, pre: Preflight, result) -> tuple[str, int]:
        host, port = "", 0
        for o in result.outcomes:
            if o.action == sr.ACTION_RESTORE_CLUSTER:
                host, port = o.data.get("endpoint", ""), int(o.data.get("port") or 0)
        return host, port or _snap(pre).port


class DynamoDbBackupEngine(DynamoDbEngine):
    """A DynamoDB table restored from an on-demand backup (RestoreTableFromBackup)."""

    source_kind: ClassVar[SourceKind] = SourceKind.BACKUP
    description: ClassVar[str] = "table from an on-demand backup"
    actions: ClassVar[frozenset[str]] = DynamoDbEngine.actions | {sr.ACTION_RESTORE_TABLE}

    def target_for(self, req: RestoreRequest) -> str:
        if not req.target:
            raise BadInputError("target is required with from_backup: the NEW table's name.")
        if req.target == req.source:
            raise PreflightError(
                "target equals source: a restore never overwrites; give a new name."
            )
        if not _DDB_NAME.match(req.target):
            raise BadInputError(
                f"target {req.target!r} is not a valid name (3-255 letters, digits, '_', '-', '.')."
            )
        return req.target

    def preflight(self, req: RestoreRequest, clients: RestoreClients) -> Preflight:
        ddb = clients.dynamodb
        src = sr.describe_backup(req.from_backup, dynamodb=ddb)
        checks = [
            Check(
                "backup exists",
                CheckResult.OK,
                f"{src.name} of table {src.table}, taken {iso(src.created)}, ~{src.item_count} items, status {src.status}",
            )
        ]
        if src.status != "AVAILABLE":
            raise PreflightError(
                f"Backup {src.name} is {src.status}, not AVAILABLE: it cannot be restored yet. Wait and run again."
            )
        if req.source and req.source != src.table:
            raise PreflightError(
                f"Backup {src.name} is of table {src.table!r}, not of source {req.source!r}: refusing a restore "
                "from another table's backup. Check from_backup (or leave source empty)."
            )
        if src.table_source is None:
            checks.append(
                Check(
                    "source table",
                    CheckResult.WARNING,
                    f"{src.table} gone: TTL and tags not re-applied",
                )
            )
        if d.table_exists(req.target, dynamodb=ddb):
            raise PreflightError(
                f"Target table {req.target!r} already exists. A restore never overwrites: give another target."
            )
        checks.append(Check("target does not exist", CheckResult.OK, req.target))
        return Preflight(req, src, req.target, src.created, src.created, src.created, tuple(checks))

    def retention_days(self, pre: Preflight) -> tuple[float | None, str]:
        return None, "an on-demand backup restore: PITR retention does not apply"

    def plan(self, pre: Preflight) -> Plan:
        return sr.plan_table_restore(pre.source, target=pre.target)  # type: ignore[arg-type]

    def executor_context(self, pre: Preflight) -> Mapping[str, Any]:
        req = pre.request
        src: sr.BackupSource = pre.source  # type: ignore[assignment]
        return {
            "timeout_s": req.timeout_s,
            "poll_s": req.poll_seconds,
            "protected": frozenset({src.table}),
        }

    def validate(
        self, pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients
    ) -> Validation:
        src: sr.BackupSource = pre.source  # type: ignore[assignment]
        want = {"item count": src.item_count, "status": "ACTIVE"}
        if not outcome.restored:
            return Validation(RestoreStatus.RESTORED, "item counts", side_by_side(want, None))
        ddb = clients.dynamodb
        restored = d.describe_table(pre.target, dynamodb=ddb)
        count = d.count_items(pre.target, dynamodb=ddb)
        rows = [
            compare("item count", src.item_count, count.count),
            compare("status", "ACTIVE", restored.status),
        ]
        if src.table_source is not None:
            rows.append(
                compare("TTL attribute", src.table_source.ttl_attribute, restored.ttl_attribute)
            )
            rows.append(compare("tags", dict(src.table_source.tags), dict(restored.tags)))
        rows.append(compare("PITR", "ENABLED", restored.pitr_status))
        errors = [] if restored.status == "ACTIVE" else [f"target table status {restored.status}"]
        sample = tuple(d.sample_items(pre.target, dynamodb=ddb, limit=5))
        return Validation(
            RestoreStatus.RESTORED, "item counts", tuple(rows), sample=sample, errors=tuple(errors)
        )

    def next_steps(self, pre: Preflight, outcome: RestoreOutcome) -> list[str]:
        src: sr.BackupSource = pre.source  # type: ignore[assignment]
        return [
            f"Check items in {pre.target} (restored from backup {src.name} of {src.table}, taken {iso(src.created)}).",
            f"Point the application's table name from {src.table} to {pre.target}, or copy the needed items back "
            "with a reviewed script.",
            "Re-create what the restore does not carry: auto scaling, alarms, IAM policies, streams.",
        ]
