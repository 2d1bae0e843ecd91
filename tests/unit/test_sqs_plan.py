"""opslib.aws.sqs.plan and .verify: the plan's strategy, settings and warnings; a dry run moves
nothing (on the sandbox's SQS server)."""

from __future__ import annotations

import pytest

from opslib.aws.sqs import plan as P
from opslib.aws.sqs import target as T
from opslib.aws.sqs import verify as V
from opslib.aws.sqs.move import COPY_ACTION, MoveSettings, Strategy
from opslib.core import executors
from opslib.core.progress import no_progress
from opslib.safety import gate
from tests.unit.sqs_support import counts, make_pair, sqs_client

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    return sqs_client()


def test_dry_run_moves_nothing(sqs, tmp_path):
    dlq, src = make_pair(sqs, 25)
    target = T.preflight(dlq, sqs=sqs)
    plan = P.plan_redrive(target, sqs=sqs)
    assert P.plan_strategy(plan) == "copy"  # moto has no StartMessageMoveTask
    assert plan.changes[0].params["planned_count"] == 25
    assert any("Duplicates possible" in w for w in plan.warnings)
    before = V.before_counts(target, sqs=sqs)
    execute = executors.bind(sqs=sqs, journal_path=tmp_path / "j.jsonl", progress=no_progress)
    assert gate(plan, dry_run=True, approved_by="", execute=execute) is None
    assert gate(plan, dry_run=False, approved_by="", execute=execute) is None
    v = V.verify_redrive(target, plan, None, sqs=sqs, before=before)
    assert (v.moved, v.remaining, v.applied) == (0, 25, False)
    assert counts(sqs, dlq) == (25, 0) and counts(sqs, src) == (0, 0)
    assert not (tmp_path / "j.jsonl").exists()


def test_plan_params_are_the_move_settings(sqs):
    """The change's params are exactly MoveSettings.to_params() (the keys the plan hash has
    always covered), and read back unchanged by the executor's side."""
    dlq, src = make_pair(sqs, 7)
    target = T.preflight(dlq, sqs=sqs)
    plan = P.plan_redrive(target, sqs=sqs, max_messages=5, rate_limit_per_second=2.5)
    change = plan.changes[0]
    assert change.action == COPY_ACTION
    assert sorted(change.params) == sorted(
        [
            "dlq_url",
            "dlq_arn",
            "destination_url",
            "destination_arn",
            "routes",
            "fifo",
            "filter_expression",
            "max_messages",
            "planned_count",
            "rate_limit_per_second",
            "concurrency",
            "strategy",
            "strategy_reason",
        ]
    )
    settings = MoveSettings.from_params(change.params)
    assert settings.to_params() == dict(change.params)
    assert (settings.dlq_url, settings.routes, settings.max_messages) == (
        dlq,
        {target.sources[0].arn: src},
        5,
    )
    assert settings.strategy is Strategy.COPY and P.plan_settings(plan) == settings
    assert P.plan_strategy(P.plan_redrive(T.preflight(make_pair(sqs, 0)[0], sqs=sqs), sqs=sqs)) == (
        Strategy.NONE
    )


def test_plan_warns_when_the_destination_has_its_own_failing_dlq(sqs):
    dlq, _ = make_pair(sqs, 5)
    other_dlq, dest = make_pair(sqs, 3)  # dest's own DLQ holds 3 failures
    target = T.preflight(dlq, dest, sqs=sqs)
    plan = P.plan_redrive(target, sqs=sqs)
    name = other_dlq.rsplit("/", 1)[-1]
    assert any(f"own DLQ {name} already holds 3 message(s)" in w for w in plan.warnings)
    assert plan.changes[0].target.endswith(dest.rsplit("/", 1)[-1])
