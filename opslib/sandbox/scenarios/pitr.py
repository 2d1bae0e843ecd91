"""Sandbox scenario for pitr-restore: data to lose, and the backups to get it back from.

- AWS server: Aurora PostgreSQL cluster ``fintech-cluster`` (35-day retention, its own subnet
  group, security group, parameter groups, tags, log exports, IAM auth, deletion protection)
  with a writer instance; DynamoDB table ``fintech-sessions`` with PITR, TTL, tags and items;
  Secrets Manager secret ``fintech/aurora`` holding the cluster endpoint (for the cutover).
- Sandbox PostgreSQL: database ``payments_db``; a base backup (pg_basebackup, owned by the
  PostgreSQL OS user); then table ``payments`` gets rows; the time is recorded; then an
  "accidental" ``DELETE FROM payments``; then ``pg_switch_wal()`` so the archive holds it all.

The preset restores PostgreSQL to just before the DELETE into a fresh directory.
Idempotent: every seed resets these resources (and stops servers restored by earlier runs).
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import time
from pathlib import Path

from opslib.pg import pitr
from opslib.sandbox.demo import DemoRun

RUNBOOKS: tuple[str, ...] = ("pitr-restore",)

CLUSTER = "fintech-cluster"
WRITER = "fintech-cluster-1"
TABLE = "fintech-sessions"
SECRET = "fintech/aurora"
DATABASE = "payments_db"
PAYMENT_ROWS = 500
SESSION_ITEMS = 40
ARCHIVE_WAIT_S = 30


def _aurora(ctx) -> str:
    rds, ec2 = ctx.aws("rds"), ctx.aws("ec2")
    try:
        rds.describe_db_subnet_groups(DBSubnetGroupName="fintech-db")
    except rds.exceptions.DBSubnetGroupNotFoundFault:
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{ctx.info.region}{az}"
            )["Subnet"]["SubnetId"]
            for i, az in enumerate("ab", start=1)
        ]
        ec2.create_security_group(
            GroupName="fintech-aurora", Description="aurora clients", VpcId=vpc
        )
        rds.create_db_subnet_group(
            DBSubnetGroupName="fintech-db",
            DBSubnetGroupDescription="fintech private subnets",
            SubnetIds=subnets,
        )
        rds.create_db_cluster_parameter_group(
            DBClusterParameterGroupName="fintech-aurora-pg15",
            DBParameterGroupFamily="aurora-postgresql15",
            Description="fintech cluster",
        )
        rds.create_db_parameter_group(
            DBParameterGroupName="fintech-aurora-pg15-instance",
            DBParameterGroupFamily="aurora-postgresql15",
            Description="fintech instances",
        )
    vpc_id = rds.describe_db_subnet_groups(DBSubnetGroupName="fintech-db")["DBSubnetGroups"][0][
        "VpcId"
    ]
    sg = ec2.describe_security_groups(
        Filters=[
            {"Name": "group-name", "Values": ["fintech-aurora"]},
            {"Name": "vpc-id", "Values": [vpc_id]},
        ]
    )["SecurityGroups"][0]["GroupId"]
    # kept when it exists (its restorable window then reaches back to the first seed; moto names
    # an automated snapshot per cluster and minute, so recreating it within a minute fails)
    try:
        c = rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]
    except rds.exceptions.DBClusterNotFoundFault:
        c = None
    if c is None:
        c = _create_cluster(rds, sg)
    try:
        rds.describe_db_instances(DBInstanceIdentifier=WRITER)
    except rds.exceptions.DBInstanceNotFoundFault:
        rds.create_db_instance(
            DBInstanceIdentifier=WRITER,
            DBClusterIdentifier=CLUSTER,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
            DBParameterGroupName="fintech-aurora-pg15-instance",
            Tags=[{"Key": "team", "Value": "payments"}],
        )
    return c["Endpoint"]


def _create_cluster(rds, sg: str) -> dict:
    return rds.create_db_cluster(
        DBClusterIdentifier=CLUSTER,
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        MasterUsername="fintech_admin",
        ManageMasterUserPassword=True,
        BackupRetentionPeriod=35,
        DBSubnetGroupName="fintech-db",
        VpcSecurityGroupIds=[sg],
        DBClusterParameterGroupName="fintech-aurora-pg15",
        Port=5432,
        StorageEncrypted=True,
        EnableIAMDatabaseAuthentication=True,
        DeletionProtection=True,
        EnableCloudwatchLogsExports=["postgresql"],
        CopyTagsToSnapshot=True,
        Tags=[{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "sandbox"}],
    )["DBCluster"]


def _secret(ctx, endpoint: str) -> None:
    sm = ctx.aws("secretsmanager")
    body = json.dumps(
        {
            "engine": "postgres",
            "host": endpoint,
            "port": 5432,
            "username": "fintech_app",
            "dbname": "payments",
        }
    )
    try:
        sm.put_secret_value(SecretId=SECRET, SecretString=body)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(
            Name=SECRET,
            SecretString=body,
            Description="fintech Aurora endpoint for the payments service",
        )


def _dynamodb(ctx) -> None:
    ddb = ctx.aws("dynamodb")
    try:
        ddb.delete_table(TableName=TABLE)
        ddb.get_waiter("table_not_exists").wait(
            TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    except ddb.exceptions.ResourceNotFoundException:
        pass  # first seed
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "sandbox"}],
    )
    ddb.get_waiter("table_exists").wait(
        TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    ddb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    expires = int(time.time()) + 86400
    for i in range(SESSION_ITEMS):
        ddb.put_item(
            TableName=TABLE,
            Item={
                "session_id": {"S": f"sess-{i:04d}"},
                "user_id": {"S": f"user-{i % 9:03d}"},
                "device": {"S": ("ios", "android", "web")[i % 3]},
                "expires_at": {"N": str(expires)},
            },
        )


def _stop_old_restores(sdir: Path) -> None:
    for old in sorted(sdir.glob("restore-*")):
        pitr.remove_target(str(old))


def _postgres(ctx, sdir: Path) -> dict[str, str]:
    _stop_old_restores(sdir)
    with ctx.pg_connect() as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (DATABASE,),
        )
        conn.execute(f"drop database if exists {DATABASE}")
        conn.execute(f"create database {DATABASE}")
    base = sdir / "base"
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(mode=0o700)
    ctx.chown_to_pg(base)
    res = ctx.run_as_pg(
        [
            ctx.pg_bin("pg_basebackup"),
            "-h",
            ctx.info.pg_host,
            "-p",
            str(ctx.info.pg_port),
            "-U",
            ctx.info.pg_user,
            "-D",
            str(base),
            "-Fp",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if res.returncode != 0:
        raise RuntimeError(f"pg_basebackup failed: {res.stderr.strip()}")
    with ctx.pg_connect(DATABASE) as conn:
        conn.execute(
            "create table payments (id bigserial primary key, account text not null, amount_cents bigint not null, "
            "currency text not null default 'EUR', created_at timestamptz not null default now())"
        )
        conn.execute("create table accounts (id text primary key, owner text not null)")
        conn.execute(
            "insert into accounts select 'acct-' || g, 'owner ' || g from generate_series(1, 20) g"
        )
        conn.execute(
            "insert into payments (account, amount_cents) select 'acct-' || (1 + g %% 20), 100 * g from generate_series(1, %s) g",
            (PAYMENT_ROWS,),
        )
        time.sleep(1.0)
        before = conn.execute("select now()").fetchone()[0]
        time.sleep(1.0)
        conn.execute("delete from payments")  # the accident
        seg = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()[0]
    archive = Path(ctx.info.pg_wal_archive)
    deadline = time.monotonic() + ARCHIVE_WAIT_S
    while not (archive / seg).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"WAL segment {seg} was not archived into {archive} within {ARCHIVE_WAIT_S} s"
            )
        time.sleep(0.2)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    restore_time = (
        before.astimezone(_dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )
    return {
        "engine": "postgres",
        "source": ctx.pg_conninfo(DATABASE),
        "pg_base_backup": str(base),
        "pg_wal_archive": str(archive),
        "restore_time": restore_time,
        "pg_target_dir": str(sdir / f"restore-{stamp}"),
    }


def seed(ctx) -> dict[str, dict]:
    """(Re)create the cluster, table, secret, and the lost-payments incident; return presets."""
    endpoint = _aurora(ctx)
    _secret(ctx, endpoint)
    _dynamodb(ctx)
    sdir = ctx.scenario_dir("pitr")
    presets = _postgres(ctx, sdir)
    return {"pitr-restore": presets}


def demo_runs(presets: dict[str, dict]) -> list[DemoRun]:
    """Approved restores for ``opslib demo``: PostgreSQL to just before the DELETE, Aurora and
    DynamoDB to new targets. Safe to apply: they act on the local sandbox only."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d%H%M%S")
    approval = {"dry_run": False, "approved_by": "opslib-demo", "change_ticket": "DEMO"}
    runs: list[DemoRun] = []
    pg = presets.get("pitr-restore") or {}
    if pg:
        runs.append(DemoRun("pitr-restore", "postgres, approved", {**pg, **approval}))
    runs.append(
        DemoRun(
            "pitr-restore",
            "aurora, approved",
            {
                "engine": "aurora",
                "source": "fintech-cluster",
                "target": f"fintech-cluster-demo-{stamp}",
                **approval,
            },
        )
    )
    runs.append(
        DemoRun(
            "pitr-restore",
            "dynamodb, approved",
            {
                "engine": "dynamodb",
                "source": "fintech-sessions",
                "target": f"fintech-sessions-demo-{stamp}",
                **approval,
            },
        )
    )
    return runs
