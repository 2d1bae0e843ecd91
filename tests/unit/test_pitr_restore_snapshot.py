"""pitr-restore from an RDS/Aurora snapshot or a DynamoDB backup, into a NEW target, on the
sandbox's AWS server: refusals before anything exists, settings carried, a copy to another
region first, validation, the RTO check and the drill cleanup."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from opslib.aws import rds as r
from opslib.aws.snapshots import restore as sr
from opslib.core.errors import BadInputError, PreflightError
from opslib.runbooks import pitr_restore
from opslib.runbooks.pitr_restore import RestoreStatus, SourceKind
from opslib.safety import gate

pytestmark = pytest.mark.timeout(180)


def uid() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def aws(sandbox):
    from opslib.clients import aws_client

    return {"rds": aws_client("rds"), "dynamodb": aws_client("dynamodb")}


def restore(pre, cl, *, approved_by="alice"):
    plan = pitr_restore.plan(pre)
    ex = pitr_restore.executor(pre, clients=cl)
    result = gate(plan, dry_run=False, approved_by=approved_by, execute=ex)
    return plan, pitr_restore.outcome(pre, plan, result, executor=ex, dry_run=False)


def cleanup(pre, out, cl):
    plan = pitr_restore.plan_drill_cleanup(pre, out)
    ex = pitr_restore.executor(pre, clients=cl)
    res = gate(plan, dry_run=False, approved_by="alice", execute=ex)
    return pitr_restore.cleanup_outcome(pre, plan, res, dry_run=False)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"engine": "aurora", "from_snapshot": "s", "restore_time": "2024-01-01T00:00:00Z"},
            "restore_time",
        ),
        (
            {"engine": "dynamodb", "from_snapshot": "s", "target": "t-new"},
            "cannot restore from a snapshot",
        ),
        ({"engine": "rds", "from_backup": "arn:x", "target": "t"}, "cannot restore from a backup"),
        ({"engine": "aurora", "from_snapshot": "s", "from_backup": "b"}, "not both"),
        (
            {
                "engine": "dynamodb",
                "from_backup": "arn:x",
                "target": "tt-1",
                "target_region": "eu-west-1",
            },
            "target_region",
        ),  # fmt: skip
        ({"engine": "aurora", "source": "fintech-cluster", "target_az": "us-east-1a"}, "target_az"),
        ({"engine": "dynamodb", "from_backup": "arn:x"}, "target is required"),
    ],
)
def test_bad_combinations_are_refused_before_any_client(params, message):
    with pytest.raises(BadInputError, match=message):
        pitr_restore.inputs(**params)


def test_a_snapshot_still_creating_is_refused():
    src = sr.SnapshotSource(r.DbKind.RDS, "s1", "arn:s1", "creating", None, "db", "postgres", "15",
                            5432, False, None, "us-east-1")  # fmt: skip
    with pytest.raises(PreflightError, match="'creating', not 'available'"):
        sr.check_available(src)


def test_rds_snapshot_restores_into_a_new_instance_in_the_az_with_settings_and_rto(aws):
    rds = aws["rds"]
    snap = f"fintech-banking-db-unit-{uid()}"
    rds.create_db_snapshot(DBInstanceIdentifier="fintech-banking-db", DBSnapshotIdentifier=snap)
    target = f"banking-from-snap-{uid()}"
    req = pitr_restore.inputs(
        engine="rds", from_snapshot=snap, target=target, target_az="us-east-1b", drill=True,
        rto_minutes=30, poll_seconds=0.2, wait_timeout_minutes=2,
    )  # fmt: skip
    assert req.source_kind is SourceKind.SNAPSHOT
    cl = pitr_restore.connect(req)
    pre = pitr_restore.preflight(req, clients=cl)
    assert {c.check for c in pre.checks} >= {
        "snapshot exists",
        "snapshot available",
        "target does not exist",
    }
    plan, out = restore(pre, cl)
    params = plan.changes[0].params
    assert plan.changes[0].action == "rds:RestoreDBInstanceFromDBSnapshot"
    assert params["AvailabilityZone"] == "us-east-1b" and params["DeletionProtection"] is True
    assert {"Key": "team", "Value": "banking"} in params["Tags"]
    assert out.status is RestoreStatus.RESTORED
    val = pitr_restore.validate(pre, out, clients=cl)
    rows = {v.check: v for v in val.rows}
    assert val.status is RestoreStatus.VALIDATED, val.errors
    assert rows["availability zone"].match is True
    assert (
        rows["instance: deletion protection"].match is True and rows["instance: tags"].match is True
    )
    rto = pitr_restore.rto_check(pre, val)
    assert rto.met is True and "RTO 30 min met" in rto.verdict
    assert cleanup(pre, out, cl).applied
    assert not r.instance_exists(target, rds=rds)
    assert r.instance_exists("fintech-banking-db", rds=rds)  # the source is untouched
    rds.delete_db_snapshot(DBSnapshotIdentifier=snap)


def test_a_snapshot_of_another_source_is_refused(aws):
    rds = aws["rds"]
    snap = f"fintech-banking-db-other-{uid()}"
    rds.create_db_snapshot(DBInstanceIdentifier="fintech-banking-db", DBSnapshotIdentifier=snap)
    try:
        req = pitr_restore.inputs(
            engine="rds", source="some-other-db", from_snapshot=snap, target=f"x-{uid()}"
        )
        with pytest.raises(PreflightError, match="not of source"):
            pitr_restore.preflight(req, clients=pitr_restore.connect(req))
    finally:
        rds.delete_db_snapshot(DBSnapshotIdentifier=snap)


@pytest.fixture
def dr_cluster(aws):
    """An Aurora cluster of its own. moto 5.2.5 cannot restore a snapshot of a cluster created
    with ManageMasterUserPassword (KeyError '_master_user_password' in DBCluster.get_cfg), which
    the seeded fintech-cluster uses, so this one has a (fake, emulator-only) master password."""
    rds = aws["rds"]
    name = f"dr-src-{uid()}"
    rds.create_db_cluster(
        DBClusterIdentifier=name, Engine="aurora-postgresql", EngineVersion="15.4",
        MasterUsername="dr_admin", MasterUserPassword="emulator-only-0", BackupRetentionPeriod=35,
        StorageEncrypted=True, DeletionProtection=True, Tags=[{"Key": "team", "Value": "dr"}],
    )  # fmt: skip
    yield name
    rds.modify_db_cluster(DBClusterIdentifier=name, DeletionProtection=False, ApplyImmediately=True)
    rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)


def test_aurora_snapshot_is_copied_to_another_region_and_restored_there(aws, dr_cluster):
    rds = aws["rds"]
    snap = f"{dr_cluster}-snap"
    arn = rds.create_db_cluster_snapshot(
        DBClusterIdentifier=dr_cluster, DBClusterSnapshotIdentifier=snap
    )["DBClusterSnapshot"]["DBClusterSnapshotArn"]
    target = f"fintech-dr-{uid()}"
    req = pitr_restore.inputs(
        engine="aurora", from_snapshot=arn, target=target, target_region="eu-west-1", drill=True,
        poll_seconds=0.2, wait_timeout_minutes=2,
    )  # fmt: skip
    cl = pitr_restore.connect(req)
    assert cl.rds.meta.region_name == "eu-west-1" and cl.rds_source.meta.region_name == "us-east-1"
    pre = pitr_restore.preflight(req, clients=cl)
    plan, out = restore(pre, cl)
    assert [c.action for c in plan.changes] == [
        "rds:CopyDBClusterSnapshot", "rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance",
    ]  # fmt: skip
    restore_params = plan.changes[1].params
    assert "KmsKeyId" not in restore_params  # regional: not carried to eu-west-1
    assert plan.changes[0].params["KmsKeyId"] == "alias/aws/rds"  # encrypted: the target's key
    assert restore_params["DeletionProtection"] is True
    assert {"Key": "team", "Value": "dr"} in restore_params["Tags"]
    assert out.status is RestoreStatus.RESTORED and out.endpoint
    val = pitr_restore.validate(pre, out, clients=cl)
    assert val.status is RestoreStatus.VALIDATED, val.errors
    rows = {v.check: v for v in val.rows}
    assert rows["writer instance"].match is True
    assert rows["cluster: KMS key"].difference == "regional: not carried"
    assert r.cluster_exists(target, rds=cl.rds) and not r.cluster_exists(target, rds=rds)
    assert cleanup(pre, out, cl).applied
    assert not r.cluster_exists(target, rds=cl.rds)
    cl.rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=f"{snap}-eu-west-1")
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snap)


def test_dynamodb_backup_restores_into_a_new_table_and_another_tables_backup_is_refused(aws):
    ddb = aws["dynamodb"]
    stamp = dt.datetime.now(dt.UTC).strftime("%H%M%S")
    arn = ddb.create_backup(TableName="fintech-sessions", BackupName=f"unit-{stamp}")[
        "BackupDetails"
    ]["BackupArn"]
    other = ddb.create_backup(TableName="BudgetBuddy-Users", BackupName=f"unit-{stamp}")[
        "BackupDetails"
    ]["BackupArn"]
    target = f"fintech-sessions-from-backup-{uid()}"
    try:
        bad = pitr_restore.inputs(
            engine="dynamodb", source="fintech-sessions", from_backup=other, target=target
        )
        with pytest.raises(PreflightError, match="another table's backup"):
            pitr_restore.preflight(bad, clients=pitr_restore.connect(bad))
        assert target not in ddb.list_tables()["TableNames"]
        req = pitr_restore.inputs(
            engine="dynamodb",
            source="fintech-sessions",
            from_backup=arn,
            target=target,
            poll_seconds=0.2,
        )
        cl = pitr_restore.connect(req)
        pre = pitr_restore.preflight(req, clients=cl)
        plan, out = restore(pre, cl)
        assert plan.changes[0].action == "dynamodb:RestoreTableFromBackup"
        assert {c.action for c in plan.changes} >= {
            "dynamodb:UpdateTimeToLive",
            "dynamodb:UpdateContinuousBackups",
        }
        val = pitr_restore.validate(pre, out, clients=cl)
        assert val.status is RestoreStatus.VALIDATED, val.errors
        assert all(v.match for v in val.rows), val.to_frame()
    finally:
        if target in ddb.list_tables()["TableNames"]:
            ddb.delete_table(TableName=target)
        for b in (arn, other):
            ddb.delete_backup(BackupArn=b)
