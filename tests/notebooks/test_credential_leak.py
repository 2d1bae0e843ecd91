"""credential-leak end to end: notebooks/credential_leak.ipynb through opslib.run on the sandbox.

The scenario seeds the IAM user ``ci-deploy`` with one access key (used from eu-west-1 at seed
time), the role ``ci-deploy-role``, and a secret the user may read. The AWS CLI checks what an
approved containment did (the key's status, the role's revoke policy). moto 5.2.5 does not
implement CloudTrail LookupEvents, so the runs show no events and a finding that says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import opslib

pytestmark = pytest.mark.timeout(600)

RUNBOOK = "credential-leak"
USER, ROLE = "ci-deploy", "ci-deploy-role"


@pytest.fixture(scope="module")
def leak(sandbox):
    from opslib import sandbox as sb

    errors = sb.seed(["leak"])
    assert errors.get("leak") == "", errors
    yield sb.presets(RUNBOOK)
    sb.seed(["leak"])


def run(params: dict, evidence_dir: Path):
    return opslib.run(RUNBOOK, params, sandbox=True, evidence_dir=evidence_dir, timeout=300)


def aws_cli(sandbox, *args: str) -> dict:
    """The real AWS CLI against the sandbox endpoint (the emulator is checked by a real client)."""
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


def key_status(sandbox, key_id: str) -> str:
    keys = aws_cli(sandbox, "iam", "list-access-keys", "--user-name", USER)["AccessKeyMetadata"]
    return next(k["Status"] for k in keys if k["AccessKeyId"] == key_id)


def bundle_text(bundle: str) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in Path(bundle).rglob("*") if p.is_file()
    )


def test_dry_run_investigates_and_changes_nothing(sandbox, leak, evidence_dir):
    key = leak["access_key_id"]
    masked = f"{key[:4]}...{key[-4:]}"
    r = run({}, evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["principal"] == "arn:aws:iam::123456789012:user/ci-deploy"
    assert res["events"] == 0 and res["contained"] is False and res["actions"] == []
    assert res["access_key"] == masked and res["keys"][0] == {
        "access_key": masked,
        "user": USER,
        "status": "Active",
    }
    titles = [(f["severity"], f["title"]) for f in res["findings"]]
    assert titles[0] == ("critical", f"access key {masked} of user {USER} is ACTIVE")
    assert any(s == "warning" and "secretsmanager in eu-west-1" in t for s, t in titles)
    ct = next(f for f in res["findings"] if f["source"] == "cloudtrail")
    assert "moto 5.2.5" in ct["evidence"] and "not been implemented" in ct["evidence"]
    assert res["cloudtrail_available"] is False
    assert "fintech/ci-deploy-token" in [i["name"] for i in res["rotate_next"]]
    assert r.record["changes"] == [] and r.record["approvals"] == []
    assert r.record["parameters"]["access_key_id"] == masked  # shown as AKIA...XYZW, never whole
    nb = (Path(r.bundle) / f"{RUNBOOK}.ipynb").read_text()
    assert masked in nb and "contain=False: investigation only" in nb
    assert key not in bundle_text(r.bundle)
    assert key_status(sandbox, key) == "Active"


def test_contain_without_approval_is_planned_only(sandbox, leak, evidence_dir):
    r = run({"contain": True, "dry_run": False}, evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["contained"] is False and res["actions"] == [] and r.record["changes"] == []
    nb = (Path(r.bundle) / f"{RUNBOOK}.ipynb").read_text()
    assert "iam:UpdateAccessKey Inactive" in nb and "iam:PutRolePolicy AWSRevokeOlderSessions" in nb
    assert key_status(sandbox, leak["access_key_id"]) == "Active"
    policies = aws_cli(sandbox, "iam", "list-role-policies", "--role-name", ROLE)["PolicyNames"]
    assert "AWSRevokeOlderSessions" not in policies


def test_approved_containment_deactivates_the_key_and_revokes_sessions(sandbox, leak, evidence_dir):
    """A second key made here (so the test holds its secret) leaks; the canary checks the bundle."""
    from opslib.clients import aws_client

    iam = aws_client("iam")
    fresh = iam.create_access_key(UserName=USER)["AccessKey"]
    key_id, secret = fresh["AccessKeyId"], fresh["SecretAccessKey"]
    masked = f"{key_id[:4]}...{key_id[-4:]}"
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    r = run(
        {
            "access_key_id": key_id,
            "iam_user": USER,
            "iam_role": ROLE,
            "contain": True,
            "dry_run": False,
            "approved_by": "e2e",
            "change_ticket": "SEC-42",
        },
        evidence_dir,
    )
    after = dt.datetime.now(dt.UTC)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["contained"] is True and len(res["actions"]) == 2
    assert res["actions"][0].startswith(f"iam:UpdateAccessKey Inactive {USER} {masked}")
    assert res["actions"][1].startswith(f"iam:PutRolePolicy AWSRevokeOlderSessions role {ROLE}")
    assert r.record["approvals"][0]["change_ticket"] == "SEC-42"
    assert {c["status"] for c in r.record["changes"]} == {"applied"}

    assert key_status(sandbox, key_id) == "Inactive"  # deactivated ...
    assert key_status(sandbox, leak["access_key_id"]) == "Active"  # ... only the leaked one
    doc = aws_cli(
        sandbox,
        "iam",
        "get-role-policy",
        "--role-name",
        ROLE,
        "--policy-name",
        "AWSRevokeOlderSessions",
    )["PolicyDocument"]
    (st,) = doc["Statement"]
    assert (st["Effect"], st["Action"], st["Resource"]) == ("Deny", ["*"], ["*"])
    cutoff = dt.datetime.fromisoformat(
        st["Condition"]["DateLessThan"]["aws:TokenIssueTime"].replace("Z", "+00:00")
    )
    assert before <= cutoff <= after + dt.timedelta(seconds=2)

    text = bundle_text(r.bundle)  # canary: neither half of the key pair is anywhere in the bundle
    assert key_id not in text and secret not in text
    assert leak["access_key_id"] not in text
    assert masked in text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {
                "access_key_id": "",
                "iam_role": "",
                "contain": True,
                "dry_run": False,
                "approved_by": "x",
            },
            "give access_key_id (AKIA.../ASIA...), iam_user or iam_role",
        ),
        ({"access_key_id": "AKIA-NOT-A-KEY"}, "is not an access key id"),
    ],
)
def test_bad_input_is_refused_with_a_bundle(sandbox, leak, evidence_dir, params, message):
    r = run(params, evidence_dir)
    assert (r.status, r.exit_code) == ("refused", 2)
    assert message in r.record["error"]["evalue"]
    assert r.record["changes"] == [] and Path(r.bundle, f"{RUNBOOK}.ipynb").is_file()
    assert key_status(sandbox, leak["access_key_id"]) == "Active"
