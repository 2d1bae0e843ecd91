"""DynamoDB capacity: billing mode, provisioned read/write units, and the throttle evidence.

The throttling procedure looks at ``ThrottledRequests``, ``ReadThrottleEvents`` and
``WriteThrottleEvents`` against consumed vs provisioned capacity, then raises the capacity or
switches the table to on-demand (``update-table --billing-mode PAY_PER_REQUEST``). AWS allows
the switch to on-demand once per 24 hours per table, so the last switch is read and a second
one inside that window is refused before anything is called.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from botocore.exceptions import ClientError

from opslib.clients import translate_aws_error
from opslib.core import executors
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus

__all__ = [
    "ON_DEMAND",
    "PROVISIONED",
    "THROTTLE_METRICS",
    "UPDATE_ACTION",
    "TableCapacity",
    "plan_update",
    "read_capacity",
    "update_table",
]

UPDATE_ACTION = "dynamodb:UpdateTable"
ON_DEMAND = "PAY_PER_REQUEST"
PROVISIONED = "PROVISIONED"
SWITCH_WINDOW = _dt.timedelta(hours=24)
THROTTLE_METRICS = ("ThrottledRequests", "ReadThrottleEvents", "WriteThrottleEvents")


@dataclass(frozen=True)
class TableCapacity:
    """A table's billing mode and provisioned units (0 when on-demand), and its status."""

    table: str
    billing_mode: str
    read_capacity: int
    write_capacity: int
    status: str
    last_switch_to_on_demand: _dt.datetime | None

    def numbers(self) -> dict[str, object]:
        return {
            "billing_mode": self.billing_mode,
            "read_capacity": self.read_capacity,
            "write_capacity": self.write_capacity,
        }

    def switch_blocked_until(self, now: _dt.datetime) -> _dt.datetime | None:
        """When a switch to on-demand is allowed again, if it is not now (once per 24 h)."""
        last = self.last_switch_to_on_demand
        if last is None or now - last >= SWITCH_WINDOW:
            return None
        return last + SWITCH_WINDOW


def _utc(v) -> _dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, _dt.datetime):
        return v.astimezone(_dt.UTC) if v.tzinfo else v.replace(tzinfo=_dt.UTC)
    return _dt.datetime.fromtimestamp(float(v), _dt.UTC)


def read_capacity(*, dynamodb, table: str) -> TableCapacity:
    """The table's capacity; NotFoundError (exit 2) when it does not exist."""
    try:
        t = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        raise translate_aws_error(exc, f"dynamodb:DescribeTable {table}") from exc
    summary = t.get("BillingModeSummary") or {}
    mode = summary.get("BillingMode") or PROVISIONED
    pt = t.get("ProvisionedThroughput") or {}
    prov = mode == PROVISIONED
    return TableCapacity(
        table=table,
        billing_mode=mode,
        read_capacity=int(pt.get("ReadCapacityUnits", 0)) if prov else 0,
        write_capacity=int(pt.get("WriteCapacityUnits", 0)) if prov else 0,
        status=str(t.get("TableStatus", "")),
        last_switch_to_on_demand=_utc(summary.get("LastUpdateToPayPerRequestDateTime")),
    )


def plan_update(
    cap: TableCapacity, *, billing_mode: str, read_capacity: int, write_capacity: int
) -> Change:
    """The UpdateTable call: a billing-mode switch and/or new provisioned units (read only)."""
    params: dict[str, object] = {
        "table": cap.table,
        "from": cap.numbers(),
        "billing_mode": billing_mode,
    }
    if billing_mode == PROVISIONED:
        params["read_capacity"] = int(read_capacity)
        params["write_capacity"] = int(write_capacity)
        effect = (
            f"{cap.billing_mode} -> PROVISIONED, read {cap.read_capacity} -> {read_capacity}, "
            f"write {cap.write_capacity} -> {write_capacity} units"
        )
    else:
        params["read_capacity"] = params["write_capacity"] = 0
        effect = f"{cap.billing_mode} -> PAY_PER_REQUEST (on-demand: no provisioned units)"
    return Change(action=UPDATE_ACTION, target=cap.table, effect=effect, params=params)


@executors.register(UPDATE_ACTION)
def update_table(change: Change, *, dynamodb) -> ChangeOutcome:
    """Apply one planned UpdateTable, only if the capacity is still what the plan saw."""
    p = change.params
    now = read_capacity(dynamodb=dynamodb, table=p["table"])
    if now.numbers() != dict(p["from"]):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"the capacity changed since the plan ({dict(p['from'])} -> {now.numbers()}); plan again",
        )
    kwargs: dict[str, object] = {"TableName": p["table"]}
    if p["billing_mode"] != now.billing_mode:
        kwargs["BillingMode"] = p["billing_mode"]
    if p["billing_mode"] == PROVISIONED:
        kwargs["ProvisionedThroughput"] = {
            "ReadCapacityUnits": int(p["read_capacity"]),
            "WriteCapacityUnits": int(p["write_capacity"]),
        }
    try:
        dynamodb.update_table(**kwargs)
    except ClientError as exc:
        raise translate_aws_error(exc, f"{UPDATE_ACTION} {p['table']}") from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        change.effect,
        {k: p[k] for k in ("billing_mode", "read_capacity", "write_capacity")},
    )
