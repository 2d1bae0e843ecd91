"""The approval gate: nothing changes without dry_run=False AND an approval for exactly that plan."""

from __future__ import annotations

import pytest

from opslib.core.errors import ApprovalError, BadInputError
from opslib.core.plans import (
    Approval,
    Change,
    ChangeOutcome,
    ChangeStatus,
    Plan,
    apply,
    approve,
    check_limit,
    parse_csv,
)
from opslib.core.recorder import SESSION
from opslib.safety import gate


def _plan(n: int = 2) -> Plan:
    return Plan(
        title="terminate blockers",
        changes=tuple(
            Change("pg_terminate_backend", f"pid {i}", "session ends", {"pid": i}) for i in range(n)
        ),
        warnings=("clients see a dropped connection",),
        limits={"max_terminations": n},
    )


class Recorder:
    def __init__(self, fail_on: set[str] | None = None):
        self.calls: list[str] = []
        self.fail_on = fail_on or set()

    def __call__(self, change: Change) -> ChangeOutcome:
        self.calls.append(change.target)
        if change.target in self.fail_on:
            raise RuntimeError(f"boom on {change.target}")
        return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, "done")


@pytest.fixture(autouse=True)
def _fresh_session():
    SESSION.reset()
    yield
    SESSION.reset()


def test_digest_is_stable_and_changes_with_the_plan():
    assert _plan().digest() == _plan().digest()
    assert _plan(2).digest() != _plan(3).digest()


def test_dry_run_applies_nothing(capsys):
    ex = Recorder()
    assert gate(_plan(), dry_run=True, approved_by="alice", execute=ex) is None
    assert ex.calls == []
    assert "DRY RUN" in capsys.readouterr().out
    assert SESSION.approvals == [] and SESSION.changes == []


def test_no_approver_applies_nothing_even_without_dry_run(capsys, monkeypatch):
    monkeypatch.setenv("OPSLIB_HEADLESS", "1")
    ex = Recorder()
    assert gate(_plan(), dry_run=False, approved_by="  ", execute=ex) is None
    assert ex.calls == []
    assert "approved_by is empty" in capsys.readouterr().out


def test_approved_run_applies_every_change_and_records_approval_and_changes():
    ex = Recorder()
    result = gate(_plan(), dry_run=False, approved_by="alice", change_ticket="CHG-1", execute=ex)
    assert result is not None and result.applied == 2 and result.failed == 0
    assert ex.calls == ["pid 0", "pid 1"]
    assert SESSION.approvals[0]["approver"] == "alice"
    assert SESSION.approvals[0]["change_ticket"] == "CHG-1"
    assert SESSION.approvals[0]["plan_hash"] == _plan().digest()
    assert [c["status"] for c in SESSION.changes] == ["applied", "applied"]


def test_failure_stops_the_rest_and_is_recorded_not_swallowed():
    ex = Recorder(fail_on={"pid 0"})
    result = gate(_plan(3), dry_run=False, approved_by="alice", execute=ex)
    assert [o.status for o in result.outcomes] == [
        ChangeStatus.FAILED,
        ChangeStatus.SKIPPED,
        ChangeStatus.SKIPPED,
    ]
    assert "boom on pid 0" in result.outcomes[0].detail
    assert ex.calls == ["pid 0"]


def test_apply_refuses_without_approval_or_with_approval_for_another_plan():
    with pytest.raises(ApprovalError):
        apply(_plan(), approval=None, execute=Recorder())
    other = approve(_plan(3), dry_run=False, approved_by="bob")
    assert isinstance(other, Approval)
    with pytest.raises(ApprovalError, match="different plan"):
        apply(_plan(2), approval=other, execute=Recorder())


def test_empty_plan_needs_no_approval(capsys):
    assert gate(Plan("nothing"), dry_run=False, approved_by="alice", execute=Recorder()) is None
    assert "plan is empty" in capsys.readouterr().out


def test_plan_renders_as_table_text_and_html():
    plan = _plan()
    frame = plan.to_frame()
    assert list(frame.columns) == ["#", "action", "target", "effect"] and len(frame) == 2
    assert "warning: clients see a dropped connection" in str(plan)
    assert "<table" in plan._repr_html_() and plan.digest()[:12] in plan._repr_html_()


