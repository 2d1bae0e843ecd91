"""scale end to end on the sandbox: a dry run that changes nothing, an approved pre-warm (the
throttled table to on-demand) and its revert from the bundle, bad input refused with a bundle,
and an HPA change that the real kubectl agrees with. The AWS CLI checks every AWS change."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess

import pytest

import opslib
from opslib.core.errors import BadInputError
from opslib.runbooks import scale

pytestmark = pytest.mark.timeout(420)
TABLE = "fintech-rate-limits"
HPA = "fintech-banking/auth-service"
QUIET = {"watch_minutes": 0}


@pytest.fixture(scope="module", autouse=True)
def capacity_put_back(sandbox):
    """The tests here change the scenario's table and HPA: reseed them at the end."""
    from opslib import sandbox as sb

    assert sb.seed(["capacity"]) == {"capacity": ""}
    yield
    sb.seed(["capacity"])


def aws(*args: str) -> dict:
    out = subprocess.run(
        ["aws", *args, "--output", "json", "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def table_capacity() -> tuple[str, int, int]:
    t = aws("dynamodb", "describe-table", "--table-name", TABLE)["Table"]
    mode = (t.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    pt = t["ProvisionedThroughput"]
    return mode, pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]


def test_dry_run_shows_the_throttles_and_changes_nothing(evidence_dir):
    r = opslib.run("scale", QUIET, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert (res["target_kind"], res["target"], res["applied"]) == ("dynamodb-table", TABLE, False)
    assert res["before"] == {"billing_mode": "PROVISIONED", "read_capacity": 5, "write_capacity": 5}
    assert res["throttled_before"] > 0 and res["throttled_after"] is None
    assert res["revert_plan"] is None
    assert r.record["changes"] == []
    assert [c["action"] for c in r.record["plans"][0]["changes"]] == ["dynamodb:UpdateTable"]
    assert table_capacity() == ("PROVISIONED", 5, 5)


def test_prewarm_records_its_revert_and_the_revert_applies_exactly_that(evidence_dir, tmp_path):
    r = opslib.run(
        "scale",
        {**QUIET, "dry_run": False, "approved_by": "e2e"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["applied"] is True and res["live"] is True
    assert res["after"]["billing_mode"] == "PAY_PER_REQUEST"
    assert table_capacity()[0] == "PAY_PER_REQUEST"  # the AWS CLI agrees with the record
    assert res["throttled_before"] > 0 and res["throttled_after"] == 0
    rp = res["revert_plan"]
    assert rp["set"] == {"billing_mode": "PROVISIONED", "read_capacity": 5, "write_capacity": 5}
    assert [c["params"]["billing_mode"] for c in rp["changes"]] == ["PROVISIONED"]
    due = dt.datetime.fromisoformat(rp["revert_at"]) - dt.datetime.fromisoformat(
        r.record["started"].replace("Z", "+00:00")
    )
    assert (
        dt.timedelta(hours=5, minutes=55) < due < dt.timedelta(hours=6, minutes=5)
    )  # the preset's 6 h

    # a bundle that does not verify, or names another target, is refused before anything
    tampered = tmp_path / "tampered"
    shutil.copytree(r.bundle, tampered)
    rec = json.loads((tampered / "record.json").read_text())
    rec["results"]["revert_plan"]["changes"][0]["params"]["read_capacity"] = 500
    (tampered / "record.json").write_text(json.dumps(rec))
    with pytest.raises(BadInputError, match="does not verify"):
        scale.inputs(revert_bundle=str(tampered))
    with pytest.raises(BadInputError, match=f"belongs to dynamodb-table {TABLE}"):
        scale.inputs("dynamodb-table", "fintech-sessions", revert_bundle=str(r.bundle))

    back = opslib.run(
        "scale",
        {
            **QUIET,
            "billing_mode": "",
            "revert_after_hours": 0,
            "revert_bundle": str(r.bundle),
            "dry_run": False,
            "approved_by": "e2e",
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (back.status, back.exit_code) == ("succeeded", 0), back.record.get("error")
    bres = back.record["results"]
    assert bres["applied"] is True and bres["reverted_from"] == str(r.bundle)
    assert bres["plan_hash"] == rp["digest"]  # exactly the recorded plan
    assert bres["after"] == rp["set"]
    assert table_capacity() == ("PROVISIONED", 5, 5)


def test_bad_input_is_refused_with_a_bundle(evidence_dir):
    r = opslib.run(
        "scale",
        {
            "target_kind": "ecs-service",
            "target": "fintech-cluster/fintech-api-service",
            "billing_mode": "",
            "revert_after_hours": 0,
            "desired": 3,
            "delta": 1,
            "dry_run": False,
            "approved_by": "e2e",
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("refused", 2)
    assert "give one of them, not both" in json.dumps(r.record.get("error"))
    assert r.record["changes"] == []


def kubectl(sandbox, *args: str) -> str:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        ["kubectl", "--kubeconfig", sandbox.kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_hpa_minimum_raised_and_kubectl_agrees(sandbox, evidence_dir):
    r = opslib.run(
        "scale",
        {
            **QUIET,
            "target_kind": "k8s-hpa",
            "target": HPA,
            "billing_mode": "",
            "min_capacity": 4,
            "revert_after_hours": 2,
            "dry_run": False,
            "approved_by": "e2e",
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["before"] == {"min": 2, "max": 6} and res["after"] == {"min": 4, "max": 6}
    assert res["revert_plan"]["set"] == {"min": 2}
    got = kubectl(
        sandbox,
        "-n",
        "fintech-banking",
        "get",
        "hpa",
        "auth-service",
        "-o",
        "jsonpath={.spec.minReplicas}/{.spec.maxReplicas}",
    )
    assert got == "4/6"
    assert "auth-service" in kubectl(sandbox, "-n", "fintech-banking", "get", "hpa")
