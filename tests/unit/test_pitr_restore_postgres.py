"""The pitr-restore flow on the PostgreSQL engine: dry run, approval, validation, drill cleanup."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest

from opslib.core.errors import NotFoundError, PreflightError
from opslib.pg import pitr
from opslib.runbooks import pitr_restore
from opslib.runbooks.pitr_restore import RestoreStatus
from opslib.runbooks.pitr_restore.engines.postgres import query_cells, source_of
from opslib.safety import gate

pytestmark = pytest.mark.timeout(180)


def test_query_cells_key_by_first_column():
    assert query_cells(["table", "n"], [("a", 1), ("b", 2)]) == {"a.n": 1, "b.n": 2}
    assert query_cells(["n"], [(5,)]) == {"n": 5}
    assert query_cells(["x", "y"], [(1, 2), (1, 3)]) == {
        "row 1.x": 1,
        "row 1.y": 2,
        "row 2.x": 1,
        "row 2.y": 3,
    }


@pytest.fixture
def pg_params(sandbox):
    from opslib import sandbox as sb

    p = dict(sb.presets("pitr-restore"))
    p["pg_target_dir"] = f"{p['pg_target_dir']}-restore-{uuid.uuid4().hex[:6]}"
    yield p
    pitr.remove_target(p["pg_target_dir"])


def restore(pre, plan, cl, *, dry_run: bool, approved_by: str, change_ticket: str = ""):
    """What the notebook's restore cells do: the gate with the flow's executor, then the outcome."""
    ex = pitr_restore.executor(pre, clients=cl)
    result = gate(
        plan, dry_run=dry_run, approved_by=approved_by, change_ticket=change_ticket, execute=ex
    )
    return pitr_restore.outcome(pre, plan, result, executor=ex, dry_run=dry_run)


def test_postgres_flow_dry_run_then_approved_then_drill_cleanup(pg_params):
    req = pitr_restore.inputs(**pg_params, drill=True)
    cl = pitr_restore.connect(req)
    pre = pitr_restore.preflight(req, clients=cl)
    spec = source_of(pre).spec
    assert {c.check for c in pre.checks} >= {
        "base backup",
        "WAL archive",
        "source reachable (read only)",
        "restore time in window",
        "target dir does not exist",
    }
    plan = pitr_restore.plan(pre)
    dry = restore(pre, plan, cl, dry_run=True, approved_by="alice")
    assert dry.status is RestoreStatus.DRY_RUN and not Path(pre.target).exists()
    noapp = restore(pre, plan, cl, dry_run=False, approved_by="")
    assert noapp.status is RestoreStatus.NOT_APPROVED and not Path(pre.target).exists()
    v0 = pitr_restore.validate(pre, dry, clients=cl)
    assert v0.time_to_restore_seconds is None and all(r.target == "(not restored)" for r in v0.rows)

    out = restore(pre, plan, cl, dry_run=False, approved_by="alice", change_ticket="INC-1")
    assert out.status is RestoreStatus.RESTORED and out.approved_by == "alice"
    assert out.port == spec.port and 0 < out.restored_seconds < 120
    val = pitr_restore.validate(pre, out, clients=cl)
    assert val.status is RestoreStatus.VALIDATED and not val.errors
    by = {r.check: r for r in val.rows}
    assert (by["public.payments"].source, by["public.payments"].target) == (0, 500)
    assert by["public.payments"].match is False and by["public.payments"].difference == "+500"
    assert by["public.accounts"].match is True
    assert 0 < val.time_to_restore_seconds < 120
    assert val.time_to_restore_seconds >= out.restored_seconds
    assert list(val.to_frame().columns) == ["check", "source", "target", "match", "difference"]
    # the source was used read-only
    with pytest.raises(Exception, match="read-only"):
        cl.source_conn.execute("delete from payments")
    assert "pg_ctl" in " ".join(pitr_restore.next_steps(pre, out))
    assert pitr_restore.endpoint(out) == f"127.0.0.1:{spec.port}"
    assert pitr_restore.resolved_restore_time(pre) == pg_params["restore_time"]

    cleanup_plan = pitr_restore.plan_drill_cleanup(pre, out)
    assert [c.target for c in cleanup_plan.changes] == [pre.target]
    res = gate(
        cleanup_plan,
        dry_run=False,
        approved_by="alice",
        execute=pitr_restore.executor(pre, clients=cl),
    )
    cleanup = pitr_restore.cleanup_outcome(pre, cleanup_plan, res, dry_run=False)
    assert res.applied == 1 and not Path(pre.target).exists()
    assert pitr_restore.final_status(out, val, cleanup) == "validated_drill_cleaned"


def test_postgres_latest_is_recorded_as_the_end_of_the_archive(pg_params):
    req = pitr_restore.inputs(**{**pg_params, "restore_time": "latest"})
    pre = pitr_restore.preflight(req, clients=pitr_restore.RestoreClients())
    assert pitr_restore.resolved_restore_time(pre).startswith("latest (~")
    assert any(c.check == "source" and c.result == "skipped" for c in pre.checks)


def test_postgres_preflight_refusals(pg_params):
    existing = dict(pg_params, pg_target_dir=str(Path(pg_params["pg_target_dir"]).parent))
    req = pitr_restore.inputs(**existing)
    with pytest.raises(PreflightError, match="already exists"):
        pitr_restore.preflight(req, clients=pitr_restore.connect(req))
    newest = pitr.inspect_wal_archive(pg_params["pg_wal_archive"]).newest_archived_at
    late = dict(pg_params, restore_time=(newest + dt.timedelta(milliseconds=1)).isoformat())
    req = pitr_restore.inputs(**late)  # in the past, but WAL after it is not archived yet
    with pytest.raises(PreflightError, match="pg_switch_wal"):
        pitr_restore.preflight(req, clients=pitr_restore.connect(req))
    early = dict(pg_params, restore_time="2001-01-01T00:00:00Z")
    req = pitr_restore.inputs(**early)
    with pytest.raises(PreflightError, match="before the earliest"):
        pitr_restore.preflight(req, clients=pitr_restore.connect(req))
    missing = dict(pg_params, source=pg_params["source"].replace("payments_db", "no_such_db"))
    with pytest.raises(NotFoundError, match="unreachable"):
        pitr_restore.connect(pitr_restore.inputs(**missing))
    assert not Path(pg_params["pg_target_dir"]).exists()
    assert os.path.isdir(pg_params["pg_base_backup"])
