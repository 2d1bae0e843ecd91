"""DynamoDB tables: restore to a new table, re-apply TTL, tags and PITR, compare item counts."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from opslib.aws import dynamodb as d
from opslib.clients import aws_client
from opslib.core.errors import BadInputError, PreflightError
from opslib.core.plans import ApplyResult, Change, Plan
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
    epoch,
    iso,
    iso_precise,
    side_by_side,
)

_DDB_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def _source(pre: Preflight) -> d.TableSource:
    if not isinstance(pre.source, d.TableSource):
        raise TypeError(f"not a DynamoDB preflight: {type(pre.source).__name__}")
    return pre.source


def _settings(t: d.TableSource) -> dict[str, Any]:
    return {
        "TTL attribute": t.ttl_attribute or "(none)",
        "tags": ", ".join(f"{k}={v}" for k, v in t.tags) or "(none)",
        "PITR": t.pitr_status,
    }


def _with_epoch(change: Change, pre: Preflight) -> Change:
    """The restore step's effect with the restore time in ISO 8601 and epoch seconds (the
    procedure's ``--restore-date-time 1705929600``)."""
    if change.action != d.ACTION_RESTORE:
        return change
    t = pre.request.restore_time
    if t is None:
        when = f"latest restorable time (now {iso(pre.latest)}, epoch {epoch(pre.latest)})"
        effect = change.effect.replace("the latest restorable time", when)
    else:
        effect = change.effect.replace(
            str(change.params.get("RestoreDateTime")), f"{iso_precise(t)} (epoch {epoch(t)})"
        )
    return dataclasses.replace(change, effect=effect)


class DynamoDbEngine(RestoreEngine):
    """A DynamoDB table, restored into a new table (DynamoDB cannot rename tables)."""

    engine: ClassVar[Engine] = Engine.DYNAMODB
    description: ClassVar[str] = "table"
    validation_sql_refusal: ClassVar[str] = (
        "validation_sql does not apply to DynamoDB (item counts are compared); leave it empty."
    )
    actions: ClassVar[frozenset[str]] = d.RESTORE_ACTIONS

    def target_for(self, req: RestoreRequest) -> str:
        tgt = named_target(req, noun="table")
        if not _DDB_NAME.match(tgt):
            raise BadInputError(
                f"target {tgt!r} is not a valid name (3-255 letters, digits, '_', '-', '.')."
            )
        return tgt

    def connect(self, req: RestoreRequest) -> RestoreClients:
        return RestoreClients(dynamodb=aws_client("dynamodb", region=req.region))

    def preflight(self, req: RestoreRequest, clients: RestoreClients) -> Preflight:
        ddb = clients.dynamodb
        src = d.describe_table(req.source, dynamodb=ddb)
        checks = [
            Check(
                "source exists",
                CheckResult.OK,
                f"table {src.name}, status {src.status}, ~{src.item_count} items",
            )
        ]
        if src.pitr_status != "ENABLED":
            raise PreflightError(
                f"Point-in-time recovery is {src.pitr_status} on {src.name}: no PITR restore is possible. "
                "Restore from an on-demand backup instead (aws dynamodb list-backups), and enable PITR."
            )
        checks.append(Check("PITR enabled", CheckResult.OK, "continuous backups on"))
        check_window(req.restore_time, src.earliest_restorable, src.latest_restorable)
        resolved = req.restore_time or src.latest_restorable
        checks.append(
            Check(
                "restore time in window",
                CheckResult.OK,
                f"{iso(resolved)} in {iso(src.earliest_restorable)} .. {iso(src.latest_restorable)}",
            )
        )
        if d.table_exists(req.target, dynamodb=ddb):
            raise PreflightError(
                f"Target table {req.target!r} already exists. A restore never overwrites: give another target."
            )
        checks.append(Check("target does not exist", CheckResult.OK, req.target))
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
        plan = d.plan_restore(
            _source(pre), target=pre.target, restore_time=pre.request.restore_time
        )
        return dataclasses.replace(plan, changes=tuple(_with_epoch(c, pre) for c in plan.changes))

    def retention_days(self, pre: Preflight) -> tuple[float | None, str]:
        # RecoveryPeriodInDays (1-35, default 35) once opslib.aws.dynamodb reads it
        days = getattr(_source(pre), "recovery_period_days", None)
        if days is None:
            return None, (
                "PITR recovery period (RecoveryPeriodInDays, 1-35 days) not read by the adapter: "
                "check it with aws dynamodb describe-continuous-backups"
            )
        return float(days), "PITR recovery period (RecoveryPeriodInDays)"

    def plan_drill_cleanup(self, pre: Preflight) -> Plan:
        return d.plan_delete(pre.target)

    def executor_context(self, pre: Preflight) -> Mapping[str, Any]:
        # the delete handler refuses the source, whatever a plan says
        return {**super().executor_context(pre), "protected": frozenset({pre.request.source})}

    def endpoint(self, pre: Preflight, result: ApplyResult) -> tuple[str, int]:
        _, port = super().endpoint(pre, result)
        return "", port  # a table has no endpoint of its own

    def validate(
        self, pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients
    ) -> Validation:
        ddb, source = clients.dynamodb, _source(pre)
        errors: list[str] = []
        src_count = d.count_items(source.name, dynamodb=ddb)
        src = {"item count (scan)": src_count.count, **_settings(source)}
        if not outcome.restored:
            return Validation(RestoreStatus.RESTORED, "item counts", side_by_side(src, None))
        restored = d.describe_table(pre.target, dynamodb=ddb)
        tgt_count = d.count_items(pre.target, dynamodb=ddb)
        tgt = {"item count (scan)": tgt_count.count, **_settings(restored)}
        if not (src_count.complete and tgt_count.complete):
            errors.append("item count capped: the scan stopped at max_items")
        if restored.status != "ACTIVE":
            errors.append(f"target table status {restored.status}")
        sample = tuple(d.sample_items(pre.target, dynamodb=ddb, limit=5))
        return Validation(
            RestoreStatus.RESTORED,
            "item counts",
            side_by_side(src, tgt),
            sample=sample,
            errors=tuple(errors),
        )

    def next_steps(self, pre: Preflight, outcome: RestoreOutcome) -> list[str]:
        t, src = pre.target, pre.request.source
        return [
            f"Check items in {t}. DynamoDB cannot rename tables: point the application's table name "
            f"setting (env var / config / SSM parameter) from {src} to {t}, or copy the needed items back into {src} "
            "with a reviewed script.",
            "Re-create what the restore does not carry: auto scaling, alarms, IAM policies, streams.",
            f"Keep {src} untouched until the incident review.",
        ]
