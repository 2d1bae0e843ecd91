"""Aurora/RDS restore planning and execution against the sandbox AWS server (moto, loopback)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from opslib import clients
from opslib.aws import rds as r
from opslib.core import executors
from opslib.core.errors import NotFoundError, PreflightError, RunbookTimeoutError
from opslib.core.plans import ChangeStatus

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def rds(sandbox):
    return clients.aws_client("rds")


@pytest.fixture(scope="module")
def execute(rds):
    """The registered RDS handlers, bound to the sandbox client with short waits."""
    return executors.bind(rds=rds, timeout_s=30, poll_s=0.2)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_describe_cluster_lists_what_a_bare_restore_drops(rds):
    src = r.describe_cluster("fintech-cluster", rds=rds)
    assert src.kind == r.AURORA and src.backup_retention_days == 35
    assert src.writer_instance == "fintech-cluster-1" and src.instance_class == "db.r6g.large"
    assert src.earliest_restorable <= src.latest_restorable
    names = {s.name: s for s in src.settings}
    for n in (
        "DB subnet group",
        "VPC security groups",
        "cluster parameter group",
        "KMS key",
        "port",
        "IAM database authentication",
        "deletion protection",
        "tags",
        "log exports",
        "engine version",
        "instance parameter group",
        "option group",
    ):
        assert n in names, n
    assert names["DB subnet group"].value == "fintech-db"
    assert names["deletion protection"].value is True
    assert set(src.settings_frame().columns) == {"setting", "level", "source value", "carried by"}


def test_plan_carries_settings_and_restore_keeps_them(rds, execute):
    src = r.describe_cluster("fintech-cluster", rds=rds)
    target = uid("fc-unit")
    plan = r.plan_cluster_restore(
        src, target=target, restore_time=None, instance_class="db.r6g.xlarge"
    )
    restore_p, inst_p = (dict(c.params) for c in plan.changes)
    assert (
        restore_p["UseLatestRestorableTime"] is True
        and restore_p["DBSubnetGroupName"] == "fintech-db"
    )
    assert (
        restore_p["DeletionProtection"] is True
        and restore_p["EnableIAMDatabaseAuthentication"] is True
    )
    assert {"Key": "team", "Value": "payments"} in restore_p["Tags"]
    assert inst_p["DBInstanceClass"] == "db.r6g.xlarge" and inst_p["DBClusterIdentifier"] == target
    before = rds.describe_db_clusters(DBClusterIdentifier="fintech-cluster")["DBClusters"][0]
    try:
        for change in plan.changes:
            out = execute(change)
            assert out.status is ChangeStatus.APPLIED
        restored = r.describe_cluster(target, rds=rds)
        assert restored.status == "available" and restored.writer_instance == r.writer_instance_id(
            target
        )
        diffs = [(c, a, b) for c, a, b in r.compare_settings(src, restored) if a != b]
        assert diffs == [("instance: instance class", "db.r6g.large", "db.r6g.xlarge")]
    finally:
        for change in r.plan_delete(r.AURORA, target, deletion_protection=True).changes:
            execute(change)
    assert not r.cluster_exists(target, rds=rds)
    after = rds.describe_db_clusters(DBClusterIdentifier="fintech-cluster")["DBClusters"][0]
    for k in ("Status", "DeletionProtection", "DBClusterMembers", "TagList", "Endpoint"):
        assert before[k] == after[k]  # the source is untouched


def test_rds_instance_restore_to_a_time(rds, execute):
    src_id, target = uid("bank-db"), uid("bank-db-pit")
    rds.create_db_instance(
        DBInstanceIdentifier=src_id,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="bank",
        MasterUserPassword="sandbox-only-pw1",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
        DBSubnetGroupName="fintech-db",
        Tags=[{"Key": "team", "Value": "bank"}],
    )
    try:
        src = r.describe_instance(src_id, rds=rds)
        assert src.kind == r.RDS and src.earliest_restorable is not None
        when = dt.datetime.now(dt.UTC)
        plan = r.plan_instance_restore(src, target=target, restore_time=when)
        params = dict(plan.changes[0].params)
        assert params["RestoreTime"].endswith("Z") and params["DBSubnetGroupName"] == "fintech-db"
        execute(plan.changes[0])
        restored = r.describe_instance(target, rds=rds)
        assert restored.status == "available"
        assert [c for c, a, b in r.compare_settings(src, restored) if a != b] == []
        for change in r.plan_delete(r.RDS, target, deletion_protection=False).changes:
            execute(change)
        assert not r.instance_exists(target, rds=rds)
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=src_id, SkipFinalSnapshot=True)


def test_missing_source_is_not_found(rds):
    with pytest.raises(NotFoundError, match="not found"):
        r.describe_cluster("no-such-cluster", rds=rds)
    with pytest.raises(NotFoundError, match="not found"):
        r.describe_instance("no-such-instance", rds=rds)
    assert not r.cluster_exists("no-such-cluster", rds=rds)
    assert not r.instance_exists("no-such-instance", rds=rds)


def test_delete_handlers_never_touch_a_protected_identifier(rds):
    plan = r.plan_delete(r.AURORA, "fintech-cluster", deletion_protection=True)
    protected = executors.bind(rds=rds, protected=frozenset({"fintech-cluster"}))
    for change in (plan.changes[0], plan.changes[-1]):  # modify and delete the cluster
        with pytest.raises(PreflightError, match="Refusing"):
            protected(change)
    assert r.cluster_exists("fintech-cluster", rds=rds)


def test_waiter_is_bounded_and_says_how_to_resume(rds):
    with pytest.raises(RunbookTimeoutError) as err:
        r.wait_for(
            "cluster", "fintech-cluster", rds=rds, want="backing-up", timeout_s=0.5, poll_s=0.1
        )
    msg = str(err.value)
    assert "fintech-cluster" in msg and "aws rds wait db-cluster-available" in msg
    assert "wait_timeout_minutes" in msg