def test_blast_radius_limit():
    check_limit("max_messages", 10, 10)
    with pytest.raises(BadInputError, match="max_messages=10"):
        check_limit("max_messages", 11, 10)


def test_parse_csv():
    assert parse_csv(" a, b,,c ") == ["a", "b", "c"]
    assert parse_csv("") == []


# --------------------------------------------------------------------------- plans in the evidence, grants


def _grant(digests, approvers=("alice",), operator="ops", required=1):
    from opslib.core.plans import ApprovalGrant

    return ApprovalGrant(
        source_bundle="evidence/x/20261123T100000Z_r1",
        plan_digests=tuple(digests),
        approvals=tuple(
            Approval(a, digests[0], f"2026-11-23T10:0{i}:00Z", "INC-42", "opslib approve")
            for i, a in enumerate(approvers)
        ),
        require_approvers=required,
        operator=operator,
    )


def test_every_gate_records_the_plan_its_digest_and_the_decision():
    plan = _plan()
    gate(plan, dry_run=True, approved_by="", execute=Recorder())
    gate(plan, dry_run=False, approved_by="bob", execute=Recorder())
    dry, applied = SESSION.plans
    assert dry["digest"] == plan.digest() and dry["decision"] == "dry run"
    assert [c["target"] for c in dry["changes"]] == ["pid 0", "pid 1"]
    assert applied["decision"] == "approved" and applied["approvers"] == ["bob"]
    assert SESSION.approvals[0]["plan_title"] == "terminate blockers"


def test_grant_for_another_digest_refuses_and_applies_nothing(monkeypatch):
    from opslib.core.errors import PlanChangedError
    from opslib.core.plans import APPROVAL_ENV

    monkeypatch.setenv(APPROVAL_ENV, _grant(["0" * 64]).to_json())
    ex = Recorder()
    with pytest.raises(
        PlanChangedError, match="the world changed since the plan; review the new plan"
    ):
        gate(_plan(), dry_run=False, approved_by="alice", execute=ex)
    assert ex.calls == [] and SESSION.changes == [] and SESSION.approvals == []
    assert SESSION.plans[0]["decision"] == "refused: digest changed"
    assert issubclass(PlanChangedError, BadInputError)  # exit 2


def test_grant_for_this_digest_applies_with_every_approval(monkeypatch):
    from opslib.core.plans import APPROVAL_ENV

    plan = _plan()
    monkeypatch.setenv(
        APPROVAL_ENV, _grant([plan.digest()], ("alice", "bob"), required=2).to_json()
    )
    ex = Recorder()
    result = gate(plan, dry_run=False, approved_by="alice, bob", execute=ex)
    assert result.applied == 2 and ex.calls == ["pid 0", "pid 1"]
    assert [(a["approver"], a["via"], a["plan_hash"]) for a in SESSION.approvals] == [
        ("alice", "opslib approve", plan.digest()),
        ("bob", "opslib approve", plan.digest()),
    ]
    assert SESSION.approvals[0]["source_bundle"].endswith("_r1")


def test_two_person_rule_in_the_gate(monkeypatch):
    from opslib.core.errors import TwoPersonRuleError
    from opslib.core.plans import APPROVAL_ENV, REQUIRE_APPROVERS_ENV

    plan = _plan()
    monkeypatch.setenv(REQUIRE_APPROVERS_ENV, "2")
    with pytest.raises(TwoPersonRuleError, match="2 distinct approvers"):
        gate(plan, dry_run=False, approved_by="alice", execute=Recorder())
    # the operator of the dry run does not count, nor one person twice
    monkeypatch.setenv(
        APPROVAL_ENV, _grant([plan.digest()], ("ops", "alice"), operator="ops").to_json()
    )
    with pytest.raises(TwoPersonRuleError, match="ops started the dry run"):
        gate(plan, dry_run=False, approved_by="ops, alice", execute=Recorder())
    monkeypatch.setenv(APPROVAL_ENV, _grant([plan.digest()], ("alice", "alice")).to_json())
    with pytest.raises(TwoPersonRuleError, match="it has 1"):
        gate(plan, dry_run=False, approved_by="alice", execute=Recorder())
    assert SESSION.changes == []
