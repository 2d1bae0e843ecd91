"""Interactive pieces: approval buttons apply only on a click and only once; choices; progress.

The approval and choice widgets are exercised twice: directly (clicking the ipywidgets buttons
from Python) and inside a real IPython kernel started with jupyter_client, where
:func:`opslib.safety.gate` must pick the interactive path on its own.
"""

from __future__ import annotations

import getpass
import json
import os
import textwrap

import pytest

from opslib import interactive
from opslib.core.errors import BadInputError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.recorder import SESSION


def _plan(n: int = 2) -> Plan:
    return Plan(
        title="create buckets",
        changes=tuple(
            Change("s3:CreateBucket", f"bucket-{i}", "new empty bucket") for i in range(n)
        ),
    )


class Executor:
    def __init__(self, fail_on: str = ""):
        self.calls: list[str] = []
        self.fail_on = fail_on

    def __call__(self, change: Change) -> ChangeOutcome:
        self.calls.append(change.target)
        if change.target == self.fail_on:
            raise RuntimeError(f"boom on {change.target}")
        return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, "created")


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    SESSION.reset()
    interactive._PENDING.clear()
    interactive._PANELS.clear()
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    yield
    SESSION.reset()
    interactive._PENDING.clear()


@pytest.fixture
def as_interactive(monkeypatch):
    """Make is_headless() report a JupyterLab kernel (the real-kernel test below checks the real thing)."""
    monkeypatch.delenv("OPSLIB_HEADLESS", raising=False)
    monkeypatch.setattr("opslib.core.runtime.is_headless", lambda: False)


def test_nothing_applies_before_the_click_then_one_click_applies_once(as_interactive):
    ex = Executor()
    applied = []
    panel = interactive.approval_buttons(
        _plan(), change_ticket="CHG-7", execute=ex, on_applied=applied.append
    )
    assert panel is not None and panel.state == "pending"
    assert ex.calls == [] and SESSION.approvals == [] and SESSION.changes == []
    assert "Waiting for approval" in panel.status.value

    panel.approve_button.click()
    assert ex.calls == ["bucket-0", "bucket-1"]
    assert panel.state == "applied"
    assert panel.approve_button.disabled and panel.cancel_button.disabled
    (approval,) = SESSION.approvals
    assert approval["approver"] == getpass.getuser()
    assert approval["via"] == "button"
    assert approval["plan_hash"] == _plan().digest()
    assert approval["change_ticket"] == "CHG-7"
    assert approval["approved_at"].endswith("Z")
    assert [c["status"] for c in SESSION.changes] == ["applied", "applied"]
    assert len(applied) == 1 and applied[0].applied == 2
    assert "Applied 2 change(s), 0 failed." in panel.status.value

    # a second click (queued before the browser saw the disabled state) does nothing
    panel.approve_button.click()
    panel.cancel_button.click()
    assert ex.calls == ["bucket-0", "bucket-1"] and len(SESSION.approvals) == 1
    assert panel.state == "applied"


def test_applied_gives_the_click_result_for_that_plan_only(as_interactive):
    panel = interactive.approval_buttons(_plan(1), execute=Executor())
    assert interactive.applied(_plan(1)) is None  # not clicked yet
    panel.approve_button.click()
    assert interactive.applied(_plan(1)) is panel.result and panel.result.applied == 1
    assert interactive.applied(_plan(2)) is None
    cancelled = interactive.approval_buttons(_plan(2), execute=Executor())
    cancelled.cancel_button.click()
    assert interactive.applied(_plan(2)) is None


