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
