"""Aurora clusters and RDS instances: one engine class, two registrations.

The cluster engine restores the cluster and then creates its writer instance (a restored
cluster has none); the instance engine restores one instance. Both carry every source setting
a bare restore drops (:mod:`opslib.aws.rds`), both can switch an endpoint secret afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from opslib.aws import rds as r
from opslib.aws import secrets
from opslib.clients import aws_client
from opslib.core.errors import BadInputError, PreflightError
from opslib.core.plans import ApplyResult, Plan
from opslib.runbooks.pitr_restore.engines.base import RestoreEngine, check_window, named_target
from opslib.runbooks.pitr_restore.model import (
    Check,
    CheckResult,
    Engine,
    Preflight,
    RestoreClients,
    RestoreOutcome,
    RestoreRequest,
    RestoreStatus,
    Validation,
    ValidationRow,
    iso,
    side_by_side,
)

_RDS_ID = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")
_RDS_ID_RULE = "1-63 letters, digits and hyphens, starting with a letter, no '--', no trailing '-'"


def _source(pre: Preflight) -> r.DbSource:
    if not isinstance(pre.source, r.DbSource):
        raise TypeError(f"not an RDS preflight: {type(pre.source).__name__}")
    return pre.source


class RdsEngine(RestoreEngine):
    """What Aurora and RDS restores share; :class:`AuroraEngine` adds the cluster's specifics."""

    engine: ClassVar[Engine] = Engine.RDS
    description: ClassVar[str] = "RDS instance"
    kind: ClassVar[r.DbKind] = r.DbKind.RDS
    noun: ClassVar[str] = "instance"
    supports_cutover: ClassVar[bool] = True
    actions: ClassVar[frozenset[str]] = r.RESTORE_ACTIONS | {secrets.ACTION_PUT}

    def target_for(self, req: RestoreRequest) -> str:
        tgt = named_target(req, noun=self.noun)
        if not _RDS_ID.match(tgt):
            raise BadInputError(f"target {tgt!r} is not a valid name ({_RDS_ID_RULE}).")
        return tgt

    def connect(self, req: RestoreRequest) -> RestoreClients:
        sm = aws_client("secretsmanager", region=req.region) if req.cutover_secret else None
        return RestoreClients(rds=aws_client("rds", region=req.region), secretsmanager=sm)

    def describe(self, identifier: str, clients: RestoreClients) -> r.DbSource:
        return r.describe_instance(identifier, rds=clients.rds)

    def target_exists(self, req: RestoreRequest, clients: RestoreClients) -> bool:
        return r.instance_exists(req.target, rds=clients.rds)

    def preflight(self, req: RestoreRequest, clients: RestoreClients) -> Preflight:
        src = self.describe(req.source, clients)
        checks = [
            Check(
                "source exists",
                CheckResult.OK,
                f"{src.kind} {src.identifier} ({src.engine} {src.engine_version}), status {src.status}",
            )
        ]
        if src.backup_retention_days < 1:
            raise PreflightError(
                f"{src.identifier} has automated backups disabled (retention 0 days): no point-in-time "
                "restore is possible. Restore from a snapshot instead (aws rds describe-db-snapshots)."
            )
        checks.append(
            Check("backups enabled", CheckResult.OK, f"retention {src.backup_retention_days} days")
        )
        check_window(req.restore_time, src.earliest_restorable, src.latest_restorable)
        resolved = req.restore_time or src.latest_restorable
        checks.append(
            Check(
                "restore time in window",
                CheckResult.OK,
                f"{iso(resolved)} in {iso(src.earliest_restorable)} .. {iso(src.latest_restorable)}",
            )
        )
        if self.target_exists(req, clients):
            raise PreflightError(
                f"Target {req.target!r} already exists. A restore never overwrites: give another target "
                "(or leave it empty for <source>-recovery-<UTC time>)."
            )
        checks.append(Check("target does not exist", CheckResult.OK, req.target))
        carried = sum(1 for s in src.settings if s.api_param)
        checks.append(
            Check(
                "settings carried from source",
                CheckResult.OK,
                f"{carried} of {len(src.settings)} (see the settings table)",
            )
        )
        if src.status != "available":
            checks.append(
                Check(
                    "source status",
                    CheckResult.WARNING,
                    f"{src.status}: a restore works from backups anyway",
                )
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

    def plan(self, pre: Preflight) -> Plan:
        req = pre.request
        return r.plan_instance_restore(
            _source(pre),
            target=pre.target,
            restore_time=req.restore_time,
            instance_class=req.instance_class,
        )

    def retention_days(self, pre: Preflight) -> tuple[float | None, str]:
        return float(
            _source(pre).backup_retention_days
        ), "automated backups (BackupRetentionPeriod)"

    def plan_drill_cleanup(self, pre: Preflight) -> Plan:
        src = _source(pre)
        prot = any(s.name == "deletion protection" and s.value for s in src.settings)
        return r.plan_delete(src.kind, pre.target, deletion_protection=prot)

    def executor_context(self, pre: Preflight) -> Mapping[str, Any]:
        # the handlers refuse to modify or delete the source, whatever a plan says
        return {**super().executor_context(pre), "protected": frozenset({pre.request.source})}

    def validate(
        self, pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients
    ) -> Validation:
        src = _source(pre)
        if not outcome.restored:
            vals = {"status": src.status, "endpoint": src.endpoint}
            return Validation(
                RestoreStatus.RESTORED, "status and settings", side_by_side(vals, None)
            )
        tgt = self.describe(pre.target, clients)
        rows = [
            ValidationRow(
                "status",
                src.status,
                tgt.status,
                tgt.status == "available",
                "" if tgt.status == "available" else "target not available",
            ),
            ValidationRow("endpoint", src.endpoint, tgt.endpoint, None, ""),
            *self.extra_rows(src, tgt),
        ]
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

    def extra_rows(self, src: r.DbSource, tgt: r.DbSource) -> tuple[ValidationRow, ...]:
        """Engine-specific validation rows after status and endpoint."""
        return ()

    def next_steps(self, pre: Preflight, outcome: RestoreOutcome) -> list[str]:
        t, src = pre.target, pre.request.source
        return [
            f"Check the data on the new instance {t} (endpoint {outcome.endpoint}).",
            f"Switch the Route53 CNAME or the endpoint secret to {outcome.endpoint} (cutover_secret with its own approval).",
            "Restart the application so it re-reads the endpoint; recreate alarms and read replicas.",
            f"Keep {src} untouched until the incident review.",
        ]


class AuroraEngine(RdsEngine):
    """An Aurora cluster: restore the cluster, then create its writer instance."""

    engine: ClassVar[Engine] = Engine.AURORA
    description: ClassVar[str] = "Aurora cluster"
    kind: ClassVar[r.DbKind] = r.DbKind.AURORA
    noun: ClassVar[str] = "cluster"

    def describe(self, identifier: str, clients: RestoreClients) -> r.DbSource:
        return r.describe_cluster(identifier, rds=clients.rds)

    def target_exists(self, req: RestoreRequest, clients: RestoreClients) -> bool:
        if r.cluster_exists(req.target, rds=clients.rds):
            return True
        writer = r.writer_instance_id(req.target)
        if r.instance_exists(writer, rds=clients.rds):
            raise PreflightError(f"Instance {writer!r} already exists; give another target.")
        return False

    def plan(self, pre: Preflight) -> Plan:
        req = pre.request
        return r.plan_cluster_restore(
            _source(pre),
            target=pre.target,
            restore_time=req.restore_time,
            instance_class=req.instance_class,
        )

    def endpoint(self, pre: Preflight, result: ApplyResult) -> tuple[str, int]:
        endpoint, port = super().endpoint(pre, result)
        cluster = next(
            (o for o in result.outcomes if o.action == r.ACTION_RESTORE_CLUSTER),
            None,
        )
        endpoint = (cluster.data.get("endpoint") if cluster else "") or endpoint
        return endpoint, port or _source(pre).port

    def extra_rows(self, src: r.DbSource, tgt: r.DbSource) -> tuple[ValidationRow, ...]:
        return (
            ValidationRow(
                "writer instance",
                src.writer_instance,
                tgt.writer_instance,
                bool(tgt.writer_instance),
                "" if tgt.writer_instance else "no writer",
            ),
        )

    def next_steps(self, pre: Preflight, outcome: RestoreOutcome) -> list[str]:
        t, src = pre.target, pre.request.source
        return [
            f"Check the data on the new cluster {t} (endpoint {outcome.endpoint}, port {outcome.port}).",
            f"Point the application at it: update the Route53 CNAME (aws route53 change-resource-record-sets, "
            f"record -> {outcome.endpoint}) or the Secrets Manager secret holding the endpoint "
            f"(cutover_secret=<secret id> with its own approval in this runbook).",
            "Restart or roll the application so it re-reads the endpoint; watch errors and latency.",
            "Recreate what no restore carries: reader instances, CloudWatch alarms, event subscriptions.",
            f"Keep {src} untouched until the incident review; then delete it deliberately (deletion protection is on if it was).",
        ]
