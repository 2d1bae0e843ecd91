"""opslib.aws.snapshots against the sandbox's AWS server: the audit of each resource, unique
tagged snapshots and backups with bounded waits; the AWS CLI checks what was created."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid

import pytest

from opslib.aws import snapshots as s
from opslib.core import executors
from opslib.core.errors import NotFoundError
from opslib.core.findings import Severity
from opslib.core.plans import apply, approve

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def aws(sandbox):
    from opslib.clients import aws_client

    return {"rds": aws_client("rds"), "dynamodb": aws_client("dynamodb")}


def cli(*args: str) -> dict:
    out = subprocess.run(
        ["aws", *args, "--output", "json", "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout or "{}")


def titles(a: s.BackupAudit) -> list[str]:
    return [f.title for f in a.findings]


def test_rds_instance_with_7_day_retention_and_a_public_snapshot_is_critical(aws):
    a = s.audit_instance("fintech-banking-db", rds=aws["rds"])
    assert a.retention_days == 7 and a.pitr and not a.ok
    assert a.worst is Severity.CRITICAL
    assert a.public_snapshots == ("fintech-banking-db-vendor-share",)
    assert any("retention 7 days < 35" in t for t in titles(a))
    crit = [f for f in a.findings if f.severity is Severity.CRITICAL]
    assert "values-to-remove all" in crit[0].next_action
    rec = a.record()
    assert set(rec) >= {"resource", "kind", "retention_days", "pitr", "latest_restorable",
                        "newest_snapshot_age_hours", "ok"}  # fmt: skip


def test_aurora_cluster_with_35_days_meets_the_policy(aws):
    a = s.audit_cluster("fintech-cluster", rds=aws["rds"])
    assert a.retention_days == 35 and a.encrypted and a.deletion_protection
    assert a.ok, titles(a)
    assert a.newest_automated_age_hours is not None


def test_snapshot_age_and_rpo_are_measured_against_the_clock(aws):
    """moto stamps snapshots with the call's time and has no clock to move, so the age rule is
    exercised with the audit's injected clock three days ahead."""
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    a = s.audit_cluster("fintech-cluster", rds=aws["rds"], now=later)
    assert a.newest_snapshot_age_hours >= 71
    assert any("newest snapshot" in t and "> 26 h" in t for t in titles(a))
    assert any("RPO 15 min" in t for t in titles(a))
    assert not a.ok


def test_dynamodb_pitr_on_is_ok_and_pitr_off_is_flagged(aws):
    on = s.audit_table("fintech-sessions", dynamodb=aws["dynamodb"])
    assert on.pitr and on.ok, titles(on)
    assert on.newest_manual_age_hours is not None and on.newest_manual_age_hours < 1
    off = s.audit_table("BudgetBuddy-Users", dynamodb=aws["dynamodb"])
    assert not off.pitr and not off.ok
    assert any("point-in-time recovery is off" in t for t in titles(off))


def test_unknown_ids_are_not_found(aws):
    with pytest.raises(NotFoundError, match="aurora_clusters"):
        s.audit_cluster("no-such-cluster", rds=aws["rds"])
    with pytest.raises(NotFoundError, match="rds_instances"):
        s.audit_instance("no-such-db", rds=aws["rds"])
    with pytest.raises(NotFoundError, match="dynamodb_tables"):
        s.audit_table("no-such-table", dynamodb=aws["dynamodb"])


