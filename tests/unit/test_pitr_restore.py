"""The pitr-restore flow: parameter checks, the engine registry, the executor, the outcomes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

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
    kinds = [(e.engine.value, e.source_kind.value) for e in engines.registered()]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) >= {("aurora", "snapshot"), ("rds", "snapshot"), ("dynamodb", "backup")}
    for impl in engines.registered():
        assert engines.get(impl.engine, impl.source_kind) is impl
        assert engines.get(impl.engine.value.upper(), impl.source_kind) is impl
        assert impl.actions and all(a in executors.registered() for a in impl.actions)
    assert [e.engine.value for e in engines.registered() if e.supports_cutover] == [
        "aurora", "rds", "aurora", "rds",
    ]  # fmt: skip
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


def test_restore_time_accepts_epoch_seconds_as_text_or_number():
    """The procedure's ``--restore-date-time 1705929600``: papermill/YAML pass it as an int."""
    want = dt.datetime(2024, 1, 22, 13, 20, tzinfo=dt.UTC)
    assert pitr_restore.parse_restore_time("1705929600", now=NOW) == want
    assert pitr_restore.parse_restore_time(1705929600, now=NOW) == want
    assert pitr_restore.parse_restore_time(" 1705929600.5 ", now=NOW) == want.replace(
        microsecond=500000
    )
    with pytest.raises(BadInputError, match="epoch milliseconds") as info:
        pitr_restore.parse_restore_time("1705929600000", now=NOW)
    assert info.value.exit_code == 2 and "1705929600" in str(info.value)
    with pytest.raises(PreflightError, match="in the future"):
        pitr_restore.parse_restore_time(int(NOW.timestamp()) + 60, now=NOW)
    req = pitr_restore.inputs(engine="dynamodb", source="orders", restore_time=1705929600)
    assert req.restore_time == want and req.restore_time_param == "1705929600"


def test_window_frame_shows_iso_and_epoch():
    t = dt.datetime(2024, 1, 22, 13, 20, tzinfo=dt.UTC)
    pre = dataclasses.replace(
        _preflight(), earliest=t - dt.timedelta(days=1), latest=NOW, restore_time=t
    )
    frame = pre.window_frame().set_index("point")
    assert frame.loc["restore to", "UTC"] == "2024-01-22T13:20:00Z"
    assert frame.loc["restore to", "epoch seconds"] == "1705929600"


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"engine": "rds", "source": "a", "rpo_minutes": -1}, "rpo_minutes"),
        ({"engine": "rds", "source": "a", "min_retention_days": -1}, "min_retention_days"),
        ({"engine": "aurora", "source": "a", "route53_record": "db.example.com"}, "zone_id/name"),
        ({"engine": "aurora", "source": "a", "route53_record": "zone/x"}, "zone_id/name"),
        (
            {"engine": "dynamodb", "source": "tbl", "route53_record": "Z1ABC/db.example.com"},
            "aurora/rds endpoints only",
        ),
        (
            {"engine": "aurora", "source": "a", "drill": True, "route53_record": "Z1/db.x.com"},
            "drill",
        ),
    ],
)
def test_new_parameters_refuse_bad_input(params, match):
    with pytest.raises(BadInputError, match=match) as info:
        pitr_restore.inputs(**params)
    assert info.value.exit_code == 2


def test_route53_record_is_normalised():
    req = pitr_restore.inputs(engine="aurora", source="a", route53_record="Z0ABC/DB.Example.com")
    assert (req.route53_zone, req.route53_name) == ("Z0ABC", "db.example.com.")
    req = pitr_restore.inputs(
        engine="aurora", source="a", route53_record="/hostedzone/Z0ABC/db.example.com."
    )
    assert req.route53_record == "Z0ABC/db.example.com."


