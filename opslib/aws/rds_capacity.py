"""RDS instance class changes: the current class, Multi-AZ (which decides the downtime), and
``ModifyDBInstance --db-instance-class ... --apply-immediately``.

The scaling procedure changes an instance class during an incident only with
``ApplyImmediately``; without it the change waits for the maintenance window. On a single-AZ
instance the change takes the database down while it is rebuilt; on Multi-AZ the standby is
changed first and a failover (about a minute of refused connections) follows. The plan says
which, in words, before anyone approves it.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from opslib.clients import translate_aws_error
from opslib.core import executors
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus

__all__ = [
    "MODIFY_ACTION",
    "InstanceClass",
    "downtime_note",
    "modify_class",
    "plan_class",
    "read_instance",
]

MODIFY_ACTION = "rds:ModifyDBInstance DBInstanceClass"


@dataclass(frozen=True)
class InstanceClass:
    """An instance's class and what decides how a change of it lands."""

    instance: str
    instance_class: str
    multi_az: bool
    status: str
    engine: str
    pending_class: str  # a class change already waiting for the maintenance window

    def numbers(self) -> dict[str, object]:
        return {"instance_class": self.instance_class}


def read_instance(*, rds, instance: str) -> InstanceClass:
    """The instance's class; NotFoundError (exit 2) when it does not exist."""
    try:
        d = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    except ClientError as exc:
        raise translate_aws_error(exc, f"rds:DescribeDBInstances {instance}") from exc
    return InstanceClass(
        instance=instance,
        instance_class=str(d.get("DBInstanceClass", "")),
        multi_az=bool(d.get("MultiAZ")),
        status=str(d.get("DBInstanceStatus", "")),
        engine=str(d.get("Engine", "")),
        pending_class=str((d.get("PendingModifiedValues") or {}).get("DBInstanceClass", "")),
    )


def downtime_note(inst: InstanceClass) -> str:
    """The cost of a class change in words: downtime unless Multi-AZ."""
    if inst.multi_az:
        return (
            f"{inst.instance} is Multi-AZ: the standby is changed first, then a failover to it "
            "(about 60-120 s of refused connections; clients must reconnect)"
        )
    return (
        f"DOWNTIME: {inst.instance} is single-AZ: the database is unavailable while the instance "
        "is rebuilt on the new class (typically 5-15 minutes); enable Multi-AZ first to avoid it"
    )


def plan_class(inst: InstanceClass, *, instance_class: str) -> Change:
    """The ModifyDBInstance call with ApplyImmediately (read only)."""
    return Change(
        action=MODIFY_ACTION,
        target=inst.instance,
        effect=f"class {inst.instance_class} -> {instance_class} (ApplyImmediately)",
        params={
            "instance": inst.instance,
            "from": inst.numbers(),
            "instance_class": instance_class,
            "apply_immediately": True,
        },
    )


@executors.register(MODIFY_ACTION)
def modify_class(change: Change, *, rds) -> ChangeOutcome:
    """Apply one planned class change, only if the class is still what the plan saw."""
    p = change.params
    now = read_instance(rds=rds, instance=p["instance"])
    if now.numbers() != dict(p["from"]):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"the class changed since the plan ({dict(p['from'])} -> {now.numbers()}); plan again",
        )
    try:
        rds.modify_db_instance(
            DBInstanceIdentifier=p["instance"],
            DBInstanceClass=p["instance_class"],
            ApplyImmediately=bool(p["apply_immediately"]),
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"{MODIFY_ACTION} {p['instance']}") from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        change.effect,
        {"instance_class": p["instance_class"]},
    )
