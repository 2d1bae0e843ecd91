"""pitr-restore end to end: notebooks/pitr_restore.ipynb through opslib.run on the sandbox.

The PostgreSQL restore is a real PITR (base backup + archived WAL, a new server); Aurora and
DynamoDB restores go to new targets on the sandbox AWS server. The source is compared before
and after every run; restored servers are stopped at the end of each test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

import opslib
from opslib.aws import rds as r_
from opslib.core import executors
from opslib.evidence import verify
from opslib.pg import pitr

pytestmark = pytest.mark.timeout(300)

RUNBOOK = "pitr-restore"


def uid() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def pg_params(sandbox):
    """The seeded presets with a fresh pg_target_dir; any restored server there is stopped after."""
    from opslib import sandbox as sb

    p = dict(sb.presets(RUNBOOK))
    assert p.get("engine") == "postgres", f"pitr scenario not seeded: {sandbox.scenario_errors}"
    p["pg_target_dir"] = f"{p['pg_target_dir']}-nb-{uid()}"
    yield p
    pitr.remove_target(p["pg_target_dir"])


@pytest.fixture
def aws(sandbox):
    from opslib.clients import aws_client

    return {s: aws_client(s) for s in ("rds", "dynamodb", "secretsmanager", "route53")}


def cli_cname(zone_id: str, fqdn: str) -> str:
    """The CNAME's value as the AWS CLI reads it from the sandbox (a separate boto3 client when
    ``aws`` is not on PATH)."""
    if shutil.which("aws"):
        out = subprocess.run(
            ["aws", "route53", "list-resource-record-sets", "--hosted-zone-id", zone_id],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**os.environ, "AWS_PAGER": ""},
        )
        sets = json.loads(out.stdout)["ResourceRecordSets"]
    else:  # pragma: no cover - depends on the machine
        from opslib.clients import aws_client

        sets = aws_client("route53").list_resource_record_sets(HostedZoneId=zone_id)[
            "ResourceRecordSets"
        ]
    rs = next(s for s in sets if s["Name"] == fqdn and s["Type"] == "CNAME")
    return rs["ResourceRecords"][0]["Value"]


def source_snapshot(conninfo: str) -> dict:
    """Row counts and a content hash of every user table: to prove the source was not modified."""
    with psycopg.connect(conninfo) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = 'public' and c.relkind = 'r' order by 1"
            ).fetchall()
        ]
        return {
            t: conn.execute(
                f"select count(*), md5(coalesce(string_agg(x::text, ',' order by x::text), '')) from {t} x"
            ).fetchone()  # noqa: S608
            for t in tables
        }


def run(params: dict, tmp_path: Path, **kw):
    return opslib.run(RUNBOOK, params, evidence_dir=tmp_path / "evidence", timeout=240, **kw)


def results(r) -> dict:
    return (r.record or {}).get("results", {})


def test_postgres_restore_before_the_delete_brings_rows_back(pg_params, tmp_path):
    before = source_snapshot(pg_params["source"])
    r = run(
        {**pg_params, "dry_run": False, "approved_by": "alice", "change_ticket": "INC-42"}, tmp_path
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = results(r)
    assert res["status"] == "validated" and res["engine"] == "postgres"
    assert res["target"] == pg_params["pg_target_dir"]
    assert res["restore_time"] == pg_params["restore_time"]  # resolved, UTC, full precision
    val = {v["check"]: v for v in res["validation"]}
    assert (val["public.payments"]["source"], val["public.payments"]["target"]) == (0, 500)
    assert val["public.payments"]["match"] is False
    assert val["public.accounts"]["match"] is True
    assert 0 < res["time_to_restore_seconds"] < 240
    assert r.record["approvals"][0]["approver"] == "alice"
    assert [c["status"] for c in r.record["changes"]] == ["applied"] * 4
    assert verify(r.bundle).ok
    html = (Path(r.bundle) / f"{RUNBOOK}.html").read_text()
    assert "Time to restore" in html and "public.payments" in html
    # the restored server holds the rows the DELETE took; the source is exactly as before
    port = int(res["endpoint"].rsplit(":", 1)[1])
    with psycopg.connect(f"host=127.0.0.1 port={port} user=opslib dbname=payments_db") as conn:
        assert conn.execute("select count(*), sum(amount_cents) from payments").fetchone() == (
            500,
            100 * 500 * 501 // 2,
        )
    assert source_snapshot(pg_params["source"]) == before


def test_postgres_dry_run_creates_nothing(pg_params, tmp_path):
    r = run(pg_params, tmp_path)
    assert r.status == "succeeded", r.record.get("error")
    res = results(r)
    assert res["status"] == "dry_run" and res["time_to_restore_seconds"] is None
    assert all(v["target"] == "(not restored)" for v in res["validation"])
    assert r.record["changes"] == [] and r.record["approvals"] == []
    assert not Path(pg_params["pg_target_dir"]).exists()


def test_aurora_drill_restores_validates_times_and_deletes(aws, tmp_path):
    target = f"fintech-drill-{uid()}"
    src_before = aws["rds"].describe_db_clusters(DBClusterIdentifier="fintech-cluster")[
        "DBClusters"
    ][0]
    r = run(
        {
            "engine": "aurora",
            "source": "fintech-cluster",
            "target": target,
            "drill": True,
            "dry_run": False,
            "approved_by": "dr-scheduler",
            "change_ticket": "DRILL-Q4",
            "rto_minutes": 60,
            "rpo_minutes": 15,
            "approve_drill_cleanup_by": "dr-lead",
        },
        tmp_path,
    )
    assert r.status == "succeeded", r.record.get("error")
    res = results(r)
    assert res["status"] == "validated_drill_cleaned" and res["drill"] is True
    assert res["time_to_restore_seconds"] > 0
    # the deletion has its own approval, never the restore's
    assert [a["approver"] for a in r.record["approvals"]] == ["dr-scheduler", "dr-lead"]
    assert res["drill_cleanup_status"] == "applied"
    assert res["rto_met"] is True and res["rto_verdict"].startswith("RTO 60 min met")
    # moto reports LatestRestorableTime = now: the lag is ~0, the RPO met
    assert res["rpo_met"] is True and res["rpo_verdict"].startswith("RPO 15 min met")
    assert not any(w.startswith("backup retention") for w in res["preflight_warnings"])  # 35 days
    checks = {v["check"]: v for v in res["validation"]}
    for name in (
        "cluster: DB subnet group",
        "cluster: VPC security groups",
        "cluster: tags",
        "cluster: deletion protection",
        "instance: instance parameter group",
        "status",
    ):
        assert checks[name]["match"] is True, checks[name]
    actions = [c["action"] for c in r.record["changes"]]
    assert actions == [
        "rds:RestoreDBClusterToPointInTime",
        "rds:CreateDBInstance",
        "rds:ModifyDBCluster",
        "rds:DeleteDBInstance",
        "rds:DeleteDBCluster",
    ]
    assert not r_.cluster_exists(target, rds=aws["rds"])
    src_after = aws["rds"].describe_db_clusters(DBClusterIdentifier="fintech-cluster")[
        "DBClusters"
    ][0]
    for k in ("Status", "DeletionProtection", "DBClusterMembers", "TagList", "Endpoint"):
        assert src_before[k] == src_after[k]


def test_aurora_restore_with_secret_cutover_keeps_previous_version(aws, tmp_path):
    sm, rds = aws["secretsmanager"], aws["rds"]
    target = f"fintech-rec-{uid()}"
    old = sm.get_secret_value(SecretId="fintech/aurora")
    r53 = aws["route53"]
    zname = f"z{uid()}.example.com"
    zid = r53.create_hosted_zone(Name=zname, CallerReference=uid())["HostedZone"]["Id"]
    zid = zid.rsplit("/", 1)[-1]
    old_cname = {
        "Name": f"db.{zname}.",
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": "fintech-cluster.cluster-old.rds.amazonaws.com"}],
    }
    r53.change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": old_cname}]},
    )
    try:
        r = run(
            {
                "engine": "aurora",
                "source": "fintech-cluster",
                "target": target,
                "instance_class": "db.r6g.xlarge",
                "cutover_secret": "fintech/aurora",
                "dry_run": False,
                "approved_by": "alice",
                "cutover_approved_by": "bob",
                "route53_record": f"{zid}/db.{zname}",
                "route53_approved_by": "carol",
            },
            tmp_path,
        )
        assert r.status == "succeeded", r.record.get("error")
        res = results(r)
        assert res["status"] == "validated" and res["endpoint"].startswith(f"{target}.cluster-")
        approvers = [a["approver"] for a in r.record["approvals"]]
        assert approvers == ["alice", "bob", "carol"]  # cutover and DNS: their own approvals
        assert (res["cutover_status"], res["route53_status"]) == ("applied", "applied")
        host = res["endpoint"].rsplit(":", 1)[0]
        # the old record is in the evidence for the way back; the AWS CLI sees the new one
        assert res["route53_previous"] == old_cname
        assert "fintech-cluster.cluster-old" in res["route53_rollback"]
        assert cli_cname(zid, f"db.{zname}.") == host
        cur = json.loads(sm.get_secret_value(SecretId="fintech/aurora")["SecretString"])
        prev = sm.get_secret_value(SecretId="fintech/aurora", VersionStage="AWSPREVIOUS")
        assert cur["host"] == res["endpoint"].rsplit(":", 1)[0]
        assert prev["VersionId"] == old["VersionId"] and prev["SecretString"] == old["SecretString"]
        inst = rds.describe_db_instances(DBInstanceIdentifier=f"{target}-1")["DBInstances"][0]
        assert inst["DBInstanceClass"] == "db.r6g.xlarge"
    finally:
        sm.put_secret_value(SecretId="fintech/aurora", SecretString=old["SecretString"])
        if r_.cluster_exists(target, rds=rds):
            execute = executors.bind(rds=rds, timeout_s=30, poll_s=0.2)
            for c in r_.plan_delete(r_.AURORA, target, deletion_protection=True).changes:
                execute(c)


def test_dynamodb_restore_to_new_table(aws, tmp_path):
    ddb = aws["dynamodb"]
    target = f"fintech-sessions-rec-{uid()}"
    try:
        r = run(
            {
                "engine": "dynamodb",
                "source": "fintech-sessions",
                "target": target,
                "dry_run": False,
                "approved_by": "alice",
            },
            tmp_path,
        )
        assert r.status == "succeeded", r.record.get("error")
        res = results(r)
        assert res["status"] == "validated"
        assert all(v["match"] for v in res["validation"]), res["validation"]
        counts = {v["check"]: v for v in res["validation"]}["item count (scan)"]
        assert counts["source"] == counts["target"] == 40
        assert (
            ddb.describe_continuous_backups(TableName=target)["ContinuousBackupsDescription"][
                "PointInTimeRecoveryDescription"
            ]["PointInTimeRecoveryStatus"]
            == "ENABLED"
        )
        assert "Sample of restored items" in (Path(r.bundle) / f"{RUNBOOK}.html").read_text()
    finally:
        ddb.delete_table(TableName=target)


BAD = {
    "unknown engine": ({"engine": "oracle", "source": "x"}, "not supported"),
    "malformed time": (
        {"engine": "aurora", "source": "fintech-cluster", "restore_time": "last tuesday"},
        "ISO 8601",
    ),
    "future time": (
        {"engine": "aurora", "source": "fintech-cluster", "restore_time": "2999-01-01T00:00:00Z"},
        "in the future",
    ),
    # epoch seconds, passed as a number (as papermill -p and YAML do): 2001-01-01T00:00:00Z
    "outside window": (
        {"engine": "aurora", "source": "fintech-cluster", "restore_time": 978307200},
        "restore_time 2001-01-01T00:00:00Z is before the earliest restorable",
    ),
    "missing source": ({"engine": "aurora", "source": "no-such-cluster"}, "not found"),
    "target exists": ({"engine": "dynamodb", "source": "fintech-sessions"}, "already exists"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_refused_before_anything_is_created(case, aws, tmp_path):
    params, message = BAD[case]
    params = dict(params)
    rds, ddb = aws["rds"], aws["dynamodb"]
    existing = ""
    if case == "target exists":
        existing = f"already-{uid()}"
        ddb.create_table(
            TableName=existing,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        params["target"] = existing
    else:
        params["target"] = f"never-{uid()}"
    clusters = {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}
    tables = set(ddb.list_tables()["TableNames"])
    try:
        r = run({**params, "dry_run": False, "approved_by": "alice"}, tmp_path)
        assert (r.status, r.exit_code) == ("refused", 2), r.record.get("error")
        assert message in json.dumps(r.record["error"])
        assert r.record["changes"] == [] and r.record["approvals"] == []
        assert {
            c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]
        } == clusters
        assert set(ddb.list_tables()["TableNames"]) == tables
    finally:
        if existing:
            ddb.delete_table(TableName=existing)


def test_existing_pg_target_dir_is_refused(pg_params, tmp_path):
    existing = str(Path(pg_params["pg_target_dir"]).parent)
    listing = sorted(p.name for p in Path(existing).iterdir())
    r = run(
        {**pg_params, "pg_target_dir": existing, "dry_run": False, "approved_by": "alice"}, tmp_path
    )
    assert (r.status, r.exit_code) == ("refused", 2)
    assert "already exists" in json.dumps(r.record["error"])
    assert sorted(p.name for p in Path(existing).iterdir()) == listing


def test_failed_restore_leaves_a_bundle_with_the_error(pg_params, tmp_path):
    """The archive lost the WAL after the base backup: the restored server stops during recovery."""
    start = (
        pitr.inspect_base_backup(pg_params["pg_base_backup"])
        .start_wal.split("file ")[-1]
        .rstrip(")")
    )
    archive = Path(pg_params["pg_target_dir"] + "-archive")
    archive.mkdir()
    try:
        for seg in Path(pg_params["pg_wal_archive"]).iterdir():
            if pitr._WAL_SEGMENT.match(seg.name) and seg.name < start:
                shutil.copy(seg, archive / seg.name)  # copies get a new mtime: inside the window
        os.chmod(archive, 0o755)
        if os.geteuid() == 0:
            for p in [archive, *archive.iterdir()]:
                shutil.chown(p, "postgres")
        r = run(
            {**pg_params, "pg_wal_archive": str(archive), "dry_run": False, "approved_by": "alice"},
            tmp_path,
        )
        assert (r.status, r.exit_code) == ("failed", 1)
        err = json.dumps(r.record["error"])
        assert (
            "PitrRecoveryError" in err
            and "stopped during recovery" in err
            and "recovery target" in err
        )
        assert [c["status"] for c in r.record["changes"]] == [
            "applied",
            "applied",
            "failed",
            "skipped",
        ] or [c["status"] for c in r.record["changes"]] == [
            "applied",
            "applied",
            "applied",
            "failed",
        ]
        assert verify(r.bundle).ok
        assert not pitr._alive(pitr.postmaster_pid(pg_params["pg_target_dir"]))
    finally:
        shutil.rmtree(archive, ignore_errors=True)


def test_drill_from_an_rds_snapshot_checks_the_rto_and_cleans_up(aws, tmp_path):
    """RDS rather than Aurora: moto 5.2.5 cannot restore a snapshot of a cluster made with
    ManageMasterUserPassword, as the seeded fintech-cluster is (the unit tests use their own)."""
    rds = aws["rds"]
    snap = f"fintech-banking-db-nb-{uid()}"
    rds.create_db_snapshot(DBInstanceIdentifier="fintech-banking-db", DBSnapshotIdentifier=snap)
    target = f"banking-snapdrill-{uid()}"
    try:
        r = run(
            {
                "engine": "rds",
                "from_snapshot": snap,
                "target": target,
                "target_az": "us-east-1a",
                "drill": True,
                "rto_minutes": 60,
                "dry_run": False,
                "approved_by": "dr-scheduler",
            },
            tmp_path,
        )
        assert r.status == "succeeded", r.record.get("error")
        res = results(r)
        # the restore's approved_by does not approve the deletion (approve_drill_cleanup_by does)
        assert res["status"] == "validated" and res["source_kind"] == "snapshot"
        assert res["drill_cleanup_status"] == "not_approved"
        assert [a["approver"] for a in r.record["approvals"]] == ["dr-scheduler"]
        assert res["from_snapshot"] == snap and res["rto_met"] is True
        assert res["rto_verdict"].startswith("RTO 60 min met")
        actions = [c["action"] for c in r.record["changes"]]
        assert actions[0] == "rds:RestoreDBInstanceFromDBSnapshot"
        assert "rds:DeleteDBInstance" not in actions
        assert r_.instance_exists(target, rds=rds)
        html = (Path(r.bundle) / f"{RUNBOOK}.html").read_text()
        assert "RTO 60 min met" in html and "approve_drill_cleanup_by" in html
    finally:
        rds.delete_db_snapshot(DBSnapshotIdentifier=snap)
        if r_.instance_exists(target, rds=rds):
            execute = executors.bind(rds=rds, timeout_s=30, poll_s=0.2)
            for c in r_.plan_delete(r_.RDS, target, deletion_protection=True).changes:
                execute(c)


def test_restore_time_with_a_snapshot_is_refused(tmp_path):
    r = run(
        {
            "engine": "rds",
            "from_snapshot": "any-snapshot",
            "restore_time": "2024-01-01T00:00:00Z",
            "target": f"never-{uid()}",
            "dry_run": False,
            "approved_by": "alice",
        },
        tmp_path,
    )
    assert (r.status, r.exit_code) == ("refused", 2)
    assert "restores to the moment it was taken" in json.dumps(r.record["error"])
    assert r.record["changes"] == []
