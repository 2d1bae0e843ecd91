"""RDS/Aurora instances for the morning check: status, CPU, connections, free storage.

Instances come from the DescribeDBInstances paginator; their CPU, connections and free storage
from ONE GetMetricData call for all of them. Connections are compared with ``max_connections``
from the instance's parameter group (:mod:`opslib.aws.rds_params`, the read the latency triage
makes) at 80 / 95 %; a group that leaves it to the engine formula, or a denied read, shows the
count only and says why.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from opslib.aws import rds_params
from opslib.aws.cloudwatch import MetricQuery, get_metrics
from opslib.core.findings import Finding, Severity

SOURCE = "rds"
CPU_AMBER, CPU_RED = 70.0, 90.0
FREE_STORAGE_AMBER_PCT = 20.0
FREE_STORAGE_RED_PCT = 10.0
CONN_AMBER_PCT, CONN_RED_PCT = 80.0, 95.0


@dataclass(frozen=True)
class DbInstance:
    """One instance and its latest metrics (None: no datapoint in the window)."""

    identifier: str
    engine: str
    status: str
    storage_gb: int
    cpu_pct: float | None
    connections: float | None
    free_storage_gb: float | None
    max_connections: int | None = None
    max_connections_note: str = ""  # why it is unknown (engine formula, denied, ...)


def instances(
    *, rds, cloudwatch, names: list[str] | None = None, minutes: int = 60
) -> tuple[list[DbInstance], int]:
    """Instances (all, or ``names``) with their metrics; and the GetMetricData calls made."""
    raw = [
        i
        for page in rds.get_paginator("describe_db_instances").paginate()
        for i in page["DBInstances"]
    ]
    if names:
        raw = [i for i in raw if i["DBInstanceIdentifier"] in names]
    qs = []
    for n, i in enumerate(raw):
        dim = {"DBInstanceIdentifier": i["DBInstanceIdentifier"]}
        qs += [
            MetricQuery(f"cpu{n}", "AWS/RDS", "CPUUtilization", dim, "Average", 300),
            MetricQuery(f"conn{n}", "AWS/RDS", "DatabaseConnections", dim, "Maximum", 300),
            MetricQuery(f"free{n}", "AWS/RDS", "FreeStorageSpace", dim, "Minimum", 300),
        ]
    calls = 0
    series = None
    if qs:
        end = _dt.datetime.now(_dt.UTC)
        series = get_metrics(
            qs, cloudwatch=cloudwatch, start=end - _dt.timedelta(minutes=minutes), end=end
        )
        calls = series.calls

    def last(qid: str) -> float | None:
        return (
            float(series.series(qid).iloc[-1])
            if series is not None and series.has_data(qid)
            else None
        )

    out = []
    for n, i in enumerate(raw):
        free = last(f"free{n}")
        conns = last(f"conn{n}")
        ceiling = (
            rds_params.from_parameter_group(i["DBInstanceIdentifier"], rds=rds)
            if conns is not None
            else rds_params.MaxConnections(None, "", "no connections datapoint")
        )
        out.append(
            DbInstance(
                i["DBInstanceIdentifier"],
                i.get("Engine", ""),
                i.get("DBInstanceStatus", ""),
                int(i.get("AllocatedStorage", 0) or 0),
                last(f"cpu{n}"),
                conns,
                None if free is None else free / 2**30,
                ceiling.value,
                ceiling.note,
            )
        )
    return out, calls


def findings(dbs: list[DbInstance]) -> list[Finding]:
    out: list[Finding] = []
    for d in dbs:
        if d.status not in ("available", "backing-up", "modifying"):
            out.append(
                Finding(
                    Severity.CRITICAL
                    if d.status
                    in ("failed", "stopped", "storage-full", "inaccessible-encryption-credentials")
                    else Severity.WARNING,
                    f"RDS {d.identifier}: status {d.status}",
                    SOURCE,
                    f"{d.engine}",
                    "Check the RDS events of the instance; restore or fail over if it does not recover.",
                )
            )
        if d.cpu_pct is not None and d.cpu_pct >= CPU_AMBER:
            out.append(
                Finding(
                    Severity.CRITICAL if d.cpu_pct >= CPU_RED else Severity.WARNING,
                    f"RDS {d.identifier}: CPU at {d.cpu_pct:.0f}%",
                    SOURCE,
                    f"thresholds {CPU_AMBER:g}/{CPU_RED:g}%",
                    "Find the costly statements (db-maintenance report); scale the instance class if the load is legitimate.",
                )
            )
        if d.connections is not None and d.max_connections:
            pct = 100.0 * d.connections / d.max_connections
            if pct >= CONN_AMBER_PCT:
                out.append(
                    Finding(
                        Severity.CRITICAL if pct >= CONN_RED_PCT else Severity.WARNING,
                        f"RDS {d.identifier}: connections at {pct:.0f}% of max_connections",
                        SOURCE,
                        f"{d.connections:.0f} of {d.max_connections} "
                        f"(thresholds {CONN_AMBER_PCT:g}/{CONN_RED_PCT:g}%)",
                        "Look for connection leaks and idle-in-transaction sessions "
                        "(db-maintenance report); add a pooler before raising max_connections.",
                    )
                )
        if d.free_storage_gb is not None and d.storage_gb:
            pct = 100.0 * d.free_storage_gb / d.storage_gb
            if pct < FREE_STORAGE_AMBER_PCT:
                out.append(
                    Finding(
                        Severity.CRITICAL if pct < FREE_STORAGE_RED_PCT else Severity.WARNING,
                        f"RDS {d.identifier}: {pct:.0f}% storage free",
                        SOURCE,
                        f"{d.free_storage_gb:.1f} of {d.storage_gb} GB free",
                        "Raise the allocated storage (or enable storage autoscaling); look for bloat.",
                    )
                )
    return out