def test_denied_describe_becomes_an_error_row_not_a_traceback(aws):
    import boto3

    from opslib.core.errors import AccessDeniedError
    from tests.unit.faultproxy import FaultProxy

    rds = aws["rds"]
    with FaultProxy(
        rds.meta.endpoint_url, errors={"DescribeDBSnapshotAttributes": "AccessDenied"}
    ) as proxy:
        denied = boto3.client(
            "rds",
            endpoint_url=proxy.url,
            region_name=rds.meta.region_name,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        with pytest.raises(AccessDeniedError, match="DescribeDBSnapshotAttributes"):
            s.audit_instance("fintech-banking-db", rds=denied)
    row = s.error_audit("fintech-banking-db", s.ResourceKind.RDS, AccessDeniedError("denied"))
    assert row.worst is Severity.ERROR and not row.ok


def test_names_are_unique_and_never_overwrite():
    now = dt.datetime(2026, 1, 22, 14, 5, tzinfo=dt.UTC)
    base = s.snapshot_name("fintech-cluster", "pre-deploy", now, kind=s.ResourceKind.AURORA)
    assert base == "fintech-cluster-pre-deploy-202601221405"
    assert s.unique_name(base, [base, base + "-2"]) == base + "-3"
    assert s.snapshot_name("BudgetBuddy-Users", "x", now, kind=s.ResourceKind.DYNAMODB) == (
        "BudgetBuddy-Users-x-202601221405"
    )
    assert s.snapshot_name("9db", "a_b", now, kind=s.ResourceKind.RDS) == "s-9db-a-b-202601221405"


def _apply(change, **clients):
    from opslib.core.plans import Plan

    plan = Plan(title="t", changes=(change,))
    approval = approve(plan, dry_run=False, approved_by="tester")
    return apply(
        plan, approval=approval, execute=executors.bind({"timeout_s": 30, "poll_s": 0.2}, **clients)
    )


def test_cluster_snapshot_is_tagged_waited_for_and_the_second_gets_a_suffix(aws):
    rds = aws["rds"]
    now = dt.datetime.now(dt.UTC)
    run = uuid.uuid4().hex[:8]
    kw = {"rds": rds, "label": f"t{run}", "now": now, "change_ticket": "CHG-7", "run_id": run}
    first = s.plan_cluster_snapshot("fintech-cluster", **kw)
    res = _apply(first, rds=rds)
    assert not res.failed, res.outcomes
    data = res.outcomes[0].data
    assert data["status"] == "available" and data["arn"].endswith(data["snapshot_id"])
    assert data["snapshot_id"] == f"fintech-cluster-t{run}-{now:%Y%m%d%H%M}"
    second = s.plan_cluster_snapshot("fintech-cluster", **kw)
    assert second.params["DBClusterSnapshotIdentifier"] == data["snapshot_id"] + "-2"
    # the AWS CLI sees the snapshot and its tags
    out = cli(
        "rds",
        "describe-db-cluster-snapshots",
        "--db-cluster-snapshot-identifier",
        data["snapshot_id"],
    )
    arn = out["DBClusterSnapshots"][0]["DBClusterSnapshotArn"]
    tags = {
        t["Key"]: t["Value"]
        for t in cli("rds", "list-tags-for-resource", "--resource-name", arn)["TagList"]
    }
    assert tags == {"opslib:change_ticket": "CHG-7", "opslib:run_id": run}
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=data["snapshot_id"])


def test_db_snapshot_and_table_backup(aws):
    rds, ddb = aws["rds"], aws["dynamodb"]
    now = dt.datetime.now(dt.UTC)
    run = uuid.uuid4().hex[:8]
    snap = s.plan_db_snapshot(
        "fintech-banking-db", rds=rds, label=f"t{run}", now=now, change_ticket="", run_id=run
    )
    res = _apply(snap, rds=rds)
    assert not res.failed, res.outcomes
    assert res.outcomes[0].data["size_bytes"] == 100 * 2**30  # moto: the source's allocated GiB
    backup = s.plan_table_backup("fintech-sessions", dynamodb=ddb, label=f"t{run}", now=now)
    res = _apply(backup, dynamodb=ddb)
    assert not res.failed, res.outcomes
    d = res.outcomes[0].data
    assert d["status"] == "AVAILABLE" and ":table/fintech-sessions/backup/" in d["arn"]
    desc = cli("dynamodb", "describe-backup", "--backup-arn", d["arn"])
    assert desc["BackupDescription"]["BackupDetails"]["BackupName"] == d["snapshot_id"]
    # the same name again (DynamoDB would accept a twin): the handler refuses
    res = _apply(backup, dynamodb=ddb)
    assert res.failed and "appeared after the plan" in res.outcomes[0].detail
    rds.delete_db_snapshot(DBSnapshotIdentifier=snap.params["DBSnapshotIdentifier"])
