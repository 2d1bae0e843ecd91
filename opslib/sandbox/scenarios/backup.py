"""Sandbox scenario for the backup runbook: a backup posture with holes in it.

- Aurora ``fintech-cluster`` (35-day retention) and DynamoDB ``fintech-sessions`` (PITR on) are
  the pitr scenario's: this one waits for them and only adds today's on-demand backup of the
  table. Both meet the policy.
- RDS instance ``fintech-banking-db``: 7-day retention (flagged), its newest snapshot 3 days
  old (flagged), and a manual snapshot ``fintech-banking-db-vendor-share`` shared with
  everyone (critical).
- DynamoDB ``BudgetBuddy-Users`` with PITR off (flagged).
- Sandbox PostgreSQL database ``ledger_db`` with WAL archiving on, which ``backup`` can
  base-back-up (pg_basebackup -Ft) and ``pitr-restore`` restore from.

What moto does not model: it stamps every snapshot with the time of the API call and has no
clock to move, so a snapshot cannot be made "3 days old" through the API. The sandbox's AWS
server learns it from :func:`opslib.sandbox.aws_server.install_snapshot_ages` (snapshots tagged :data:`AGE_TAG` report a
creation time that many hours earlier); without it, the snapshot ages here read ~0 h and
only the retention and the public snapshot are flagged on ``fintech-banking-db``. moto also
reports a placeholder size for cluster snapshots, completes every snapshot at once
(``available`` on the first describe), and copies snapshots between regions instantly.
"""

from __future__ import annotations

import datetime as _dt
import time

from opslib.sandbox.aws_server import AGE_TAG
from opslib.sandbox.demo import DemoRun

RUNBOOKS: tuple[str, ...] = ("backup",)

CLUSTER = "fintech-cluster"
INSTANCE = "fintech-banking-db"
SESSIONS = "fintech-sessions"
USERS = "BudgetBuddy-Users"
DATABASE = "ledger_db"
OLD_SNAPSHOT = "fintech-banking-db-nightly"
PUBLIC_SNAPSHOT = "fintech-banking-db-vendor-share"
PITR_WAIT_S = 180
OLD_HOURS = 72


def _wait_for_pitr_scenario(ctx, timeout_s: float = PITR_WAIT_S) -> None:
    """fintech-cluster and fintech-sessions belong to the pitr scenario, seeded in parallel:
    wait (bounded) until its writer instance exists and the table has PITR on, never touch them
    before (a cluster created here first would be kept without its settings)."""
    rds, ddb = ctx.aws("rds"), ctx.aws("dynamodb")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            rds.describe_db_instances(DBInstanceIdentifier=f"{CLUSTER}-1")
            cb = ddb.describe_continuous_backups(TableName=SESSIONS)["ContinuousBackupsDescription"]
            status = cb["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
            items = ddb.scan(TableName=SESSIONS, Select="COUNT")["Count"]
            if status == "ENABLED" and items >= 40:
                return
        except (rds.exceptions.DBInstanceNotFoundFault, ddb.exceptions.ResourceNotFoundException):
            pass  # not seeded yet
        except ddb.exceptions.TableNotFoundException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{CLUSTER} / {SESSIONS} (the pitr scenario's) not ready within {timeout_s:.0f} s: "
                "seed the pitr scenario first (opslib sandbox seed pitr)."
            )
        time.sleep(0.5)


def _instance(rds) -> None:
    try:
        rds.describe_db_instances(DBInstanceIdentifier=INSTANCE)
    except rds.exceptions.DBInstanceNotFoundFault:
        # kept when it exists: moto names its automated snapshot per minute
        rds.create_db_instance(
            DBInstanceIdentifier=INSTANCE,
            Engine="postgres",
            EngineVersion="15.4",
            DBInstanceClass="db.m6g.large",
            AllocatedStorage=100,
            MasterUsername="banking_admin",
            ManageMasterUserPassword=True,
            BackupRetentionPeriod=7,
            StorageEncrypted=True,
            DeletionProtection=True,
            Tags=[{"Key": "team", "Value": "banking"}, {"Key": "env", "Value": "sandbox"}],
        )
    rds.modify_db_instance(
        DBInstanceIdentifier=INSTANCE, BackupRetentionPeriod=7, ApplyImmediately=True
    )
    for sid in (OLD_SNAPSHOT, PUBLIC_SNAPSHOT):
        try:
            rds.delete_db_snapshot(DBSnapshotIdentifier=sid)
        except rds.exceptions.DBSnapshotNotFoundFault:
            pass  # first seed
    aged = [{"Key": AGE_TAG, "Value": str(OLD_HOURS)}]
    rds.create_db_snapshot(
        DBInstanceIdentifier=INSTANCE, DBSnapshotIdentifier=OLD_SNAPSHOT, Tags=aged
    )
    rds.create_db_snapshot(
        DBInstanceIdentifier=INSTANCE,
        DBSnapshotIdentifier=PUBLIC_SNAPSHOT,
        Tags=[*aged, {"Key": "purpose", "Value": "vendor debugging"}],
    )
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier=PUBLIC_SNAPSHOT, AttributeName="restore", ValuesToAdd=["all"]
    )
    # the automated snapshots are as old as the manual ones (the backup job stopped 3 days ago)
    for s in rds.describe_db_snapshots(DBInstanceIdentifier=INSTANCE, SnapshotType="automated")[
        "DBSnapshots"
    ]:
        rds.add_tags_to_resource(ResourceName=s["DBSnapshotArn"], Tags=aged)


