"""backup end to end: notebooks/backup.ipynb through opslib.run on the sandbox.

The audit reads the seeded posture (fintech-cluster ok, fintech-banking-db with 7-day
retention and a public snapshot, BudgetBuddy-Users with PITR off); an approved create takes a
tagged snapshot/backup of each named resource and a verified PostgreSQL base backup; bad input
leaves a refused bundle with nothing created. The AWS CLI checks the snapshots.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

import opslib
from opslib.evidence import verify

pytestmark = pytest.mark.timeout(600)

RUNBOOK = "backup"


@pytest.fixture
def aws(sandbox):
    from opslib.clients import aws_client

    return {"rds": aws_client("rds"), "dynamodb": aws_client("dynamodb")}


@pytest.fixture
def backup_dir(sandbox):
    """A path for a new base backup, in a directory the PostgreSQL OS user owns."""
    from opslib.sandbox.context import ScenarioContext

    ctx = ScenarioContext(sandbox)
    root = ctx.scenario_dir("backup") / f"nb-{uuid.uuid4().hex[:6]}"
    root.mkdir(mode=0o755)
    ctx.chown_to_pg(root)
    yield root / "base"
    import shutil

    shutil.rmtree(root, ignore_errors=True)


def run(params: dict, evidence_dir: Path):
    return opslib.run(RUNBOOK, params, sandbox=True, evidence_dir=evidence_dir, timeout=300)


def test_audit_flags_retention_pitr_off_and_the_public_snapshot(evidence_dir):
    r = run({}, evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["mode"] == "audit" and res["verdict"] == "critical" and res["created"] == []
    rows = {a["resource"]: a for a in res["audit"]}
    assert rows["fintech-cluster"]["ok"] is True and rows["fintech-cluster"]["retention_days"] == 35
    assert rows["fintech-banking-db"]["ok"] is False
    assert rows["fintech-banking-db"]["retention_days"] == 7
    assert rows["fintech-banking-db"]["public_snapshots"] == ["fintech-banking-db-vendor-share"]
    assert rows["fintech-sessions"]["ok"] is True and rows["fintech-sessions"]["pitr"] is True
    assert rows["BudgetBuddy-Users"]["ok"] is False and rows["BudgetBuddy-Users"]["pitr"] is False
    # worst first: the public snapshot and the table with no PITR and no backup are critical
    assert {a["resource"] for a in res["audit"][:2]} == {"fintech-banking-db", "BudgetBuddy-Users"}
    assert [a["worst"] for a in res["audit"][:2]] == ["critical", "critical"]
    pg = next(a for a in res["audit"] if a["kind"] == "postgres")
    assert pg["pitr"] is True  # WAL archiving works on the sandbox cluster
    assert r.record["changes"] == [] and r.record["approvals"] == []
    html = (Path(r.bundle) / f"{RUNBOOK}.html").read_text()
    assert "fintech-banking-db-vendor-share" in html and "CRITICAL" in html
    assert verify(r.bundle).ok


def test_create_dry_run_plans_unique_names_and_creates_nothing(aws, evidence_dir):
    before = {
        s["DBClusterSnapshotIdentifier"]
        for s in aws["rds"].describe_db_cluster_snapshots()["DBClusterSnapshots"]
    }
    r = run(
        {"mode": "create", "rds_instances": "", "dynamodb_tables": "", "pg_dsn": ""}, evidence_dir
    )
    assert r.status == "succeeded", r.record.get("error")
    res = r.record["results"]
    assert res["verdict"] == "dry_run"
    assert [c["status"] for c in res["created"]] == ["dry_run"]
    assert res["created"][0]["snapshot_id"].startswith("fintech-cluster-pre-deploy-")
    after = {
        s["DBClusterSnapshotIdentifier"]
        for s in aws["rds"].describe_db_cluster_snapshots()["DBClusterSnapshots"]
    }
    assert after == before and r.record["changes"] == []


def test_approved_create_takes_tagged_snapshots_and_a_verified_base_backup(
    aws, backup_dir, evidence_dir
):
    label = f"nb{uuid.uuid4().hex[:6]}"
    r = run(
        {
            "mode": "create",
            "label": label,
            "pg_backup_dir": str(backup_dir),
            "dry_run": False,
            "approved_by": "alice",
            "change_ticket": "CHG-1234",
        },
        evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["verdict"] == "created"
    created = {c["resource"]: c for c in res["created"]}
    assert set(created) == {
        "fintech-cluster", "fintech-banking-db", "fintech-sessions", "BudgetBuddy-Users",
    } | {k for k in created if k.startswith("postgres ")}  # fmt: skip
    pg = next(c for c in res["created"] if c["kind"] == "postgres")
    assert pg["status"] == "verified" and pg["size_bytes"] > 1_000_000
    assert sorted(pg["files"]) == ["backup_manifest", "base.tar", "pg_wal.tar"]
    cl = created["fintech-cluster"]
    assert cl["status"] == "available" and cl["snapshot_id"].startswith(f"fintech-cluster-{label}-")
    assert created["fintech-sessions"]["status"] == "AVAILABLE"
    assert created["fintech-sessions"]["arn"].startswith("arn:aws:dynamodb:")
    # the AWS CLI agrees: the cluster snapshot exists, tagged with the ticket and this run's id
    arn = cl["arn"]
    out = subprocess.run(
        ["aws", "rds", "list-tags-for-resource", "--resource-name", arn, "--output", "json",
         "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    tags = {t["Key"]: t["Value"] for t in json.loads(out.stdout)["TagList"]}
    assert tags == {"opslib:change_ticket": "CHG-1234", "opslib:run_id": res["run_id"]}
    assert r.record["approvals"][0]["approver"] == "alice"
    assert [c["status"] for c in r.record["changes"]] == ["applied"] * 5
    assert verify(r.bundle).ok
    for c in res["created"]:
        if c["kind"] == "aurora":
            aws["rds"].delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=c["snapshot_id"])
        elif c["kind"] == "rds":
            aws["rds"].delete_db_snapshot(DBSnapshotIdentifier=c["snapshot_id"])
        elif c["kind"] == "dynamodb":
            aws["dynamodb"].delete_backup(BackupArn=c["arn"])


BAD = {
    "unknown id": ({"mode": "create", "rds_instances": "no-such-db", "pg_dsn": ""}, "Unknown ids"),
    "bad mode": ({"mode": "backup-everything"}, "mode"),
    "too many": ({"mode": "create", "max_resources": 2, "pg_dsn": ""}, "max_resources=2"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_nothing_is_created(case, aws, evidence_dir):
    params, message = BAD[case]
    before = len(aws["rds"].describe_db_snapshots()["DBSnapshots"])
    r = run({**params, "dry_run": False, "approved_by": "alice"}, evidence_dir)
    assert (r.status, r.exit_code) == ("refused", 2), r.record.get("error")
    assert message in json.dumps(r.record["error"])
    assert r.record["changes"] == [] and r.record["approvals"] == []
    assert len(aws["rds"].describe_db_snapshots()["DBSnapshots"]) == before


def test_a_password_in_pg_dsn_is_refused_before_the_run(evidence_dir):
    from opslib.core.errors import SecretInParameterError

    with pytest.raises(SecretInParameterError, match="pg_dsn"):
        run({"pg_dsn": "host=127.0.0.1 password=hunter2"}, evidence_dir)
    assert not any(
        "hunter2" in p.read_text(errors="ignore") for p in evidence_dir.rglob("*") if p.is_file()
    )


def test_a_backup_dir_that_is_not_empty_is_refused(backup_dir, evidence_dir):
    backup_dir.mkdir()
    (backup_dir / "base.tar").write_bytes(b"old")
    r = run(
        {"mode": "create", "aurora_clusters": "", "rds_instances": "", "dynamodb_tables": "",
         "pg_backup_dir": str(backup_dir), "dry_run": False, "approved_by": "alice"},
        evidence_dir,
    )  # fmt: skip
    assert (r.status, r.exit_code) == ("refused", 2)
    assert "not empty" in json.dumps(r.record["error"])
    assert (backup_dir / "base.tar").read_bytes() == b"old"
