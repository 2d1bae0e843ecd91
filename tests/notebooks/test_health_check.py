"""health-check end to end: notebooks/health_check.ipynb through opslib.run on the sandbox.

The first run reads every source with the scenario's presets and records red (the ECS service
at 0 of 4, the two alarms, the 10,000+ queue) and amber items (the stopped ALB target, the dead
tuples); then a third alarm is set to ALARM with the AWS CLI and a second run with
``compare_with`` the first bundle says exactly that one is new; bad input leaves a refused
bundle (exit 2) and reads nothing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import opslib
from opslib.evidence import verify
from opslib.sandbox.scenarios import health as scenario
from opslib.sandbox.testing import ecs_service_back_on_the_failing_release

pytestmark = pytest.mark.timeout(600)

RUNBOOK = "health-check"
NEW_ALARM = f"CloudWatch alarm {scenario.ALARM_OK} in ALARM"


def run(params: dict, evidence_dir: Path):
    return opslib.run(RUNBOOK, params, sandbox=True, evidence_dir=evidence_dir, timeout=300)


def cli_set_alarm(sandbox, state: str) -> None:
    out = subprocess.run(
        ["aws", "cloudwatch", "set-alarm-state", "--alarm-name", scenario.ALARM_OK,
         "--state-value", state, "--state-reason", f"set by the health-check test ({state})",
         "--endpoint-url", os.environ["AWS_ENDPOINT_URL"], "--region", sandbox.region],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


#: Kubernetes is left out of these two runs (the unit tests read it): importing the kubernetes
#: client costs a fresh kernel seconds, and the comparison needs only the same sources twice
SOURCES = {"k8s_namespaces": ""}


@pytest.fixture(scope="module", autouse=True)
def incident(sandbox):
    """The ECS service as the scenario seeded it, whatever ran before in this session."""
    ecs_service_back_on_the_failing_release()


def test_check_then_compare_with_the_first_bundle(sandbox, evidence_dir):
    first = run(SOURCES, evidence_dir)
    assert (first.status, first.exit_code) == ("succeeded", 0), first.record.get("error")
    res = first.record["results"]
    assert res["status"] == "red"
    assert any("fintech-api-service: 0 of 4 tasks running" in t for t in res["red"])
    assert {f"CloudWatch alarm {a} in ALARM" for a in scenario.ALARMS_IN_ALARM} <= set(res["red"])
    assert f"SQS {scenario.BIG_QUEUE}: backlog over 10,000 messages" in res["red"]
    assert f"ALB target group {scenario.TARGET_GROUP}: target(s) not healthy" in res["amber"]
    assert f"PostgreSQL: public.{scenario.TABLE} has 40% dead tuples" in res["amber"]
    assert NEW_ALARM not in res["red"]
    assert set(res["checked"]) >= {"ecs", "alb", "alarms", "sqs", "postgres", "k8s", "backups"}
    assert res["checked"]["k8s"] == 0  # skipped, and shown as skipped
    assert res["checked"]["sqs"] >= 2 and res["checked"]["alarms"] >= 3
    assert res["failed_sources"] == [] and res["new_since"] == [] and res["resolved_since"] == []
    assert all(n > 0 for s, n in res["api_calls"].items() if res["checked"][s]), res["api_calls"]
    assert first.record["changes"] == [] and first.record["approvals"] == []
    html = (Path(first.bundle) / f"{RUNBOOK}.html").read_text()
    assert "Red and amber items" in html and scenario.BIG_QUEUE in html
    assert verify(first.bundle).ok

    cli_set_alarm(sandbox, "ALARM")
    try:
        second = run({**SOURCES, "compare_with": str(first.bundle)}, evidence_dir)
    finally:
        cli_set_alarm(sandbox, "OK")
    assert (second.status, second.exit_code) == ("succeeded", 0), second.record.get("error")
    res2 = second.record["results"]
    # the shared sandbox may drift between the runs (a stopped task ages out, a pod restarts):
    # the seeded problems must be unchanged, the alarm set in between new, the rest consistent
    assert NEW_ALARM in res2["new_since"], res2
    seeded = [
        f"SQS {scenario.BIG_QUEUE}: backlog over 10,000 messages",
        f"ALB target group {scenario.TARGET_GROUP}: target(s) not healthy",
        f"PostgreSQL: public.{scenario.TABLE} has 40% dead tuples",
        *(f"CloudWatch alarm {a} in ALARM" for a in scenario.ALARMS_IN_ALARM),
    ]
    assert set(seeded) <= set(res2["unchanged"]), res2
    assert set(res2["new_since"]) | set(res2["unchanged"]) == set(res2["red"] + res2["amber"])
    assert set(res2["resolved_since"]) <= set(res["red"] + res["amber"]) - set(seeded), res2
    assert res2["compared_with"] == str(first.bundle)
    assert second.record["parameters"]["compare_with"] == str(first.bundle)


def test_bad_input_exits_2_with_a_refused_bundle(sandbox, evidence_dir, tmp_path):
    r = run({"concurrency": 0, "compare_with": str(tmp_path / "no-such-bundle")}, evidence_dir)
    assert (r.status, r.exit_code) == ("refused", 2)
    err = r.record["error"]
    assert "concurrency=0" in str(err) and "no such bundle" in str(err)
    assert Path(r.bundle, "record.json").is_file() and verify(r.bundle).ok
    assert "status" not in (r.record.get("results") or {})  # nothing was read
