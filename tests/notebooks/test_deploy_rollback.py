"""deploy-rollback end to end: the notebook headless against the sandbox's seeded bad release,
with the real kubectl and the AWS CLI checking what the record says was done."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import opslib

pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module", autouse=True)
def bad_release_left_for_the_next_module(sandbox):
    """The tests here roll the bad release back; the session's other runbooks (the morning
    check, the latency triage) expect the incident as seeded, so it is put back at the end."""
    from opslib import sandbox as sb

    yield
    sb.seed(["deploy"])


@pytest.fixture
def release(sandbox):
    from opslib import sandbox as sb

    errors = sb.seed(["deploy"])
    assert errors == {"deploy": ""}, errors
    yield sandbox


def kubectl(sandbox, *args: str) -> str:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        ["kubectl", "--kubeconfig", sandbox.kubeconfig, "-n", "fintech-banking", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def aws_cli(*args: str) -> dict:
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed")
    out = subprocess.run(
        ["aws", *args, "--output", "json"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _image_revision_ready(sandbox) -> str:
    return kubectl(
        sandbox,
        "get",
        "deploy/payment-service",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image} "
        "{.metadata.annotations.deployment\\.kubernetes\\.io/revision} "
        "{.status.readyReplicas}/{.spec.replicas}",
    )


def test_dry_run_shows_previous_revision_and_changes_nothing(release, evidence_dir):
    before = _image_revision_ready(release)
    assert before.startswith("fintech/payment-service:2.4.1 3 ")
    r = opslib.run("deploy-rollback", {}, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert (res["platform"], res["from_revision"], res["to_revision"]) == ("kubernetes", 3, 2)
    assert res["from_image"] == "fintech/payment-service:2.4.1"
    assert res["to_image"] == "fintech/payment-service:2.4.0"
    assert res["rolled_back"] is False and res["healthy_after"] is False
    assert r.record["changes"] == []
    assert _image_revision_ready(release) == before
    nb = (Path(r.bundle) / "deploy-rollback.ipynb").read_text()
    assert "image: fintech/payment-service:2.4.1" in nb and "CrashLoopBackOff" in nb


def test_approved_kubernetes_rollback_and_kubectl_agrees(release, evidence_dir):
    r = opslib.run(
        "deploy-rollback",
        {
            "dry_run": False,
            "approved_by": "e2e",
            "change_ticket": "INC-11",
            "wait_timeout_minutes": 2,
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["rolled_back"] is True and res["healthy_after"] is True
    assert res["revision_after"] == 4
    assert [(c["status"]) for c in r.record["changes"]] == ["applied"]
    # kubectl: same revision, image and replica counts as the record
    assert _image_revision_ready(release) == f"{res['to_image']} {res['revision_after']} 3/3"
    hist = kubectl(release, "rollout", "history", "deploy/payment-service")
    assert "rollback to revision 2 (release 2.4.0" in hist
    pods = kubectl(release, "get", "pods", "-l", "app=payment-service", "--no-headers")
    assert "CrashLoopBackOff" not in pods and len(pods.strip().splitlines()) == 3


def test_approved_ecs_rollback_and_the_cli_agrees(release, evidence_dir):
    r = opslib.run(
        "deploy-rollback",
        {"platform": "ecs", "dry_run": False, "approved_by": "e2e", "wait_timeout_minutes": 2},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["to_task_definition"].endswith(f":{res['to_revision']}")
    assert res["to_revision"] == res["from_revision"] - 1
    assert res["rolled_back"] is True and res["healthy_after"] is True
    svc = aws_cli(
        "ecs",
        "describe-services",
        "--cluster",
        "fintech-cluster",
        "--services",
        "fintech-api-service",
    )["services"][0]
    assert svc["taskDefinition"] == res["to_task_definition"]
    assert [(d["status"], d["taskDefinition"], d["rolloutState"]) for d in svc["deployments"]] == [
        ("PRIMARY", res["to_task_definition"], "COMPLETED")
    ]
    assert svc["runningCount"] == svc["desiredCount"] > 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to_revision": 3}, "changes nothing"),
        ({"to_revision": 9}, "does not exist"),
        ({"platform": "nomad"}, "give 'kubernetes' or 'ecs'"),
    ],
)
def test_bad_input_is_refused_with_a_bundle_and_nothing_changes(
    release, evidence_dir, params, message
):
    before = _image_revision_ready(release)
    r = opslib.run(
        "deploy-rollback",
        {**params, "dry_run": False, "approved_by": "e2e"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("refused", 2)
    assert message in json.dumps(r.record.get("error"))
    assert r.record["changes"] == [] and (Path(r.bundle) / "record.json").exists()
    assert _image_revision_ready(release) == before
