"""The backup flow: parameters refused before any client, the plan of a create, the outcome."""

from __future__ import annotations

import pytest

from opslib.core.errors import BadInputError, PreflightError, SecretInParameterError
from opslib.core.plans import Change, Plan
from opslib.runbooks import backup


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "snapshot-all"}, "mode 'snapshot-all'"),
        ({"label": "pre deploy!"}, "label"),
        ({"min_retention_days": 40}, "min_retention_days"),
        ({"rpo_minutes": 0}, "rpo_minutes"),
        ({"wait_timeout_minutes": 0}, "wait_timeout_minutes"),
        ({"mode": "create"}, "create never means 'everything'"),
        ({"mode": "create", "pg_dsn": "host=db"}, "needs pg_backup_dir"),
        ({"pg_backup_dir": "/tmp/x"}, "needs pg_dsn"),
        ({"pg_dsn": "host=db", "pg_backup_dir": "rel/dir"}, "absolute path"),
        ({"mode": "create", "dynamodb_tables": "a,b,c", "max_resources": 2}, "max_resources=2"),
    ],
)
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(BadInputError, match=message):
        backup.inputs(**params)


def test_a_password_in_pg_dsn_is_refused():
    with pytest.raises(SecretInParameterError):
        backup.inputs(pg_dsn="host=db password=hunter2")


def test_a_non_empty_backup_dir_is_refused(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "base.tar").write_text("x")
    with pytest.raises(PreflightError, match="not empty"):
        backup.inputs(mode="create", pg_dsn="host=db", pg_backup_dir=str(tmp_path / "old"))


def test_ids_are_split_and_deduplicated(monkeypatch):
    monkeypatch.setenv("OPSLIB_RUN_ID", "run123")
    inp = backup.inputs(mode="create", aurora_clusters="a, b,,a", dynamodb_tables="t1")
    assert inp.aurora_clusters == ("a", "b") and inp.resource_count == 3 and inp.run_id == "run123"
    assert inp.policy.min_retention_days == 35 and inp.policy.rpo_minutes == 15


def test_outcome_of_a_dry_run_lists_the_planned_names():
    plan = Plan(
        "p",
        (
            Change(
                "rds:CreateDBClusterSnapshot", "c1", "e", {"DBClusterSnapshotIdentifier": "c1-x-1"}
            ),
            Change("dynamodb:CreateBackup", "t1", "e", {"TableName": "t1", "BackupName": "t1-x-1"}),
        ),
    )
    out = backup.create_outcome(plan, None, dry_run=True)
    assert out.status is backup.CreateStatus.DRY_RUN
    assert [r["snapshot_id"] for r in out.records()] == ["c1-x-1", "t1-x-1"]
    assert backup.create_outcome(Plan("empty"), None, dry_run=False).status.value == "nothing_to_do"
