"""DynamoDB point-in-time recovery: PITR status and window, restore to a NEW table, re-apply
what a restore does not carry, and count/sample items to validate.

``RestoreTableToPointInTime`` copies the key schema, indexes, billing mode and items, but not
the table's TTL setting, tags, PITR itself, streams, auto scaling policies, CloudWatch alarms
or IAM policies. The plan re-applies TTL, tags and PITR (so the recovered table is itself
recoverable) and lists the rest for the operator.

The module registers the handler of every action it plans (:mod:`opslib.core.executors`);
AWS errors are translated once by :func:`opslib.clients.translate_aws_error`.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.errors import NotFoundError, PreflightError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.waits import poll_until

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    import pandas as pd
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")

ACTION_RESTORE = "dynamodb:RestoreTableToPointInTime"
ACTION_TTL = "dynamodb:UpdateTimeToLive"
ACTION_TAG = "dynamodb:TagResource"
ACTION_PITR = "dynamodb:UpdateContinuousBackups"
ACTION_DELETE = "dynamodb:DeleteTable"

RESTORE_ACTIONS = frozenset({ACTION_RESTORE, ACTION_TTL, ACTION_TAG, ACTION_PITR, ACTION_DELETE})

DEFAULT_POLL_SECONDS = 10.0
DEFAULT_TIMEOUT_SECONDS = 3600.0

NOT_CARRIED = (
    "auto scaling policies (Application Auto Scaling)",
    "CloudWatch alarms",
    "IAM policies naming the table",
    "DynamoDB Streams (and their Lambda triggers)",
    "resource-based policy",
)


@dataclass(frozen=True)
class TableSource:
    """A DynamoDB table as the restore needs it."""

    name: str
    arn: str
    status: str
    item_count: int  # approximate, refreshed by DynamoDB about every 6 hours
    billing_mode: str
    pitr_status: str  # ENABLED / DISABLED
    earliest_restorable: _dt.datetime | None
    latest_restorable: _dt.datetime | None
    ttl_attribute: str
    tags: tuple[tuple[str, str], ...]
    stream: str  # "" or the StreamViewType
    deletion_protection: bool
    indexes: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: days of point-in-time recovery kept (AWS: 1 to 35, default 35); None when PITR is off
    recovery_period_days: int | None = None

    def settings_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            ("point-in-time recovery", self.pitr_status, "re-applied (UpdateContinuousBackups)"),
            (
                "TTL attribute",
                self.ttl_attribute or "(none)",
                "re-applied (UpdateTimeToLive)" if self.ttl_attribute else "-",
            ),
            (
                "tags",
                ", ".join(f"{k}={v}" for k, v in self.tags) or "(none)",
                "re-applied (TagResource)" if self.tags else "-",
            ),
            ("billing mode", self.billing_mode, "carried by the restore"),
            ("indexes", ", ".join(self.indexes) or "(none)", "carried by the restore"),
            (
                "stream",
                self.stream or "(off)",
                "NOT carried: re-enable by hand if consumers need it" if self.stream else "-",
            ),
            (
                "deletion protection",
                str(self.deletion_protection),
                "NOT carried" if self.deletion_protection else "-",
            ),
        ]
        rows += [(n, "?", "NOT carried: recreate by hand") for n in NOT_CARRIED]
        return pd.DataFrame(rows, columns=["setting", "source value", "restore"])


def _ts(v: Any) -> _dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, _dt.datetime):
        return v.astimezone(_dt.UTC) if v.tzinfo else v.replace(tzinfo=_dt.UTC)
    return _dt.datetime.fromtimestamp(float(v), _dt.UTC)


def _call(what: str, fn: Callable[..., T], /, **params: Any) -> T:
    """One DynamoDB API call; an AWS error becomes the opslib error of its kind, naming ``what``."""
    try:
        return fn(**params)
    except ClientError as exc:
        raise translate_aws_error(exc, what) from exc


def _missing(exc: ClientError) -> bool:
    return aws_error_kind(exc) is AwsErrorKind.NOT_FOUND


def _table_status(name: str, *, dynamodb: DynamoDBClient) -> str:
    """The table's status, or "" when it does not exist."""
    try:
        return dynamodb.describe_table(TableName=name)["Table"].get("TableStatus", "")
    except ClientError as exc:
        if _missing(exc):
            return ""
        raise translate_aws_error(exc, f"dynamodb:DescribeTable {name}") from exc


def table_exists(name: str, *, dynamodb: DynamoDBClient) -> bool:
    return _table_status(name, dynamodb=dynamodb) != ""


