"""`opslib incident report TICKET`: the runs of one incident in order, Markdown and HTML, a metric chart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from opslib.cli import main
from opslib.core.errors import BadInputError
from opslib.core.recorder import APPROVAL_MIME, CHANGE_MIME, PLAN_MIME, RESULT_MIME
from opslib.evidence.bundle import write_bundle
from opslib.incident import report


def out(mime, payload):
    return new_output("display_data", data={mime: payload, "text/plain": ""})


def run(ev, minute, *, ticket, p99, applied=False, runbook="latency-triage"):
    outputs = [
        out(RESULT_MIME, {"name": "p99_ms", "value": p99}),
        out(
            RESULT_MIME,
            {"name": "verdict", "value": "database lock chain" if p99 > 500 else "recovered"},
        ),
        out(
            RESULT_MIME,
            {"name": "findings", "value": [{"severity": "critical", "title": f"p99 {p99} ms"}]},
        ),
        out(
            PLAN_MIME,
            {
                "title": "terminate root blocker",
                "digest": "d" * 64,
                "changes": [
                    {
                        "action": "pg_terminate_backend",
                        "target": "pid 4242",
                        "effect": "end the blocker",
                    }
                ],
                "decision": "approved" if applied else "dry run",
            },
        ),
    ]
    if applied:
        outputs += [
            out(
                APPROVAL_MIME,
                {
                    "approver": "alice",
                    "plan_hash": "d" * 64,
                    "approved_at": "2026-11-23T10:12:00Z",
                    "change_ticket": ticket,
                    "via": "opslib approve",
                },
            ),
            out(
                CHANGE_MIME,
                {
                    "action": "pg_terminate_backend",
                    "target": "pid 4242",
                    "status": "applied",
                    "detail": "terminated",
                    "finished_at": "2026-11-23T10:12:03Z",
                },
            ),
        ]
    cell = new_code_cell("x", execution_count=1)
    cell.outputs = outputs
    t = dt.datetime(2026, 11, 23, 10, minute, tzinfo=dt.UTC)
    return write_bundle(
        new_notebook(cells=[cell]),
        runbook=runbook,
        run_id=f"r{minute}",
        started=t,
        finished=t + dt.timedelta(seconds=30),
        status="succeeded",
        evidence_dir=ev,
        parameters={"change_ticket": ticket, "dry_run": not applied},
    )


@pytest.fixture
def incident(evidence_dir):
    run(evidence_dir, 10, ticket="INC-42", p99=900)
    run(evidence_dir, 12, ticket="INC-42", p99=880, applied=True)
    run(evidence_dir, 20, ticket="INC-42", p99=210)
    run(evidence_dir, 30, ticket="INC-7", p99=100)
    return evidence_dir


def test_markdown_timeline_in_order_with_approvals_changes_and_metric(incident, tmp_path):
    md = report("INC-42", evidence_dir=str(incident), chart_path=str(tmp_path / "chart.png"))
    assert md.startswith("# Incident INC-42")
    assert "3 run(s)" in md and "3 of 3 bundle(s) verify" in md
    body = md.split("## Runs in order", 1)[1]
    assert body.index("10:10:00") < body.index("10:12:00") < body.index("10:20:00")
    assert "approved by **alice** at 2026-11-23T10:12:00Z" in md
    assert "changed: pg_terminate_backend pid 4242: **applied**" in md
    assert "## p99_ms across the runs" in md and "![p99_ms](chart.png)" in md
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert "INC-7" not in md and "p99 100" not in md


def test_html_holds_the_same_content_and_an_inline_chart(incident, tmp_path):
    assert (
        main(
            [
                "incident",
                "report",
                "INC-42",
                "--evidence-dir",
                str(incident),
                "--format",
                "html",
                "-o",
                str(tmp_path / "r.html"),
            ]
        )
        == 0
    )
    page = (tmp_path / "r.html").read_text()
    assert "<h1>Incident INC-42" in page and "data:image/png;base64," in page
    assert "alice" in page and "pg_terminate_backend" in page


def test_tampered_bundle_is_flagged(incident):
    rec = sorted(Path(incident).glob("latency-triage/*/record.json"))[0]
    rec.write_text(rec.read_text().replace("900", "901"))
    md = report("INC-42", evidence_dir=str(incident))
    assert "2 of 3 bundle(s) verify" in md and "DOES NOT VERIFY" in md


def test_unknown_ticket_exit_2_lists_the_tickets(incident, capsys):
    with pytest.raises(BadInputError, match="INC-42, INC-7"):
        report("INC-99", evidence_dir=str(incident))
    assert main(["incident", "report", "INC-99", "--evidence-dir", str(incident)]) == 2
    assert "INC-42, INC-7" in capsys.readouterr().err
