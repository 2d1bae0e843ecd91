"""latency-triage end to end: notebooks/latency_triage.ipynb through opslib.run / the CLI on the sandbox.

The seeded incident has a real blocking chain in PostgreSQL (one session idle in transaction
holding a row lock on ``accounts``, three sessions waiting on it). A dry run must name the
blocking session as the top cause and terminate nothing; an approved run must terminate it,
after which the waiters finish and the chain is gone. The scenario is reseeded around every
test, so each one starts from the same incident.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

import opslib
from opslib.core.errors import SecretInParameterError

pytestmark = pytest.mark.timeout(600)

CHAIN_SQL = (
    "SELECT application_name, state, wait_event_type, pid FROM pg_stat_activity "
    "WHERE datname = 'accounts' AND application_name IN ('ledger-batch', 'auth-service')"
)


@pytest.fixture
def incident(sandbox):
    from opslib import sandbox as sb

    errors = sb.seed(["latency"])
    assert errors.get("latency") == "", errors
    return sb.presets("latency-triage")  # every consumer seeds first: no reseed after


def chain(incident) -> dict[str, list[int]]:
    from opslib.clients import pg_connect

    with pg_connect(incident["pg_dsn"], runbook="test") as conn:
        rows = conn.execute(CHAIN_SQL).fetchall()
    return {
        "holders": [r[3] for r in rows if r[0] == "ledger-batch" and r[1] == "idle in transaction"],
        "waiting": [r[3] for r in rows if r[0] == "auth-service" and r[2] == "Lock"],
        "waiters": [r[3] for r in rows if r[0] == "auth-service"],
    }


def test_dry_run_names_the_blocking_session_and_changes_nothing(incident, evidence_dir):
    before = chain(incident)
    assert len(before["holders"]) == 1 and len(before["waiting"]) == 3
    r = opslib.run("latency-triage", {}, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["blocking_pids"] == before["holders"]
    assert res["verdict"].startswith(f"CRITICAL: PostgreSQL: pid {before['holders'][0]} ")
    assert "blocks 3 session(s)" in res["verdict"]
    assert (
        res["findings"][0]["severity"] == "critical" and "PostgreSQL" in res["findings"][0]["title"]
    )
    assert res["p99_ms"] > 500 and res["breach_minutes"] >= 5
    assert sorted(res["restarting_pods"]) == [
        "auth-service-7c9d8f-4xkqp",
        "auth-service-7c9d8f-9mzt2",
    ]
    assert res["terminated_pids"] == [] and res["chain_cleared"] is None
    assert r.record["approvals"] == [] and r.record["changes"] == []
    assert chain(incident) == before  # nothing was terminated
    nb = (Path(r.bundle) / "latency-triage.ipynb").read_text()
    assert "**Verdict: CRITICAL: PostgreSQL" in nb and "image/png" in nb


def test_dry_run_records_the_alarm_the_5xx_split_and_the_scale_out_proposal(incident, evidence_dir):
    """Sustained breach vs spike, target vs ELB 5xx, p95, connections vs max_connections, and
    the load spike's +2 proposal with the parameters to rerun (nothing scaled by default)."""
    r = opslib.run(
        "latency-triage",
        {"alarm_minutes": 5, "min_requests": 100},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    for name in (  # the original record names keep their names
        "p99_ms",
        "p99_stat",
        "breach_minutes",
        "verdict",
        "blocking_pids",
        "terminated_pids",
        "chain_cleared",
        "restarting_pods",
        "findings",
        "plan_hash",
    ):
        assert name in res, name
    assert res["alarm"] is True and res["spike_minutes"] == 1 and res["breach_minutes"] >= 5
    assert res["elb_5xx"] > 0 and res["target_5xx"] > res["elb_5xx"]
    assert res["error_rate_pct"] >= 1.0 and 80 <= res["connections_pct"] < 95
    assert res["rerun_parameters"]["scale_out_by"] == 2
    assert res["rerun_parameters"]["ecs_service"] == incident["ecs_service"]
    assert r.record["changes"] == []
    titles = [f["title"] for f in res["findings"]]
    assert any("memory at" in t for t in titles) and any("cache hit rate" in t for t in titles)
    assert any(t.startswith("Load spike") for t in titles)
    # the schedule of yesterday (no new parameters) still runs and sees the same alarm
    r0 = opslib.run("latency-triage", {}, sandbox=True, evidence_dir=evidence_dir / "old")
    assert r0.exit_code == 0 and r0.record["results"]["alarm"] is True


def test_approved_termination_clears_the_chain(incident, evidence_dir):
    before = chain(incident)
    r = opslib.run(
        "latency-triage",
        {
            "terminate_blocking": True,
            "dry_run": False,
            "approved_by": "e2e",
            "change_ticket": "INC-7",
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["terminated_pids"] == before["holders"] == res["blocking_pids"]
    assert res["chain_cleared"] is True
    assert r.record["approvals"][0]["approver"] == "e2e"
    assert r.record["approvals"][0]["change_ticket"] == "INC-7"
    assert [(c["action"], c["status"]) for c in r.record["changes"]] == [
        ("pg_terminate_backend", "applied")
    ]
    after = chain(incident)
    assert after == {"holders": [], "waiting": [], "waiters": []}  # waiters got the lock and left
    log = Path(opslib.sandbox.status().state_dir) / "logs" / "spawn-latency-locks.log"
    assert "chain over: 3 of 3 waiter(s) finished" in log.read_text()


def test_approved_scale_out_of_ecs_service_and_deployment(incident, evidence_dir):
    from kubernetes import client

    from opslib.clients import aws_client, k8s_api

    r = opslib.run(
        "latency-triage",
        {"scale_out_by": 2, "dry_run": False, "approved_by": "e2e"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    assert [(c["action"], c["status"]) for c in r.record["changes"]] == [
        ("ecs:UpdateService", "applied"),
        ("k8s:patch deployments/scale", "applied"),
    ]
    assert r.record["results"]["terminated_pids"] == []  # terminate_blocking was not asked for
    svc = aws_client("ecs").describe_services(
        cluster=incident["ecs_cluster"], services=[incident["ecs_service"]]
    )["services"][0]
    assert svc["desiredCount"] == 6  # 4 + 2
    dep = client.AppsV1Api(k8s_api()).read_namespaced_deployment(
        "auth-service", incident["k8s_namespace"]
    )
    assert dep.spec.replicas == 5  # 3 + 2
    assert len(chain(incident)["waiting"]) == 3


def test_unreachable_database_is_a_finding_and_the_rest_continues(incident, evidence_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = opslib.run(
        "latency-triage",
        {"pg_dsn": f"host=127.0.0.1 port={port} dbname=accounts"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    errors = [f for f in res["findings"] if f["severity"] == "error"]
    assert any(f["title"].startswith("postgres: check failed") for f in errors)
    assert res["blocking_pids"] == [] and res["p99_ms"] > 500  # the other sources still answered
    assert res["restarting_pods"] and not res["verdict"].startswith("ERROR")


def test_password_in_conninfo_is_refused_with_exit_2(incident, evidence_dir):
    # refused by the runner's parameter check before a kernel starts (the notebook's own
    # triage.inputs() refuses too, for interactive runs that bypass the runner)
    with pytest.raises(SecretInParameterError, match="PGPASSWORD"):
        opslib.run(
            "latency-triage",
            {
                "pg_dsn": "host=127.0.0.1 dbname=accounts password=hunter2",
                "terminate_blocking": True,
                "dry_run": False,
                "approved_by": "e2e",
            },
            sandbox=True,
            evidence_dir=evidence_dir,
        )
    assert len(chain(incident)["waiting"]) == 3  # nothing changed

    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "opslib.cli",
            "run",
            "latency-triage",
            "--sandbox",
            "--evidence-dir",
            str(evidence_dir),
            "-p",
            "pg_dsn",
            "postgresql://app:hunter2@127.0.0.1/accounts",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert "PGPASSWORD" in p.stdout + p.stderr and "hunter2" not in p.stdout + p.stderr
    assert len(chain(incident)["waiting"]) == 3
