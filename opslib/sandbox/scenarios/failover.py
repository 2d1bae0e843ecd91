"""Sandbox scenario for db-failover: a Multi-AZ instance, an Aurora cluster, a single-AZ one.

What it seeds (its own resources: ``fintech-banking-db`` belongs to the backup and latency
scenarios and ``fintech-cluster`` to pitr, whose tests assert their state, and a failover test
here must never race them):

- RDS PostgreSQL ``fintech-ledger-db``, Multi-AZ (primary and standby AZ: the sandbox's AWS
  server reports the standby, see :mod:`opslib.sandbox.aws_failover`);
- Aurora PostgreSQL ``fintech-payments-aurora`` with a writer ``fintech-payments-aurora-1`` and
  a reader ``fintech-payments-aurora-2``;
- RDS PostgreSQL ``fintech-reporting-db``, single-AZ (the failover the runbook must refuse);
- one CPU / connections / free storage datapoint per instance (and the reader's
  AuroraReplicaLag), so the status shows numbers and the idle scan does not take them for idle.

Reseeding deletes and recreates the three (moto creates them at once), which also puts an
Aurora writer that a failover moved back on ``-1``. Reboots and failovers take
``OPSLIB_SANDBOX_RDS_REBOOT_SECONDS`` (default 3) on the sandbox, or the seconds of a
resource's ``sandbox.opslib.dev/reboot-seconds`` tag. The PostgreSQL view (``pg_dsn``) is the
sandbox's PostgreSQL server standing in for the database: it is not restarted by a simulated
reboot.
"""

from __future__ import annotations

import datetime as dt

RUNBOOKS: tuple[str, ...] = ("db-failover",)

MULTI_AZ = "fintech-ledger-db"
SINGLE_AZ = "fintech-reporting-db"
CLUSTER = "fintech-payments-aurora"
WRITER = f"{CLUSTER}-1"
READER = f"{CLUSTER}-2"
TAGS = [
    {"Key": "sandbox.opslib.dev/scenario", "Value": "failover"},
    {"Key": "team", "Value": "payments"},
]


def _drop(rds) -> None:
    for ident in (WRITER, READER, MULTI_AZ, SINGLE_AZ):
        try:
            rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
        except rds.exceptions.DBInstanceNotFoundFault:
            pass  # first seed
    try:
        rds.delete_db_cluster(DBClusterIdentifier=CLUSTER, SkipFinalSnapshot=True)
    except rds.exceptions.DBClusterNotFoundFault:
        pass
    # moto keeps the deleted cluster's automated snapshot, named by the minute: a reseed within
    # that minute would fail to create the cluster again (DBClusterSnapshotAlreadyExists)
    snaps = rds.describe_db_cluster_snapshots(DBClusterIdentifier=CLUSTER, SnapshotType="automated")
    for snap in snaps["DBClusterSnapshots"]:
        rds.delete_db_cluster_snapshot(
            DBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"]
        )


def _instance(rds, ident: str, *, multi_az: bool, region: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=ident,
        Engine="postgres",
        EngineVersion="15.4",
        DBInstanceClass="db.m6g.large",
        AllocatedStorage=100,
        MasterUsername="ledger_admin",
        ManageMasterUserPassword=True,
        MultiAZ=multi_az,
        AvailabilityZone=f"{region}a",
        BackupRetentionPeriod=7,
        Tags=TAGS,
    )


def _cluster(rds, region: str) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier=CLUSTER,
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        MasterUsername="payments_admin",
        ManageMasterUserPassword=True,
        BackupRetentionPeriod=7,
        Tags=TAGS,
    )
    for n, ident in enumerate((WRITER, READER)):
        rds.create_db_instance(
            DBInstanceIdentifier=ident,
            DBClusterIdentifier=CLUSTER,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
            AvailabilityZone=f"{region}{'ab'[n]}",
            PromotionTier=n,
            Tags=TAGS,
        )


def _metrics(cw) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    data = []
    for n, ident in enumerate((MULTI_AZ, SINGLE_AZ, WRITER, READER)):
        dim = [{"Name": "DBInstanceIdentifier", "Value": ident}]
        data += [
            {
                "MetricName": "CPUUtilization",
                "Dimensions": dim,
                "Timestamp": now,
                "Value": 30.0 + 5 * n,
                "Unit": "Percent",
            },
            {
                "MetricName": "DatabaseConnections",
                "Dimensions": dim,
                "Timestamp": now,
                "Value": 40.0 + n,
                "Unit": "Count",
            },
            {
                "MetricName": "FreeStorageSpace",
                "Dimensions": dim,
                "Timestamp": now,
                "Value": 60.0 * 2**30,
                "Unit": "Bytes",
            },
        ]
    data.append(
        {
            "MetricName": "AuroraReplicaLag",
            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": READER}],
            "Timestamp": now,
            "Value": 18.0,
            "Unit": "Milliseconds",
        }
    )
    for i in range(0, len(data), 20):
        cw.put_metric_data(Namespace="AWS/RDS", MetricData=data[i : i + 20])


def seed(ctx) -> dict[str, dict]:
    """(Re)create the three databases above; the presets point at the Multi-AZ instance."""
    rds = ctx.aws("rds")
    region = ctx.info.region
    _drop(rds)
    _instance(rds, MULTI_AZ, multi_az=True, region=region)
    _instance(rds, SINGLE_AZ, multi_az=False, region=region)
    _cluster(rds, region)
    _metrics(ctx.aws("cloudwatch"))
    return {
        "db-failover": {
            "db_instance": MULTI_AZ,
            # -p db_cluster=fintech-payments-aurora drops the db_instance preset
            "_one_of": [["db_instance", "db_cluster"]],
            "pg_dsn": ctx.pg_conninfo(),  # trust auth on loopback: no password in it
            "region": region,
        }
    }
