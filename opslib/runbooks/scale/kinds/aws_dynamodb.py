"""DynamoDB tables: billing mode and provisioned units, the 24-hour on-demand rule, the
monthly cost."""

from __future__ import annotations

from opslib.aws import dynamodb_capacity
from opslib.aws.pricing import HOURS_PER_MONTH, price_table
from opslib.core.errors import BadInputError
from opslib.core.plans import Plan
from opslib.runbooks.scale.kinds.base import (
    Connections,
    Kind,
    register,
    title,
)
from opslib.runbooks.scale.model import Current, Inputs, Proposal, TargetKind

# --- DynamoDB table --------------------------------------------------------------------------


def _read_dynamodb(c: Connections, target: str) -> Current:
    cap = dynamodb_capacity.read_capacity(dynamodb=c.dynamodb, table=target)
    facts = {}
    if cap.last_switch_to_on_demand:
        facts["last switch to on-demand"] = cap.last_switch_to_on_demand.isoformat(
            timespec="seconds"
        )
    return Current(
        TargetKind.DYNAMODB_TABLE,
        target,
        cap.numbers(),
        cap.status == "ACTIVE",
        cap.status,
        {},
        facts,
        state=cap,
    )


def _dynamodb_cost(mode: str, rcu: int, wcu: int) -> str:
    if mode != dynamodb_capacity.PROVISIONED:
        return "on-demand: billed per request (no fixed monthly cost; dearer than provisioned at steady load)"
    p = price_table()
    usd = (
        rcu * p.price("dynamodb_rcu_hour") + wcu * p.price("dynamodb_wcu_hour")
    ) * HOURS_PER_MONTH
    return f"provisioned {rcu} RCU + {wcu} WCU: about ${usd:,.2f} per month ({p.basis('dynamodb_rcu_hour', 'dynamodb_wcu_hour')})"


def _propose_dynamodb(inp: Inputs, cur: Current) -> Proposal:
    import datetime as _dt

    cap: dynamodb_capacity.TableCapacity = cur.state
    req = inp.request
    mode = req.billing_mode or cap.billing_mode
    rcu = req.read_capacity or (cap.read_capacity if mode == dynamodb_capacity.PROVISIONED else 0)
    wcu = req.write_capacity or (cap.write_capacity if mode == dynamodb_capacity.PROVISIONED else 0)
    if mode == dynamodb_capacity.PROVISIONED and (rcu < 1 or wcu < 1):
        raise BadInputError(
            f"read_capacity/write_capacity: {cur.target} is on-demand; switching it to PROVISIONED "
            "needs both (from the consumed capacity shown above, with headroom)"
        )
    if mode == dynamodb_capacity.ON_DEMAND and (req.read_capacity or req.write_capacity):
        raise BadInputError(
            "read_capacity/write_capacity: an on-demand (PAY_PER_REQUEST) table has no provisioned units; leave them 0"
        )
    warnings = []
    if mode != cap.billing_mode:
        if mode == dynamodb_capacity.ON_DEMAND:
            until = cap.switch_blocked_until(_dt.datetime.now(_dt.UTC))
            if until is not None:
                raise BadInputError(
                    f"billing_mode=PAY_PER_REQUEST: {cur.target} switched to on-demand less than 24 h ago; "
                    f"AWS allows it again after {until.isoformat(timespec='minutes')}: raise the "
                    "provisioned capacity instead"
                )
        warnings.append(
            f"billing mode {cap.billing_mode} -> {mode}: the switch to on-demand is allowed once per 24 h per table"
        )
    expected = {"billing_mode": mode, "read_capacity": rcu, "write_capacity": wcu}
    changes = ()
    if expected != cap.numbers():
        changes = (
            dynamodb_capacity.plan_update(
                cap, billing_mode=mode, read_capacity=rcu, write_capacity=wcu
            ),
        )
    plan = Plan(
        title(cur.kind, cur.target, changes[0].effect if changes else "no change"),
        changes,
        tuple(warnings),
        {"max_step": inp.max_step},
    )
    return Proposal(plan, expected, (_dynamodb_cost(mode, rcu, wcu),))


register(
    Kind(
        TargetKind.DYNAMODB_TABLE,
        ("dynamodb", "cloudwatch"),
        frozenset({"billing_mode", "read_capacity", "write_capacity"}),
        _read_dynamodb,
        _propose_dynamodb,
        "table ACTIVE with the new capacity",
    )
)
