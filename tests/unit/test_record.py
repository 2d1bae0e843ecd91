"""record.json as a typed RunRecord: the same JSON object, with typed accessors."""

from __future__ import annotations

import json

import pytest

from opslib.evidence.record import EXIT_CODES, RunRecord, RunStatus


def test_run_record_is_the_json_object_with_typed_fields(tmp_path):
    data = {
        "runbook": "dlq-redrive",
        "run_id": "abc123",
        "status": "refused",
        "parameters": {"dlq": "orders-dlq"},
        "results": {"moved": 0},
        "error": {"ename": "NotFoundError", "evalue": "no queue"},
        "approvals": [],
        "changes": [],
    }
    (tmp_path / "record.json").write_text(json.dumps(data))
    rec = RunRecord.load(tmp_path)
    assert rec == data and json.loads(json.dumps(rec)) == data
    assert rec.status is RunStatus.REFUSED and rec.exit_code == 2
    assert rec.results["moved"] == 0 and rec.parameters["dlq"] == "orders-dlq"
    assert rec.error["ename"] == "NotFoundError" and rec.approvals == [] and rec.changes == []


def test_every_status_has_an_exit_code():
    assert set(EXIT_CODES) == set(RunStatus)
    assert EXIT_CODES[RunStatus.SUCCEEDED] == 0


def test_unknown_status_is_refused():
    with pytest.raises(ValueError):
        _ = RunRecord({"status": "maybe"}).status
