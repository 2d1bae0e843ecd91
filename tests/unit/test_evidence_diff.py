"""`opslib evidence diff A B`: changed parameters, results and findings; ids and times ignored."""

from __future__ import annotations

import datetime as dt

from nbformat.v4 import new_code_cell, new_notebook, new_output

from opslib.cli import main
from opslib.core.recorder import RESULT_MIME
from opslib.evidence.bundle import write_bundle
from opslib.evidence.diff import diff_records


def rec(**results):
    base = {
        "runbook": "latency-triage",
        "run_id": "a1",
        "status": "succeeded",
        "started": "2026-11-23T10:00:00Z",
    }
    params = results.pop("params", {"threshold_ms": 500, "window_minutes": 60})
    return {**base, "parameters": params, "results": results}


FIND_A = [
    {"severity": "critical", "title": "p99 812 ms over 500 ms for 14 min", "source": "alb"},
    {"severity": "warning", "title": "2 root blockers", "source": "postgres"},
]
FIND_B = [
    {"severity": "warning", "title": "p99 640 ms over 500 ms for 3 min", "source": "alb"},
    {"severity": "warning", "title": "3 pods restarting", "source": "k8s"},
]


def test_changed_new_resolved_and_severity():
    a = rec(
        p99_ms=812,
        verdict="db locks",
        findings=FIND_A,
        plan_hash="aa",
        restored_at="2026-11-23T10:05:00Z",
    )
    b = rec(
        params={"threshold_ms": 400, "window_minutes": 60},
        p99_ms=640,
        verdict="db locks",
        findings=FIND_B,
        plan_hash="bb",
        restored_at="2026-11-23T11:05:00Z",
    )
    b["run_id"], b["started"] = "b2", "2026-11-23T11:00:00Z"
    d = diff_records(a, b)
    assert [(c.name, c.before, c.after) for c in d.parameters] == [("threshold_ms", 500, 400)]
    assert [(c.name, c.before, c.after) for c in d.results] == [("p99_ms", 812, 640)]
    kinds = {(f.kind, f.source) for f in d.findings}
    assert kinds == {("new", "k8s"), ("resolved", "postgres"), ("severity", "alb")}
    text = d.to_text()
    assert (
        "severity critical -> warning" in text
        and "plan_hash" not in text
        and "restored_at" not in text
    )


def test_identical_runs_have_no_difference():
    a, b = rec(p99_ms=1, run_uuid="x"), rec(p99_ms=1, run_uuid="y")
    b["run_id"] = "other"
    d = diff_records(a, b)
    assert d.empty and "no differences" in d.to_text()


def _bundle(ev, n, value):
    cell = new_code_cell("x", execution_count=1)
    cell.outputs = [
        new_output(
            "display_data",
            data={RESULT_MIME: {"name": "remaining", "value": value}, "text/plain": ""},
        )
    ]
    t = dt.datetime(2026, 11, 23, 10, n, tzinfo=dt.UTC)
    return write_bundle(
        new_notebook(cells=[cell]),
        runbook="dlq",
        run_id=f"r{n}",
        started=t,
        finished=t,
        status="succeeded",
        evidence_dir=ev,
        parameters={"max_messages": n},
    )


def test_cli_diff_of_two_bundles(evidence_dir, capsys):
    a, b = _bundle(evidence_dir, 1, 120), _bundle(evidence_dir, 2, 0)
    assert main(["evidence", "diff", a.location, b.location]) == 0
    out = capsys.readouterr().out
    assert "max_messages: 1 -> 2" in out and "remaining: 120 -> 0" in out
