"""db-failover end to end on the sandbox: the status dry run, an approved Aurora failover that
the AWS CLI confirms, and the refused failover of a single-AZ instance (a refused bundle).

The failover moves the scenario's own Aurora writer; the module reseeds the scenario at the end
so the writer is back on ``-1`` for whatever runs next.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import opslib
from opslib.evidence import verify
from opslib.sandbox.scenarios import failover as scenario

pytestmark = pytest.mark.timeout(300)
RUNBOOK = "db-failover"


@pytest.fixture(scope="module", autouse=True)
def seeded(sandbox):
    from opslib import sandbox as sb

    assert sb.seed(["failover"]) == {"failover": ""}
    yield
    sb.seed(["failover"])  # the writer back on -1, the instances fresh


def aws_cli(sandbox, *args: str) -> dict:
    """The real AWS CLI against the sandbox endpoint (a real client checks the emulator)."""
    exe = shutil.which("aws")
    assert exe, "the AWS CLI is needed to check the sandbox"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": sandbox.region,
    }
    out = subprocess.run(
        [exe, "--endpoint-url", sandbox.aws_endpoint, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def run(params: dict, evidence_dir):
    return opslib.run(RUNBOOK, params, sandbox=True, evidence_dir=evidence_dir, timeout=240)


def test_status_dry_run_shows_the_multi_az_instance_and_changes_nothing(sandbox, evidence_dir):
    r = run({}, evidence_dir)  # presets: the Multi-AZ instance and the sandbox's PostgreSQL
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["action"] == "status" and res["target"] == scenario.MULTI_AZ
    assert res["multi_az"] is True and res["applied"] is False
    assert res["writer_before"] == res["writer_after"] == f"{sandbox.region}a"
    assert res["downtime_seconds"] is None and res["status_after"] == "available"
    assert r.record["changes"] == [] and r.record["approvals"] == []
    html = (Path(r.bundle) / f"{RUNBOOK}.html").read_text()
    assert f"{sandbox.region}b" in html  # the standby AZ is shown
    assert "primary (accepts writes)" in html  # the PostgreSQL view
    assert verify(r.bundle).ok


def test_approved_aurora_failover_moves_the_writer_and_the_cli_agrees(sandbox, evidence_dir):
    r = run(
        {
            "db_instance": "",
            "db_cluster": scenario.CLUSTER,
            "action": "failover",
            "wait_timeout_minutes": 2,
            "dry_run": False,
            "approved_by": "e2e",
            "change_ticket": "INC-42",
        },
        evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["action"] == "failover" and res["applied"] is True
    assert (res["writer_before"], res["writer_after"]) == (scenario.WRITER, scenario.READER)
    assert res["writer_changed"] is True and res["status_after"] == "available"
    assert res["readers"] == [scenario.WRITER]
    assert 1 <= res["downtime_seconds"] <= 30  # the sandbox's failover takes a few seconds
    assert res["connections_accepted"] is True
    [change] = r.record["changes"]
    assert change["action"] == "rds:FailoverDBCluster" and change["status"] == "applied"
    assert r.record["approvals"][0]["approver"] == "e2e"
    assert r.record["approvals"][0]["plan_hash"] == res["plan_hash"]
    cl = aws_cli(
        sandbox, "rds", "describe-db-clusters", "--db-cluster-identifier", scenario.CLUSTER
    )
    [writer] = [
        m["DBInstanceIdentifier"]
        for m in cl["DBClusters"][0]["DBClusterMembers"]
        if m["IsClusterWriter"]
    ]
    assert writer == res["writer_after"]
    assert cl["DBClusters"][0]["Status"] == "available"
    events = aws_cli(
        sandbox, "rds", "describe-events", "--source-type", "db-cluster",
        "--source-identifier", scenario.CLUSTER,
    )  # fmt: skip
    assert f"Completed failover to DB instance: {scenario.READER}" in [
        e["Message"] for e in events["Events"]
    ]


def test_failover_of_a_single_az_instance_is_refused_with_what_to_do(sandbox, evidence_dir):
    r = run(
        {
            "db_instance": scenario.SINGLE_AZ,
            "action": "failover",
            "dry_run": False,
            "approved_by": "e2e",
        },
        evidence_dir,
    )
    assert (r.status, r.exit_code) == ("refused", 2)
    error = json.dumps(r.record.get("error"))
    assert "single-AZ" in error and "action=reboot" in error and "--multi-az" in error
    assert r.record["changes"] == [] and r.record["approvals"] == []
    assert verify(r.bundle).ok
    inst = aws_cli(
        sandbox, "rds", "describe-db-instances", "--db-instance-identifier", scenario.SINGLE_AZ
    )
    assert inst["DBInstances"][0]["DBInstanceStatus"] == "available"
