"""rolling-restart end to end on the sandbox: the ordered sequence, the stop at the first
failure, force mode's replica restore (also when the run is stopped by SIGTERM), and kubectl
agreeing with the record."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import opslib
from opslib.evidence.recover import STAGING_ENV

pytestmark = pytest.mark.timeout(420)
NS = "fintech-banking"


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
        ["kubectl", "--kubeconfig", sandbox.kubeconfig, "-n", NS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def state(sandbox, name: str) -> tuple[str, str]:
    """(revision, ready/desired) as kubectl prints them."""
    out = kubectl(
        sandbox,
        "get",
        f"deploy/{name}",
        "-o",
        "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision} "
        "{.status.readyReplicas}/{.spec.replicas}",
    )
    rev, ready = out.split()
    return rev, ready


def test_dry_run_plans_the_order_and_touches_nothing(release, evidence_dir):
    before = {n: state(release, n) for n in ("account-service", "transaction-service")}
    r = opslib.run("rolling-restart", {}, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["mode"] == "rolling" and res["restarted"] == [] and res["failed"] == []
    assert res["not_started"] == [
        f"{NS}/account-service",
        f"{NS}/transaction-service",
        f"{NS}/notification-service",
    ]
    assert {n: state(release, n) for n in before} == before


def test_sequence_stops_at_the_first_failure(release, evidence_dir):
    # payment-service runs a crash-looping image: its restart cannot complete; a short progress
    # deadline makes the controller call it failed in seconds
    kubectl(
        release,
        "patch",
        "deploy",
        "payment-service",
        "-p",
        '{"spec":{"progressDeadlineSeconds":3}}',
    )
    untouched = state(release, "transaction-service")
    first = state(release, "account-service")
    r = opslib.run(
        "rolling-restart",
        {
            "deployments": "account-service,payment-service,transaction-service",
            "pause_seconds": 1,
            "wait_timeout_minutes": 1,
            "dry_run": False,
            "approved_by": "e2e",
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["restarted"] == [f"{NS}/account-service"]
    assert res["failed"] == [f"{NS}/payment-service"]
    assert res["not_started"] == [f"{NS}/transaction-service"]
    assert [c["status"] for c in r.record["changes"]] == ["applied", "failed", "skipped"]
    assert "exceeded its progress deadline" in r.record["changes"][1]["detail"]
    assert state(release, "account-service") == (str(int(first[0]) + 1), first[1])
    assert state(release, "transaction-service") == untouched  # never touched
    restarted_at = kubectl(
        release,
        "get",
        "deploy/account-service",
        "-o",
        "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    )
    assert restarted_at.endswith("Z")


def test_blast_radius_refuses_the_whole_namespace(release, evidence_dir):
    r = opslib.run(
        "rolling-restart",
        {"deployments": "", "max_targets": 3, "dry_run": False, "approved_by": "e2e"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("refused", 2)
    assert "max_targets=3" in json.dumps(r.record.get("error"))
    assert r.record["changes"] == []


def test_force_mode_restores_the_replica_count(release, evidence_dir):
    rev, ready = state(release, "notification-service")
    r = opslib.run(
        "rolling-restart",
        {
            "deployments": "notification-service",
            "mode": "force",
            "dry_run": False,
            "approved_by": "e2e",
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    assert r.record["results"]["restarted"] == [f"{NS}/notification-service"]
    note = json.loads(
        (
            Path(r.bundle) / "attachments" / f"force-restore-{NS}-notification-service.json"
        ).read_text()
    )
    assert note["replicas"] == 3 and note["restored"] is True
    assert note["command"] == f"kubectl -n {NS} scale deployment/notification-service --replicas=3"
    assert state(release, "notification-service") == (rev, "3/3")  # scale is not a new revision
    nb = (Path(r.bundle) / "rolling-restart.ipynb").read_text()
    assert "DOWN" in nb  # the plan said it in words


def test_sigterm_during_force_mode_leaves_replicas_restored(release, evidence_dir, tmp_path):
    # the target's image crash-loops, so after the scale back the wait runs until we stop it
    kubectl(release, "scale", "deploy/payment-service", "--replicas=2")
    cmd = [
        str(Path(sys.executable).parent / "opslib"),
        "run",
        "rolling-restart",
        "--sandbox",
        "--evidence-dir",
        str(evidence_dir),
        *("-p", "deployments", "payment-service"),
        *("-p", "mode", "force"),
        *("-p", "wait_timeout_minutes", "5"),
        *("-p", "dry_run", "False"),
        *("-p", "approved_by", "e2e"),
    ]
    staging = tmp_path / "staging"
    env = {**os.environ, STAGING_ENV: str(staging)}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    staging_note = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and staging_note is None:
        time.sleep(0.5)
        found = list(
            staging.glob("*/attachments/force-restore-fintech-banking-payment-service.json")
        )
        staging_note = found[0] if found else None
    assert staging_note is not None, "the force restart never started"
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    (bundle,) = list((evidence_dir / "rolling-restart").iterdir())
    record = json.loads((bundle / "record.json").read_text())
    assert record["status"] == "interrupted"
    note = json.loads(
        (bundle / "attachments" / "force-restore-fintech-banking-payment-service.json").read_text()
    )
    assert note["replicas"] == 2 and note["restored"] is True
    assert "--replicas=2" in note["command"]
    assert (
        kubectl(release, "get", "deploy/payment-service", "-o", "jsonpath={.spec.replicas}") == "2"
    )