def test_jupyterhub_user_is_the_approver(as_interactive, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_USER", "oncall-alice")
    panel = interactive.approval_buttons(_plan(1), execute=Executor())
    assert "oncall-alice" in panel.status.value
    panel.approve_button.click()
    assert SESSION.approvals[0]["approver"] == "oncall-alice"


def test_cancel_records_nothing_and_says_so(as_interactive, capsys):
    ex = Executor()
    panel = interactive.approval_buttons(_plan(), execute=ex)
    panel.cancel_button.click()
    assert panel.state == "cancelled"
    assert ex.calls == [] and SESSION.approvals == [] and SESSION.changes == []
    assert "nothing applied, no approval recorded" in panel.status.value
    panel.approve_button.click()
    assert ex.calls == [] and SESSION.approvals == []


def test_failed_change_is_shown_and_recorded(as_interactive):
    ex = Executor(fail_on="bucket-0")
    panel = interactive.approval_buttons(_plan(2), execute=ex)
    panel.approve_button.click()
    assert panel.state == "failed"
    assert [c["status"] for c in SESSION.changes] == ["failed", "skipped"]
    assert "1 failed" in panel.status.value


def test_error_in_on_applied_is_raised_not_swallowed(as_interactive):
    def broken(_result):
        raise ValueError("chart failed")

    panel = interactive.approval_buttons(_plan(1), execute=Executor(), on_applied=broken)
    # outside a kernel the Output context does not swallow: the error reaches the caller
    with pytest.raises(ValueError, match="chart failed"):
        panel.approve()
    assert panel.state == "failed"
    assert "chart failed" in panel.status.value
    assert len(SESSION.approvals) == 1


def test_a_newer_panel_supersedes_older_pending_ones(as_interactive):
    ex = Executor()
    old = interactive.approval_buttons(_plan(), execute=ex)
    new = interactive.approval_buttons(_plan(), execute=ex)
    assert old.state == "superseded" and old.approve_button.disabled
    old.approve_button.click()
    assert ex.calls == []
    new.approve_button.click()
    assert ex.calls == ["bucket-0", "bucket-1"] and len(SESSION.approvals) == 1


def test_panels_for_different_steps_stay_live(as_interactive):
    ex = Executor()
    first = interactive.approval_buttons(_plan(1), execute=ex)
    other = Plan("restore to a new instance", (Change("rds:Restore", "db-new", "new instance"),))
    second = interactive.approval_buttons(other, execute=ex)
    assert first.state == "pending" and second.state == "pending"
    first.approve_button.click()
    second.approve_button.click()
    assert ex.calls == ["bucket-0", "db-new"]


def test_headless_never_shows_buttons(monkeypatch, capsys):
    monkeypatch.setenv("OPSLIB_HEADLESS", "1")
    assert interactive.approval_buttons(_plan(), execute=Executor()) is None
    assert "NOT APPLIED" in capsys.readouterr().out
    assert SESSION.approvals == []


def test_choose_headless_takes_the_preselection_and_prints_it(monkeypatch, capsys):
    monkeypatch.setenv("OPSLIB_HEADLESS", "1")
    choice = interactive.choose(
        ["g1", "g2", "g3"], selected=["g3", "g1"], description="Message groups"
    )
    assert choice.value == ("g1", "g3")  # options order
    assert "Message groups: g1, g3 (2 of 3)" in capsys.readouterr().out
    assert choice.final() == ("g1", "g3")
    assert "Chosen Message groups: g1, g3" in capsys.readouterr().out


def test_choose_refuses_a_preselection_that_is_not_an_option(monkeypatch):
    monkeypatch.setenv("OPSLIB_HEADLESS", "1")
    with pytest.raises(BadInputError, match="g9 is not among the options"):
        interactive.choose(["g1", "g2"], selected=["g9"], description="Message groups")


def test_choose_defaults_to_nothing_selected(monkeypatch):
    monkeypatch.setenv("OPSLIB_HEADLESS", "1")
    assert (
        interactive.choose([("pid 1 (app)", 1), ("pid 2", 2)], description="Terminate").value == ()
    )


def test_choose_interactive_reads_the_widget_when_asked(as_interactive, capsys):
    choice = interactive.choose(
        [("pid 10", 10), ("pid 11", 11)], selected=[10], description="Terminate"
    )
    kind, boxes = choice._widgets
    assert kind == "checkboxes" and [b.value for b in boxes] == [True, False]
    assert choice.value == (10,)
    boxes[0].value = False
    boxes[1].value = True
    assert choice.value == (11,)
    assert choice.final() == (11,)
    assert "Chosen Terminate: pid 11 (1 of 2)" in capsys.readouterr().out


def test_choose_interactive_long_lists_and_single_choice(as_interactive):
    many = [f"r{i}" for i in range(40)]
    multi = interactive.choose(many, selected=["r5"], description="Idle resources")
    assert multi._widgets[0] == "multi" and multi.value == ("r5",)
    multi._widgets[1].value = ("r1", "r2")
    assert multi.value == ("r1", "r2")
    single = interactive.choose(["all", "by-group"], selected="by-group", description="Filter")
    assert single._widgets[0] == "single" and single.value == "by-group"
    single._widgets[1].value = "all"
    assert single.value == "all"


KERNEL_CODE = textwrap.dedent(
    """
    import json
    from opslib import interactive
    from opslib.core.recorder import SESSION
    from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
    from opslib.safety import gate
    calls = []
    def ex(change):
        calls.append(change.target)
        return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, "ok")
    plan = Plan("demo", (Change("s3:CreateBucket", "b1", "new bucket"),))
    r = gate(plan, dry_run=False, approved_by="", execute=ex)
    """
)


def _run(kc, code: str, timeout: float = 30) -> list[dict]:
    """Execute ``code`` in the kernel; return its iopub messages (bounded wait)."""
    msg_id = kc.execute(code)
    msgs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msgs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return msgs


def _stdout(msgs) -> str:
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")


def test_gate_in_a_real_kernel_shows_buttons_and_applies_only_on_click():
    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if k not in ("OPSLIB_HEADLESS", "JUPYTERHUB_USER")}
    km, kc = start_new_kernel(kernel_name="python3", env=env, startup_timeout=60)
    try:
        msgs = _run(kc, KERNEL_CODE)
        errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
        assert not errors, errors
        widget_views = [
            m
            for m in msgs
            if m["msg_type"] == "display_data"
            and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
        ]
        assert len(widget_views) == 1, (
            "gate() must show the approval panel in an interactive kernel"
        )
        state = _run(
            kc, "print(json.dumps({'r': r, 'calls': calls, 'approvals': SESSION.approvals}))"
        )
        assert json.loads(_stdout(state)) == {"r": None, "calls": [], "approvals": []}

        _run(kc, "interactive._PENDING[-1].approve_button.click()")
        after = _run(
            kc,
            "print(json.dumps({'calls': calls, 'approvals': SESSION.approvals, "
            "'changes': [c['status'] for c in SESSION.changes]}))",
        )
        got = json.loads(_stdout(after))
        assert got["calls"] == ["b1"] and got["changes"] == ["applied"]
        assert got["approvals"][0]["via"] == "button"
        assert got["approvals"][0]["approver"] == getpass.getuser()

        # headless kernels (papermill, nbval) never show buttons
        headless = _run(
            kc,
            "import os; os.environ['OPSLIB_HEADLESS'] = '1'\n"
            "r2 = gate(plan, dry_run=False, approved_by='', execute=ex)\nprint(calls)",
        )
        assert "NOT APPLIED" in _stdout(headless) and "['b1']" in _stdout(headless)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