def test_rpo_check_met_missed_and_unknown():
    base = _preflight(rpo_minutes=15)
    base = dataclasses.replace(base, request=dataclasses.replace(base.request, requested_at=NOW))
    fresh = dataclasses.replace(base, latest=NOW - dt.timedelta(minutes=5))
    stale = dataclasses.replace(base, latest=NOW - dt.timedelta(minutes=40))
    ok, missed = pitr_restore.rpo_check(fresh), pitr_restore.rpo_check(stale)
    assert ok.met is True and ok.lag_seconds == 300 and ok.verdict.startswith("RPO 15 min met")
    assert missed.met is False and missed.verdict.startswith("RPO 15 min MISSED")
    assert "40.0 min old" in missed.verdict
    unknown = pitr_restore.rpo_check(dataclasses.replace(base, latest=None))
    assert unknown.met is None and "not checked" in unknown.verdict
    none = pitr_restore.rpo_check(dataclasses.replace(_preflight(), latest=NOW))
    assert none.met is None and none.verdict == "no RPO given"


def test_retention_below_min_retention_days_warns():
    from opslib.runbooks.pitr_restore import CheckResult

    req = pitr_restore.inputs(engine="rds", source="a")
    assert req.min_retention_days == 35
    low = pitr_restore.retention_check(req, (7.0, "automated backups"))
    assert low.result is CheckResult.WARNING and "below min_retention_days=35" in low.detail
    assert pitr_restore.retention_check(req, (35.0, "")).result is CheckResult.OK
    assert pitr_restore.retention_check(req, (None, "n/a")).result is CheckResult.SKIPPED
    off = dataclasses.replace(req, min_retention_days=0)
    assert pitr_restore.retention_check(off, (1.0, "")).result is CheckResult.OK


def test_gated_steps_say_which_approval_applies_them():
    pre = _preflight(drill=True)
    one = Plan("x", (Change("dynamodb:DeleteTable", "orders-rec", "delete"),))
    waiting = pitr_restore.cleanup_outcome(pre, one, None, dry_run=False)
    assert waiting.status is StepStatus.NOT_APPROVED
    assert (
        "approve_drill_cleanup_by" in waiting.detail and "orders-rec still exists" in waiting.detail
    )
    dns = pitr_restore.route53_outcome(one, None, dry_run=True)
    assert dns.status is StepStatus.DRY_RUN and "route53_approved_by" in dns.detail
    with pytest.raises(RestoreFailedError, match="record is as it was"):
        bad = _result(
            ChangeOutcome("route53:ChangeResourceRecordSets", "z", ChangeStatus.FAILED, "x")
        )
        pitr_restore.route53_outcome(one, bad, dry_run=False)


NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "pitr_restore.ipynb"


def _code_cells() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_notebook_shows_every_plan_in_its_own_cell_before_its_gate():
    """Plan cells and gate cells are separate; the drill cleanup has its own approval."""
    cells = _code_cells()
    gates = [c for c in cells if "opslib.safety.gate(" in c]
    assert len(gates) == 4  # restore, secret cutover, Route53, drill cleanup
    for c in gates:
        assert "plan_" not in c and "pitr_restore.plan(" not in c, c
    for plan_fn, plan_var, approval in [
        ("plan(pre)", "restore_plan", "approved_by=approved_by"),
        ("plan_cutover(", "cutover_plan", "approved_by=cutover_approved_by"),
        ("plan_route53(", "dns_plan", "approved_by=route53_approved_by"),
        ("plan_drill_cleanup(", "cleanup_plan", "approved_by=approve_drill_cleanup_by"),
    ]:
        i = next(i for i, c in enumerate(cells) if plan_fn in c)
        g = next(i for i, c in enumerate(cells) if f"gate({plan_var}," in c)
        assert i < g and approval in cells[g], (plan_var, cells[g])
        assert cells[i].strip().endswith(plan_var), f"{plan_var} is not displayed before its gate"


def test_notebook_new_parameters_are_at_the_end_with_safe_defaults():
    from opslib.catalog import read_parameters

    params = read_parameters(NOTEBOOK)
    names = [p.name for p in params]
    assert names[names.index("rto_minutes") + 1 :] == [
        "rpo_minutes",
        "min_retention_days",
        "route53_record",
        "route53_approved_by",
        "approve_drill_cleanup_by",
    ]
    defaults = {p.name: p.default for p in params}
    assert defaults["approve_drill_cleanup_by"] in ('""', "")
    assert defaults["route53_record"] in ('""', "") and defaults["min_retention_days"] in ("35", 35)