def _tables(ddb) -> None:
    try:
        ddb.describe_table(TableName=USERS)
    except ddb.exceptions.ResourceNotFoundException:
        ddb.create_table(
            TableName=USERS,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "team", "Value": "budgetbuddy"}],
        )
        ddb.get_waiter("table_exists").wait(
            TableName=USERS, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        for i in range(12):
            ddb.put_item(
                TableName=USERS,
                Item={"user_id": {"S": f"u-{i:03d}"}, "plan": {"S": ("free", "pro")[i % 2]}},
            )
    ddb.update_continuous_backups(
        TableName=USERS, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d")
    ddb.create_backup(TableName=SESSIONS, BackupName=f"session-daily-{stamp}")


def _postgres(ctx) -> str:
    with ctx.pg_connect() as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (DATABASE,),
        )
        conn.execute(f"drop database if exists {DATABASE}")
        conn.execute(f"create database {DATABASE}")
    with ctx.pg_connect(DATABASE) as conn:
        conn.execute(
            "create table entries (id bigserial primary key, account text not null, "
            "amount_cents bigint not null, booked_at timestamptz not null default now())"
        )
        conn.execute(
            "insert into entries (account, amount_cents) select 'acct-' || (g % 7), g from generate_series(1, 200) g"
        )
    return ctx.pg_conninfo(DATABASE)


def seed(ctx) -> dict[str, dict]:
    """(Re)create the backup posture above; return the audit presets."""
    _instance(ctx.aws("rds"))
    _wait_for_pitr_scenario(ctx)
    _tables(ctx.aws("dynamodb"))
    dsn = _postgres(ctx)
    ctx.scenario_dir("backup")
    return {
        "backup": {
            "aurora_clusters": CLUSTER,
            "rds_instances": INSTANCE,
            "dynamodb_tables": f"{SESSIONS},{USERS}",
            "pg_dsn": dsn,
        }
    }


def demo_runs(presets: dict[str, dict]) -> list[DemoRun]:
    """An approved pre-deploy backup of the Aurora cluster and the sessions table (sandbox only)."""
    return [
        DemoRun(
            "backup",
            "pre-deploy backups, approved",
            {
                "mode": "create",
                "aurora_clusters": CLUSTER,
                "rds_instances": "",
                "dynamodb_tables": SESSIONS,
                "pg_dsn": "",
                "dry_run": False,
                "approved_by": "opslib-demo",
                "change_ticket": "DEMO",
            },
        )
    ]
