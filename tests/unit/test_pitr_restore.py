"""The pitr-restore flow: parameter checks, the engine registry, the executor, the outcomes."""

from __future__ import annotations

import datetime as dt

import pytest

from opslib.core import executors
from opslib.core.errors import (
    BadInputError,
    PreflightError,
    RestoreFailedError,
    SecretInParameterError,
)
from opslib.core.plans import ApplyResult, Approval, Change, ChangeOutcome, ChangeStatus, Plan
from opslib.runbooks import pitr_restore
from opslib.runbooks.pitr_restore import Engine, RestoreStatus, StepStatus, engines

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def test_parse_restore_time():
    assert pitr_restore.parse_restore_time("latest", now=NOW) is None
    assert pitr_restore.parse_restore_time("", now=NOW) is None
    z = pitr_restore.parse_restore_time("2026-11-23T10:00:00Z", now=NOW)
    assert z == dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    assert pitr_restore.parse_restore_time("2026-11-23T10:00:00", now=NOW) == z  # naive = UTC
    assert pitr_restore.parse_restore_time("2026-11-23T11:00:00+01:00", now=NOW) == z
    with pytest.raises(BadInputError, match="not an ISO 8601"):
        pitr_restore.parse_restore_time("yesterday at noon", now=NOW)
    with pytest.raises(PreflightError, match="in the future"):
        pitr_restore.parse_restore_time("2026-11-23T12:00:01Z", now=NOW)


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
            {"engine": "dynamodb", "source": "tbl", "cutover_secret": "s"},
            BadInputError,
            "aurora/rds endpoints only",
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
def test_inputs_refuse_bad_input(params, error, match):
    with pytest.raises(error, match=match) as info:
        pitr_restore.inputs(**params)
    assert info.value.exit_code == 2


def test_inputs_defaults():
    req = pitr_restore.inputs(engine="Aurora", source="fintech-cluster")
    assert req.engine is Engine.AURORA and req.restore_time is None
    assert (
        req.target.startswith("fintech-cluster-recovery-")
        and len(req.target) == len("fintech-cluster-recovery-") + 12
    )
    assert req.timeout_s == 3600


def test_every_engine_is_registered_once_with_its_actions():
    assert engines.names() == ("aurora", "rds", "dynamodb", "postgres")
    assert {e.engine for e in engines.registered()} == set(Engine)
    for impl in engines.registered():
        assert engines.get(impl.engine) is impl and engines.get(impl.engine.value.upper()) is impl
        assert impl.actions and all(a in executors.registered() for a in impl.actions)
    assert [e.engine.value for e in engines.registered() if e.supports_cutover] == ["aurora", "rds"]
    with pytest.raises(BadInputError, match="aurora = Aurora cluster, rds = RDS instance"):
        engines.get("oracle")


def _preflight(engine: str = "dynamodb", **kw) -> pitr_restore.Preflight:
    req = pitr_restore.inputs(engine=engine, source="orders", target="orders-rec", **kw)
    return pitr_restore.Preflight(req, None, req.target, None, None, NOW, ())  # type: ignore[arg-type]


def _result(*outcomes: ChangeOutcome) -> ApplyResult:
    approval = Approval("alice", "h", "2026-11-23T12:00:00Z")
    return ApplyResult("h", approval, outcomes)


def test_executor_refuses_actions_the_engine_does_not_plan():
    pre = _preflight()
    ex = pitr_restore.executor(pre, clients=pitr_restore.RestoreClients())
    with pytest.raises(executors.UnknownActionError, match="not one this runbook performs"):
        ex(Change("rds:DeleteDBCluster", "orders", "delete"))
    assert len(ex.errors) == 1 and ex.started > 0
    out = ex(Change("dynamodb:DeleteTable", "orders-rec", "delete", {"TableName": "orders-rec"}))
    assert out.status is ChangeStatus.FAILED and "no dynamodb client" in out.detail


def test_delete_handlers_refuse_the_source():
    pre = _preflight()
    ex = pitr_restore.executor(pre, clients=pitr_restore.RestoreClients(dynamodb=object()))  # type: ignore[arg-type]
    with pytest.raises(PreflightError, match="Refusing to delete the source orders"):
        ex(Change("dynamodb:DeleteTable", "orders", "delete", {"TableName": "orders"}))


def test_outcome_statuses_and_failures():
    pre = _preflight()
    plan = Plan("p", (Change("dynamodb:RestoreTableToPointInTime", "orders-rec", "restore"),))
    ex = pitr_restore.executor(pre, clients=pitr_restore.RestoreClients())
    dry = pitr_restore.outcome(pre, plan, None, executor=ex, dry_run=True)
    assert dry.status is RestoreStatus.DRY_RUN and not dry.restored
    waiting = pitr_restore.outcome(pre, plan, None, executor=ex, dry_run=False)
    assert waiting.status is RestoreStatus.NOT_APPROVED and waiting.plan_hash == plan.digest()
    assert pitr_restore.endpoint(waiting) == "" and pitr_restore.next_steps(pre, waiting)[
        0
    ].startswith("Nothing was restored")
    failed = _result(
        ChangeOutcome(plan.changes[0].action, "orders-rec", ChangeStatus.FAILED, "boom")
    )
    with pytest.raises(RestoreFailedError, match="failed: boom") as err:
        pitr_restore.outcome(pre, plan, failed, executor=ex, dry_run=False)
    assert "Created so far: nothing" in str(err.value)


def test_step_outcomes_and_final_status():
    pre = _preflight(drill=True)
    empty = Plan("nothing")
    assert (
        pitr_restore.cleanup_outcome(pre, empty, None, dry_run=False).status
        is StepStatus.NOTHING_TO_DO
    )
    one = Plan("x", (Change("dynamodb:DeleteTable", "orders-rec", "delete"),))
    assert pitr_restore.cleanup_outcome(pre, one, None, dry_run=True).status is StepStatus.DRY_RUN
    ok = _result(ChangeOutcome("dynamodb:DeleteTable", "orders-rec", ChangeStatus.APPLIED))
    cleaned = pitr_restore.cleanup_outcome(pre, one, ok, dry_run=False)
    assert cleaned.applied
    with pytest.raises(RestoreFailedError, match="may still exist"):
        bad = _result(ChangeOutcome("dynamodb:DeleteTable", "orders-rec", ChangeStatus.FAILED, "x"))
        pitr_restore.cleanup_outcome(pre, one, bad, dry_run=False)
    with pytest.raises(RestoreFailedError, match="previous secret version is still current"):
        bad = _result(ChangeOutcome("secretsmanager:PutSecretValue", "s", ChangeStatus.FAILED, "x"))
        pitr_restore.cutover_outcome(one, bad, dry_run=False)
    restored = pitr_restore.RestoreOutcome(Engine.DYNAMODB, RestoreStatus.RESTORED, "orders-rec")
    validated = pitr_restore.Validation(RestoreStatus.VALIDATED, "item counts")
    assert pitr_restore.final_status(restored, validated, cleaned) == "validated_drill_cleaned"
    assert pitr_restore.final_status(restored, validated, None) == "validated"
    dry = pitr_restore.RestoreOutcome(Engine.DYNAMODB, RestoreStatus.DRY_RUN, "orders-rec")
    assert pitr_restore.final_status(dry, validated) == "dry_run"
