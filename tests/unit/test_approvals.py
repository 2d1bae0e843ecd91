"""Approve later: the plan in a dry run's bundle, applied only while it hashes the same; two-person rule."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import opslib
from opslib.cli import main
from opslib.evidence.bundle import os_user
from opslib.evidence.record import RunRecord

pytestmark = pytest.mark.timeout(300)

PARAMS = """world: str = ""  # JSON file {"replicas": N}: the world this runbook changes
want: int = 3  # replicas wanted
dry_run: bool = True  # True shows the plan and changes nothing
approved_by: str = ""  # who approves
change_ticket: str = ""  # ticket"""

BODY = """import json
import opslib
import opslib.safety
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan

current = json.load(open(world))["replicas"]
changes = (Change("test:SetReplicas", world, f"replicas {current} -> {want}", {"to": want}),)
plan = Plan("scale the test service", changes if current != want else ())


def execute(change):
    with open(change.target, "w") as fh:
        json.dump({"replicas": change.params["to"]}, fh)
    return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, "written")


result = opslib.safety.gate(plan, dry_run=dry_run, approved_by=approved_by, change_ticket=change_ticket, execute=execute)
opslib.record("replicas", json.load(open(world))["replicas"])"""


@pytest.fixture
def scale_nb(tmp_path):
    p = tmp_path / "scale_test.ipynb"
    params = new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Scale test\n\nA mutating runbook."),
            params,
            new_code_cell(BODY),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, str(p))
    return p


@pytest.fixture
def world(tmp_path):
    p = tmp_path / "world.json"
    p.write_text(json.dumps({"replicas": 1}))
    return p


def replicas(world) -> int:
    return json.loads(world.read_text())["replicas"]


def dry_run(scale_nb, world, ev, **kw):
    r = opslib.run(
        str(scale_nb), {"world": str(world), "change_ticket": "INC-42", **kw}, evidence_dir=ev
    )
    assert r.status == "succeeded", r.record.get("error")
    return r


def test_dry_run_bundle_holds_the_plan_and_digest(scale_nb, world, evidence_dir):
    r = dry_run(scale_nb, world, evidence_dir)
    [plan] = r.record.plans
    assert plan["decision"] == "dry run" and len(plan["digest"]) == 64
    assert plan["changes"][0]["effect"] == "replicas 1 -> 3"
    assert replicas(world) == 1


def test_approve_later_applies_the_same_plan_once(scale_nb, world, evidence_dir, capsys):
    dry = dry_run(scale_nb, world, evidence_dir)
    digest = dry.record.plans[0]["digest"]
    assert main(["approve", dry.bundle, "--by", "alice", "--ticket", "INC-42"]) == 0
    assert replicas(world) == 3
    new = capsys.readouterr().out.strip().splitlines()[-1]
    rec = RunRecord.load(new)
    assert rec["approves_bundle"] == dry.bundle
    [a] = rec.approvals
    assert (a["approver"], a["plan_hash"], a["via"], a["change_ticket"]) == (
        "alice",
        digest,
        "opslib approve",
        "INC-42",
    )
    assert a["approved_at"].endswith("Z") and a["source_bundle"] == dry.bundle
    assert [c["status"] for c in rec.changes] == ["applied"]
    assert rec.parameters["dry_run"] is False
    # a plan is applied once
    world.write_text(json.dumps({"replicas": 1}))
    assert main(["approve", dry.bundle, "--by", "bob"]) == 2
    assert "already applied" in capsys.readouterr().err
    assert replicas(world) == 1


def test_world_changed_since_the_plan_refused_nothing_applied(
    scale_nb, world, evidence_dir, capsys
):
    dry = dry_run(scale_nb, world, evidence_dir)
    world.write_text(json.dumps({"replicas": 2}))  # someone scaled meanwhile
    assert main(["approve", dry.bundle, "--by", "alice"]) == 2
    out = capsys.readouterr().out
    assert "the world changed since the plan; review the new plan" in out
    assert replicas(world) == 2
    rec = RunRecord.load(out.strip().splitlines()[-1])
    assert rec["status"] == "refused" and rec.changes == []
    assert rec.plans[0]["decision"] == "refused: digest changed"


def test_two_person_rule(scale_nb, world, evidence_dir, capsys):
    dry = dry_run(scale_nb, world, evidence_dir)
    args = ["approve", dry.bundle, "--require-approvers", "2"]
    assert main([*args, "--by", os_user()]) == 2  # the dry run's operator
    assert "two-person rule" in capsys.readouterr().err
    assert main([*args, "--by", "alice"]) == 0
    assert "approval 1 of 2" in capsys.readouterr().out and replicas(world) == 1
    assert main([*args, "--by", "alice"]) == 2  # the same person twice
    assert "already approved" in capsys.readouterr().err
    assert main([*args, "--by", "bob"]) == 0
    assert replicas(world) == 3
    rec = RunRecord.load(capsys.readouterr().out.strip().splitlines()[-1])
    assert [a["approver"] for a in rec.approvals] == ["alice", "bob"]
    assert {a["plan_hash"] for a in rec.approvals} == {dry.record.plans[0]["digest"]}


def test_two_person_rule_refuses_a_direct_approved_run(scale_nb, world, evidence_dir, monkeypatch):
    monkeypatch.setenv("OPSLIB_REQUIRE_APPROVERS", "2")
    r = opslib.run(
        str(scale_nb),
        {"world": str(world), "dry_run": False, "approved_by": "alice"},
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("refused", 2)
    assert r.record["error"]["ename"] == "TwoPersonRuleError"
    assert replicas(world) == 1


def test_approve_refuses_bad_bundles(scale_nb, world, evidence_dir, capsys):
    tiny = str(Path(__file__).parents[1] / "fixtures" / "notebooks" / "tiny.ipynb")
    plain = opslib.run(tiny, evidence_dir=evidence_dir)
    assert main(["approve", plain.bundle, "--by", "alice"]) == 2
    assert "no dry-run plan" in capsys.readouterr().err
    dry = dry_run(scale_nb, world, evidence_dir)
    rec = Path(dry.bundle) / "record.json"
    rec.write_text(rec.read_text().replace('"want": 3', '"want": 30'))
    assert main(["approve", dry.bundle, "--by", "alice"]) == 2
    assert "does not verify" in capsys.readouterr().err
    assert replicas(world) == 1
