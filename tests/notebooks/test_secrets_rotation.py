"""secrets-rotation end to end on the sandbox: a real PostgreSQL role with password logins
(scram), its Secrets Manager secret, a Kubernetes secret and the deployment that reads it.

Checked for real: after an approved rotation the new password logs in and the old one does not;
a rotation whose login test fails leaves the old password working and AWSCURRENT unchanged;
bad input is refused (exit 2) with nothing changed; and a canary search over EVERY file of the
bundle finds neither password nor the secret's JSON.
"""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import psycopg
import pytest

import opslib

pytestmark = pytest.mark.timeout(600)

SECRET = "fintech/db-credentials"


@pytest.fixture
def cred(sandbox):
    from opslib import sandbox as sb

    errors = sb.seed(["secrets"])
    assert errors.get("secrets") == "", errors
    yield sb.presets("secrets-rotation")
    sb.seed(["secrets"])


def sm():
    from opslib.clients import aws_client

    return aws_client("secretsmanager")


def value(stage="AWSCURRENT", secret=SECRET) -> tuple[str, dict, str]:
    v = sm().get_secret_value(SecretId=secret, VersionStage=stage)  # always name the stage (moto)
    return v["SecretString"], json.loads(v["SecretString"]), v["VersionId"]


def logs_in(body: dict, password: str) -> bool:
    try:
        with psycopg.connect(
            host=body["host"],
            port=body["port"],
            dbname=body["dbname"],
            user=body["username"],
            password=password,
            connect_timeout=5,
        ):
            return True
    except psycopg.OperationalError:
        return False


def k8s_value(key="password") -> str:
    from kubernetes import client

    from opslib.clients import k8s_api

    s = client.CoreV1Api(k8s_api()).read_namespaced_secret("db-credentials", "fintech-banking")
    return base64.b64decode(s.data[key]).decode()


