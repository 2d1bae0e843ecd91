"""``max_connections`` of an RDS/Aurora database, to judge CloudWatch ``DatabaseConnections``.

CloudWatch counts connections but not the ceiling. The ceiling is PostgreSQL's own
``SHOW max_connections`` when the triage has a session (``pg_dsn``), else the value of the
instance's DB parameter group (an Aurora cluster: its writer's). A parameter group that leaves
it to the engine default formula (``LEAST({DBInstanceClassMemory/9531392},5000)``) gives no
number here, and the finding says so rather than guess. Reading the parameter group is
optional: denied, throttled or unsupported is a finding, and the runbook goes on.

Kept apart from :mod:`opslib.aws.rds` (the restores) as its own concern: what the latency
triage and the morning check compare ``DatabaseConnections`` with.
"""

from __future__ import annotations

from dataclasses import dataclass

from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error


@dataclass(frozen=True)
class MaxConnections:
    """The ceiling, where it came from, or why it is not known."""

    value: int | None
    source: str  # "SHOW max_connections", "parameter group <name>", or ""
    note: str = ""  # why there is no value (formula, denied, not found, ...)
    error_kind: str = ""  # AwsErrorKind of a failed read, "" otherwise


def _instance(identifier: str, *, rds) -> dict:
    """The instance itself, or the writer of the Aurora cluster of that name."""
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except Exception as exc:  # noqa: BLE001 - not an instance: maybe a cluster, else re-raised
        if aws_error_kind(exc) is not AwsErrorKind.NOT_FOUND:
            raise
    cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    members = cluster.get("DBClusterMembers") or []
    writer = next((m for m in members if m.get("IsClusterWriter")), members[0] if members else None)
    if writer is None:
        return {}
    return rds.describe_db_instances(DBInstanceIdentifier=writer["DBInstanceIdentifier"])[
        "DBInstances"
    ][0]


def from_parameter_group(identifier: str, *, rds) -> MaxConnections:
    """``max_connections`` from the DB parameter group of ``identifier`` (instance or cluster)."""
    what = f"rds:DescribeDBParameters for {identifier}"
    try:
        inst = _instance(identifier, rds=rds)
        groups = [g["DBParameterGroupName"] for g in inst.get("DBParameterGroups") or []]
        if not groups:
            return MaxConnections(None, "", f"{identifier}: no instance or parameter group found")
        group = groups[0]
        pages = rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group)
        value = next(
            (
                p.get("ParameterValue")
                for page in pages
                for p in page.get("Parameters", [])
                if p.get("ParameterName") == "max_connections"
            ),
            None,
        )
    except Exception as exc:  # noqa: BLE001 - an optional read: its failure is a finding
        err = translate_aws_error(exc, what)
        return MaxConnections(None, "", str(err), aws_error_kind(exc).value)
    src = f"parameter group {group}"
    if value is None:
        return MaxConnections(None, src, f"{src} does not set max_connections (engine default)")
    if not str(value).strip().isdigit():
        return MaxConnections(None, src, f"{src} sets max_connections to the formula {value}")
    return MaxConnections(int(value), src)