def describe_table(name: str, *, dynamodb: DynamoDBClient) -> TableSource:
    """The table, its PITR window, TTL and tags; NotFoundError when it does not exist."""
    try:
        t = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if not _missing(exc):
            raise translate_aws_error(exc, f"dynamodb:DescribeTable {name}") from exc
        raise NotFoundError(
            f"DynamoDB table {name!r} not found in this account/region. Check `source` and `region` "
            "(aws dynamodb list-tables)."
        ) from exc
    cb = _call(
        f"dynamodb:DescribeContinuousBackups {name}",
        dynamodb.describe_continuous_backups,
        TableName=name,
    )["ContinuousBackupsDescription"]
    pitr = cb.get("PointInTimeRecoveryDescription") or {}
    ttl = (
        _call(
            f"dynamodb:DescribeTimeToLive {name}", dynamodb.describe_time_to_live, TableName=name
        ).get("TimeToLiveDescription")
        or {}
    )
    tags: list[tuple[str, str]] = []
    kw: dict[str, Any] = {"ResourceArn": t["TableArn"]}
    while True:
        page = _call(f"dynamodb:ListTagsOfResource {name}", dynamodb.list_tags_of_resource, **kw)
        tags += [(x["Key"], x["Value"]) for x in page.get("Tags", [])]
        if not page.get("NextToken"):
            break
        kw["NextToken"] = page["NextToken"]
    stream = t.get("StreamSpecification") or {}
    return TableSource(
        name=name,
        arn=t["TableArn"],
        status=t.get("TableStatus", ""),
        item_count=int(t.get("ItemCount") or 0),
        billing_mode=(t.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
        pitr_status=pitr.get("PointInTimeRecoveryStatus", "DISABLED"),
        earliest_restorable=_ts(pitr.get("EarliestRestorableDateTime")),
        latest_restorable=_ts(pitr.get("LatestRestorableDateTime")),
        ttl_attribute=ttl.get("AttributeName", "")
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
        else "",
        tags=tuple(t for t in tags if not t[0].startswith("aws:")),
        stream=stream.get("StreamViewType", "") if stream.get("StreamEnabled") else "",
        deletion_protection=bool(t.get("DeletionProtectionEnabled")),
        indexes=tuple(
            i["IndexName"]
            for i in (t.get("GlobalSecondaryIndexes") or [])
            + (t.get("LocalSecondaryIndexes") or [])
        ),
        raw=t,
        recovery_period_days=(
            int(pitr.get("RecoveryPeriodInDays") or 35)
            if pitr.get("PointInTimeRecoveryStatus") == "ENABLED"
            else None
        ),
    )


def target_arn(src: TableSource, target: str) -> str:
    return src.arn.rsplit("/", 1)[0] + "/" + target


def plan_restore(src: TableSource, *, target: str, restore_time: _dt.datetime | None) -> Plan:
    """Restore to ``target`` at ``restore_time`` (None = latest), then re-apply TTL, tags and PITR."""
    rparams: dict[str, Any] = {"SourceTableName": src.name, "TargetTableName": target}
    if restore_time is None:
        rparams["UseLatestRestorableTime"] = True
        when = "the latest restorable time"
    else:
        rparams["RestoreDateTime"] = (
            restore_time.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")
        )
        when = rparams["RestoreDateTime"]
    changes = [
        Change(
            ACTION_RESTORE,
            target,
            f"new table from {src.name} at {when}; wait until ACTIVE",
            rparams,
        )
    ]
    if src.ttl_attribute:
        changes.append(
            Change(
                ACTION_TTL,
                target,
                f"re-enable TTL on attribute {src.ttl_attribute!r}",
                {
                    "TableName": target,
                    "TimeToLiveSpecification": {
                        "Enabled": True,
                        "AttributeName": src.ttl_attribute,
                    },
                },
            )
        )
    if src.tags:
        changes.append(
            Change(
                ACTION_TAG,
                target,
                f"re-apply {len(src.tags)} tag(s)",
                {
                    "ResourceArn": target_arn(src, target),
                    "Tags": [{"Key": k, "Value": v} for k, v in src.tags],
                },
            )
        )
    changes.append(
        Change(
            ACTION_PITR,
            target,
            "enable point-in-time recovery on the restored table",
            {
                "TableName": target,
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        )
    )
    warnings = ["The source table is not modified."]
    warnings.append("Not carried by a restore and not re-applied: " + "; ".join(NOT_CARRIED) + ".")
    if src.stream:
        warnings.append(
            f"The source has a stream ({src.stream}); the restored table has none until you enable it."
        )
    return Plan(
        title=f"DynamoDB PITR {src.name} -> {target}",
        changes=tuple(changes),
        warnings=tuple(warnings),
    )


def plan_delete(target: str) -> Plan:
    """Drill cleanup: delete the restored table (never the source)."""
    return Plan(
        title=f"Drill cleanup: delete {target}",
        changes=(Change(ACTION_DELETE, target, "delete the drill table", {"TableName": target}),),
    )


def wait_active(
    name: str,
    *,
    dynamodb: DynamoDBClient,
    timeout_s: float,
    poll_s: float = DEFAULT_POLL_SECONDS,
    want: str = "ACTIVE",
) -> str:
    """Poll until the table is ``want`` ("" = deleted); bounded, with progress."""

    def check() -> tuple[bool, str, str]:
        status = _table_status(name, dynamodb=dynamodb)
        return status == want, status, status or "gone"

    def timeout_message(status: str, _shown: str) -> str:
        return (
            f"Table {name} is '{status or 'gone'}' after {timeout_s:.0f} s (wanted "
            f"'{want or 'deleted'}'). It exists and DynamoDB keeps working on it. To resume: "
            f"`aws dynamodb wait table-{'exists' if want else 'not-exists'} --table-name {name}`, then "
            "re-apply TTL, tags and PITR from this plan; or run again with a larger wait_timeout_minutes."
        )

    return poll_until(
        check,
        timeout_s=timeout_s,
        poll_s=poll_s,
        desc=f"{name} -> {want or 'deleted'} (s)",
        on_timeout=timeout_message,
    )


# --- the handlers of the planned actions (opslib.core.executors) ------------------------------


def _applied(change: Change, t0: float, detail: str, data: dict[str, Any]) -> ChangeOutcome:
    data["seconds"] = round(time.monotonic() - t0, 3)
    return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, detail, data)


@executors.register(ACTION_RESTORE)
def restore_table(
    change: Change,
    *,
    dynamodb: DynamoDBClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """Restore the table point-in-time into a new one and wait (bounded) until it is ACTIVE."""
    p = dict(change.params)
    t0 = time.monotonic()
    if "RestoreDateTime" in p:
        p["RestoreDateTime"] = _dt.datetime.fromisoformat(
            p["RestoreDateTime"].replace("Z", "+00:00")
        )
    target = p["TargetTableName"]
    desc = _call(f"{change.action} {target}", dynamodb.restore_table_to_point_in_time, **p)
    wait_active(target, dynamodb=dynamodb, timeout_s=timeout_s, poll_s=poll_s)
    data = {"arn": desc["TableDescription"].get("TableArn", "")}
    return _applied(change, t0, f"table {target} ACTIVE", data)


@executors.register(ACTION_TTL)
def update_ttl(change: Change, *, dynamodb: DynamoDBClient) -> ChangeOutcome:
    """Re-enable TTL on the restored table (a restore does not carry it)."""
    p = dict(change.params)
    t0 = time.monotonic()
    _call(f"{change.action} {p['TableName']}", dynamodb.update_time_to_live, **p)
    return _applied(change, t0, f"TTL on {p['TimeToLiveSpecification']['AttributeName']}", {})


@executors.register(ACTION_TAG)
def tag_table(change: Change, *, dynamodb: DynamoDBClient) -> ChangeOutcome:
    """Re-apply the source's tags to the restored table."""
    p = dict(change.params)
    t0 = time.monotonic()
    _call(f"{change.action} {change.target}", dynamodb.tag_resource, **p)
    return _applied(change, t0, f"{len(p['Tags'])} tag(s) applied", {})


@executors.register(ACTION_PITR)
def enable_pitr(change: Change, *, dynamodb: DynamoDBClient) -> ChangeOutcome:
    """Enable point-in-time recovery on the restored table."""
    p = dict(change.params)
    t0 = time.monotonic()
    _call(f"{change.action} {p['TableName']}", dynamodb.update_continuous_backups, **p)
    return _applied(change, t0, "PITR enabled", {})


@executors.register(ACTION_DELETE)
def delete_table(
    change: Change,
    *,
    dynamodb: DynamoDBClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
    protected: frozenset[str] = frozenset(),
) -> ChangeOutcome:
    """Delete a drill table and wait (bounded) until it is gone; never one in ``protected``."""
    p = dict(change.params)
    t0 = time.monotonic()
    name = p["TableName"]
    if name in protected:
        raise PreflightError(f"Refusing to delete the source {name}.")
    _call(f"{change.action} {name}", dynamodb.delete_table, **p)
    wait_active(name, dynamodb=dynamodb, timeout_s=timeout_s, poll_s=poll_s, want="")
    return _applied(change, t0, f"table {name} deleted", {})


@dataclass(frozen=True)
class ItemCount:
    """An exact item count by a COUNT scan, capped so a huge table does not scan for hours."""

    table: str
    count: int
    complete: bool  # False when max_items stopped the scan


def count_items(name: str, *, dynamodb: DynamoDBClient, max_items: int = 1_000_000) -> ItemCount:
    """Exact count with a paginated ``Select=COUNT`` scan (reads every item; capped by max_items)."""
    kw: dict[str, Any] = {"TableName": name, "Select": "COUNT"}
    total = 0
    while True:
        page = _call(f"dynamodb:Scan {name}", dynamodb.scan, **kw)
        total += int(page.get("Count", 0))
        if "LastEvaluatedKey" not in page:
            return ItemCount(name, total, True)
        if total >= max_items:
            return ItemCount(name, total, False)
        kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def sample_items(name: str, *, dynamodb: DynamoDBClient, limit: int = 5) -> list[dict[str, Any]]:
    """A few items, deserialised to plain Python, to eyeball the restored data."""
    de = TypeDeserializer()
    items = _call(f"dynamodb:Scan {name}", dynamodb.scan, TableName=name, Limit=limit).get(
        "Items", []
    )
    return [{k: de.deserialize(v) for k, v in it.items()} for it in items]
