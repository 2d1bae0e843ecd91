"""The restore flow: parameter checks, preflight refusals, gate, validation, cutover, drill cleanup."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest

from opslib import clients, restore
from opslib.aws import secrets
from opslib.core.errors import (
    BadInputError,
    NotFoundError,
    OpslibError,
    PreflightError,
    SecretInParameterError,
)
from opslib.pg import pitr
from opslib.restore import RestoreStatus

pytestmark = pytest.mark.timeout(180)
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def test_parse_restore_time():
    assert restore.parse_restore_time("latest", now=NOW) is None
    assert restore.parse_restore_time("", now=NOW) is None
    z = restore.parse_restore_time("2026-11-23T10:00:00Z", now=NOW)
    assert z == dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    assert restore.parse_restore_time("2026-11-23T10:00:00", now=NOW) == z  # naive = UTC
    assert restore.parse_restore_time("2026-11-23T11:00:00+01:00", now=NOW) == z
    with pytest.raises(BadInputError, match="not an ISO 8601"):
        restore.parse_restore_time("yesterday at noon", now=NOW)
    with pytest.raises(PreflightError, match="in the future"):
        restore.parse_restore_time("2026-11-23T12:00:01Z", now=NOW)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"engine": "mysql", "source": "x"}, BadInputError, "not supported"),
        ({"engine": "aurora"}, BadInputError, "source is required"),
        ({"engine": "aurora", "source": "a", "target": "a"}, PreflightError, "never overwrites"),
        (
            {"engine": "aurora", "source": "a", "target": "bad--name"},
            BadInputError,
            "not a valid name",
        ),
        ({"engine": "dynamodb", "source": "t", "target": "x"}, BadInputError, "not a valid name"),
        (
            {"engine": "postgres", "source": "host=h"},
            BadInputError,
            "pg_base_backup, pg_wal_archive, pg_target_dir",
        ),
        (
            {
                "engine": "postgres",
                "source": "host=h password=hunter2",
                "pg_base_backup": "/b",
                "pg_wal_archive": "/w",
                "pg_target_dir": "/t",
            },
            SecretInParameterError,
            "PGPASSWORD",
        ),
        (
            {"engine": "aurora", "source": "a", "drill": True, "cutover_secret": "s"},
            BadInputError,
            "drill",
        ),
        (
            {"engine": "dynamodb", "source": "tbl", "validation_sql": "select 1"},
            BadInputError,
            "item counts",
        ),
        (
            {"engine": "rds", "source": "a", "wait_timeout_minutes": 0},
            BadInputError,
            "wait_timeout_minutes",
        ),
        (
            {"engine": "rds", "source": "a", "restore_time": "2999-01-01T00:00:00Z"},
            PreflightError,
            "future",
        ),
    ],
)
def test_prepare_refuses_bad_input(params, error, match):
    with pytest.raises(error, match=match) as info:
        restore.prepare(**params)
    assert info.value.exit_code == 2


def test_prepare_defaults():
    req = restore.prepare(engine="Aurora", source="fintech-cluster")
    assert req.engine is restore.Engine.AURORA and req.restore_time is None
    assert (
        req.target.startswith("fintech-cluster-recovery-")
        and len(req.target) == len("fintech-cluster-recovery-") + 12
    )
    assert req.timeout_s == 3600


def test_query_cells_key_by_first_column():
    assert restore._query_cells(["table", "n"], [("a", 1), ("b", 2)]) == {"a.n": 1, "b.n": 2}
    assert restore._query_cells(["n"], [(5,)]) == {"n": 5}
    assert restore._query_cells(["x", "y"], [(1, 2), (1, 3)]) == {
        "row 1.x": 1,
        "row 1.y": 2,
        "row 2.x": 1,
        "row 2.y": 3,
    }


def test_secret_cutover_keeps_previous_version(sandbox):
    sm = clients.aws_client("secretsmanager")
    name = f"unit/{uuid.uuid4().hex[:6]}"
    sm.create_secret(
        Name=name,
        SecretString=json.dumps({"host": "old.example", "port": 5432, "password": "pw-x"}),
    )
    plan = secrets.plan_cutover(name, "new.example", secretsmanager=sm)
    change = plan.changes[0]
    assert "old.example -> new.example" in change.effect
    assert "pw-x" not in json.dumps(change.to_dict())  # the secret's content never enters the plan
    out = secrets.execute_cutover(change, secretsmanager=sm)
    cur = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    prev = json.loads(
        sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"]
    )
    assert cur == {"host": "new.example", "port": 5432, "password": "pw-x"}
    assert (
        prev["host"] == "old.example"
        and out.data["previous_version"] == change.params["expected_version"]
    )
    with pytest.raises(OpslibError, match="changed since the plan"):
        secrets.execute_cutover(change, secretsmanager=sm)  # the plan pinned the old version
    with pytest.raises(NotFoundError):
        secrets.plan_cutover("unit/none", "x", secretsmanager=sm)


@pytest.fixture
def pg_params(sandbox):
    from opslib import sandbox as sb

    p = dict(sb.presets("pitr-restore"))
    p["pg_target_dir"] = f"{p['pg_target_dir']}-restore-{uuid.uuid4().hex[:6]}"
    yield p
    pitr.remove_target(p["pg_target_dir"])


def test_postgres_flow_dry_run_then_approved_then_drill_cleanup(pg_params):
    req = restore.prepare(**pg_params, drill=True)
    cl = restore.connect(req)
    pre = restore.preflight(req, clients=cl)
    assert {c[0] for c in pre.checks} >= {
        "base backup",
        "WAL archive",
        "source reachable (read only)",
        "restore time in window",
        "target dir does not exist",
    }
    plan = restore.plan(pre)
    dry = restore.apply(plan, pre, clients=cl, dry_run=True, approved_by="alice")
    assert dry.status is RestoreStatus.DRY_RUN and not Path(pre.target).exists()
    noapp = restore.apply(plan, pre, clients=cl, dry_run=False, approved_by="")
    assert noapp.status is RestoreStatus.NOT_APPROVED and not Path(pre.target).exists()
    v0 = restore.validate(pre, dry, clients=cl)
    assert v0.time_to_restore_seconds is None and all(r.target == "(not restored)" for r in v0.rows)

    out = restore.apply(
        plan, pre, clients=cl, dry_run=False, approved_by="alice", change_ticket="INC-1"
    )
    assert (
        out.status is RestoreStatus.RESTORED
        and out.approved_by == "alice"
        and out.port == pre.pg_spec.port
    )
    val = restore.validate(pre, out, clients=cl)
    assert val.status is RestoreStatus.VALIDATED and not val.errors
    by = {r.check: r for r in val.rows}
    assert (by["public.payments"].source, by["public.payments"].target) == (0, 500)
    assert by["public.payments"].match is False and by["public.payments"].difference == "+500"
    assert by["public.accounts"].match is True
    assert 0 < val.time_to_restore_seconds < 120
    assert list(val.to_frame().columns) == ["check", "source", "target", "match", "difference"]
    # the source was used read-only
    with pytest.raises(Exception, match="read-only"):
        cl.source_conn.execute("delete from payments")
    assert "pg_ctl" in " ".join(restore.next_steps(pre, out))

    cleanup_plan = restore.plan_drill_cleanup(pre, out)
    assert [c.target for c in cleanup_plan.changes] == [pre.target]
    res = restore.apply_cleanup(cleanup_plan, pre, clients=cl, dry_run=False, approved_by="alice")
    assert res.applied == 1 and not Path(pre.target).exists()
    assert restore.final_status(out, val, res) == "validated_drill_cleaned"


def test_postgres_preflight_refusals(pg_params):
    existing = dict(pg_params, pg_target_dir=str(Path(pg_params["pg_target_dir"]).parent))
    req = restore.prepare(**existing)
    with pytest.raises(PreflightError, match="already exists"):
        restore.preflight(req, clients=restore.connect(req))
    newest = pitr.inspect_wal_archive(pg_params["pg_wal_archive"]).newest_archived_at
    late = dict(pg_params, restore_time=(newest + dt.timedelta(milliseconds=1)).isoformat())
    req = restore.prepare(**late)  # in the past, but WAL after it is not archived yet
    with pytest.raises(PreflightError, match="pg_switch_wal"):
        restore.preflight(req, clients=restore.connect(req))
    early = dict(pg_params, restore_time="2001-01-01T00:00:00Z")
    req = restore.prepare(**early)
    with pytest.raises(PreflightError, match="before the earliest"):
        restore.preflight(req, clients=restore.connect(req))
    missing = dict(pg_params, source=pg_params["source"].replace("payments_db", "no_such_db"))
    with pytest.raises(NotFoundError, match="unreachable"):
        restore.connect(restore.prepare(**missing))
    assert not Path(pg_params["pg_target_dir"]).exists()
    assert os.path.isdir(pg_params["pg_base_backup"])
