"""The demo offers the scenarios' approved runs with complete parameters, on the sandbox only."""

from __future__ import annotations

from opslib.sandbox.demo import DemoRow, DemoRun, scenario_demo_runs


def test_pitr_scenario_offers_approved_restores_to_new_targets(sandbox):
    runs = scenario_demo_runs(str(sandbox.state_dir))
    pitr = [r for r in runs if r.runbook == "pitr-restore"]
    assert {r.label for r in pitr} == {
        "postgres, approved",
        "aurora, approved",
        "dynamodb, approved",
    }
    for r in pitr:
        assert isinstance(r, DemoRun)
        assert r.parameters["dry_run"] is False and r.parameters["approved_by"]
        assert r.parameters["engine"] in {"postgres", "aurora", "dynamodb"}
    targets = {r.parameters.get("target") for r in pitr if r.parameters["engine"] != "postgres"}
    assert "fintech-cluster" not in targets and "fintech-sessions" not in targets
    pg = next(r for r in pitr if r.parameters["engine"] == "postgres")
    assert pg.parameters["pg_target_dir"] and "password" not in pg.parameters["source"]


def test_demo_row_table_columns():
    row = DemoRow("dlq-redrive", "succeeded", "evidence/x.html", "evidence/x")
    assert row.to_dict() == {
        "runbook": "dlq-redrive",
        "status": "succeeded",
        "html": "evidence/x.html",
    }