def bundle_files(bundle: Path) -> list[Path]:
    files = [p for p in bundle.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {
        "secrets-rotation.ipynb",
        "secrets-rotation.html",
        "record.json",
        "manifest.json",
    } <= names
    return files


def test_approved_rotation_new_password_works_old_refused_and_no_value_in_any_file(
    cred, evidence_dir
):
    old_json, old, old_version = value()
    pending_json, pending, _ = value("AWSPENDING")  # the stale one a failed rotation left
    assert logs_in(old, old["password"])
    r = opslib.run(
        "secrets-rotation",
        {"dry_run": False, "approved_by": "e2e", "change_ticket": "SEC-1", "revoke_previous": True},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    new_json, new, new_version = value()
    assert res["secret_id"] == SECRET and res["method"] == "postgres"
    assert res["rotated"] is True and res["verified"] is True and res["revoked_previous"] is True
    assert res["new_version_id"] == new_version != old_version
    assert res["restarted"] == ["fintech-banking/account-service"]
    assert [c["action"] for c in r.record["changes"]] == [
        "secretsmanager:PutSecretValue AWSPENDING",
        "pg:ALTER ROLE PASSWORD",
        "pg:login test",
        "secretsmanager:UpdateSecretVersionStage AWSCURRENT",
        "k8s:patch secrets/data",
        "k8s:patch deployments/spec.template restartedAt (rollout restart)",
        "pg:terminate sessions of role",
        "secretsmanager:UpdateSecretVersionStage remove AWSPREVIOUS",
    ]
    assert all(c["status"] == "applied" for c in r.record["changes"])
    # the database, Secrets Manager and Kubernetes agree
    assert new["password"] != old["password"] and len(new["password"]) >= 40
    assert {k: v for k, v in new.items() if k != "password"} == {
        k: v for k, v in old.items() if k != "password"
    }
    assert logs_in(new, new["password"]) and not logs_in(old, old["password"])
    assert k8s_value() == new["password"]
    versions = {
        v["VersionId"]: v.get("VersionStages", [])
        for v in sm().list_secret_version_ids(SecretId=SECRET)["Versions"]
    }
    assert (
        "AWSPREVIOUS" not in versions.get(old_version, []) and "AWSCURRENT" in versions[new_version]
    )
    # canary: no value in any file of the bundle (notebook, HTML, record, manifest, attachments)
    canaries = [
        old["password"],
        new["password"],
        pending["password"],
        old_json,
        new_json,
        pending_json,
    ]
    for path in bundle_files(Path(r.bundle)):
        data = path.read_bytes().decode("utf-8", errors="replace")
        for c in canaries:
            assert c not in data, f"a secret value is in {path.name}"
            assert json.dumps(c)[1:-1] not in data, f"a JSON-escaped secret value is in {path.name}"


def test_dry_run_changes_nothing(cred, evidence_dir):
    before = value()
    r = opslib.run("secrets-rotation", {}, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["rotated"] is False and res["new_version_id"] == "" and r.record["changes"] == []
    assert res["verified"] is True  # the current secret logs in
    titles = [f["title"] for f in res["findings"]]
    assert f"{SECRET}: the last rotation did not finish" in titles
    assert value() == before and logs_in(before[1], before[1]["password"])
    for path in bundle_files(Path(r.bundle)):
        assert before[1]["password"] not in path.read_text(errors="replace")


def test_failed_login_test_leaves_the_old_password_and_awscurrent(cred, evidence_dir):
    """The secret's endpoint is wrong (a closed port): set works, test fails, the role gets the
    old password back, AWSCURRENT never moves."""
    _, real, _ = value()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    broken_id = "fintech/db-credentials-wrong-port"
    client = sm()
    try:
        client.delete_secret(SecretId=broken_id, ForceDeleteWithoutRecovery=True)
    except client.exceptions.ResourceNotFoundException:
        pass
    sm().create_secret(Name=broken_id, SecretString=json.dumps({**real, "port": closed}))
    before = value(secret=broken_id)
    r = opslib.run(
        "secrets-rotation",
        {
            "secret_id": broken_id,
            "method": "postgres",
            "k8s_secret": "",
            "restart_deployments": "",
            "dry_run": False,
            "approved_by": "e2e",
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["rotated"] is False and res["verified"] is False and res["new_version_id"] == ""
    status = [(c["action"], c["status"]) for c in r.record["changes"]]
    assert status == [
        ("secretsmanager:PutSecretValue AWSPENDING", "applied"),
        ("pg:ALTER ROLE PASSWORD", "applied"),
        ("pg:login test", "failed"),
        ("secretsmanager:UpdateSecretVersionStage AWSCURRENT", "skipped"),
    ]
    assert "set back to the AWSCURRENT one" in r.record["changes"][2]["detail"]
    assert value(secret=broken_id)[2] == before[2]  # AWSCURRENT unchanged
    assert logs_in(real, real["password"])  # the old password still works on the real server
    stop = next(
        f for f in res["findings"] if f["title"] == "rotation stopped: nothing was promoted"
    )
    assert "(unchanged: True)" in stop["next_action"]
    for path in bundle_files(Path(r.bundle)):
        assert real["password"] not in path.read_text(errors="replace")
    sm().delete_secret(SecretId=broken_id, ForceDeleteWithoutRecovery=True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"secret_id": "fintech/no-such-secret"}, "not found"),
        ({"admin_dsn": "host=127.0.0.1 user=opslib password=hunter2hunter2"}, "admin_dsn carries"),
        ({"k8s_secret": "db-credentials:password"}, "the namespace is required"),
        (
            {"secret_id": "fintech/api-token", "method": "postgres"},
            "is not a PostgreSQL credential",
        ),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(cred, evidence_dir, params, message):
    client = sm()
    try:
        client.create_secret(
            Name="fintech/api-token", SecretString=json.dumps({"api_key": "tok-" + "x" * 30})
        )
    except client.exceptions.ResourceExistsException:
        pass
    before = value()
    try:
        r = opslib.run(
            "secrets-rotation",
            {"dry_run": False, "approved_by": "e2e", **params},
            sandbox=True,
            evidence_dir=evidence_dir,
        )
    except opslib.core.errors.SecretInParameterError as exc:  # refused before any kernel: no bundle
        assert "password" in str(exc) and "admin_dsn" in params
        return
    assert (r.status, r.exit_code) == ("refused", 2), r.record.get("error")
    assert message in r.record["error"]["evalue"]
    assert r.record["changes"] == [] and value() == before
