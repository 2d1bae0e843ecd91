"""opslib.aws.sqs.move.native: the native strategy (StartMessageMoveTask), on an endpoint with
message move tasks (the fault proxy emulates them on moto)."""

from __future__ import annotations

import time

import pytest

from opslib.aws.sqs import plan as P
from opslib.aws.sqs import target as T
from opslib.aws.sqs.move import NATIVE_ACTION, native_move
from opslib.core import executors
from opslib.core.plans import ChangeStatus
from opslib.core.progress import no_progress
from opslib.safety import gate
from tests.unit.faultproxy import FaultProxy
from tests.unit.sqs_support import (
    cancel_interrupt,
    counts,
    interrupt_after,
    make_pair,
    proxy_client,
    queue_arn,
    read_journal,
    sqs_client,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    return sqs_client()


def test_native_strategy_start_poll_and_cancel(sqs, sandbox, tmp_path):
    """On an endpoint with message move tasks, auto picks native; the task is polled to
    completion; an interrupt cancels it."""
    dlq, src = make_pair(sqs, 40)
    journal = tmp_path / "attachments" / "redrive-journal.jsonl"
    journal.parent.mkdir()
    with FaultProxy(sandbox.aws_endpoint, move_tasks=True) as proxy:
        client = proxy_client(proxy.url)
        target = T.preflight(dlq, sqs=client)
        plan = P.plan_redrive(target, sqs=client)
        assert P.plan_strategy(plan) == "native"
        assert plan.changes[0].action == "sqs:StartMessageMoveTask" == NATIVE_ACTION
        assert P.plan_strategy(P.plan_redrive(target, sqs=client, max_messages=5)) == "copy"
        result = gate(
            plan,
            dry_run=False,
            approved_by="t",
            execute=executors.bind(sqs=client, journal_path=journal, progress=no_progress),
        )
        assert result.outcomes[0].status is ChangeStatus.APPLIED
        assert result.outcomes[0].data["move"]["moved"] == 40
        assert counts(sqs, dlq) == (0, 0) and counts(sqs, src) == (40, 0)
        records = read_journal(journal)
        assert records[0]["event"] == "start" and records[0]["task_handle"]

        dlq2, src2 = make_pair(sqs, 100)
        arn = queue_arn(sqs, dlq2)
        previous = interrupt_after(1.0)
        try:
            with pytest.raises(KeyboardInterrupt, match="cancelled"):
                native_move(
                    arn,
                    sqs=client,
                    rate_limit_per_second=20,
                    poll_seconds=0.2,
                    journal_path=tmp_path / "n.jsonl",
                    progress=no_progress,
                )
        finally:
            cancel_interrupt(previous)
        assert proxy.counts["call:CancelMessageMoveTask"] == 1
        task = next(t for t in proxy.tasks.values() if t["SourceArn"] == arn)
        assert task["Status"] == "CANCELLED"
        time.sleep(1)  # let the emulated task finish its current batch
        moved = counts(sqs, src2)[0]
        assert 0 < moved < 100 and counts(sqs, dlq2)[0] + moved == 100


def test_native_move_wait_is_bounded_and_cancels_without_loss(sqs, sandbox, tmp_path):
    """A move task still running after timeout_s is cancelled: an error says so, the journal
    records why, and every message is in the DLQ or the source (nothing lost)."""
    dlq, src = make_pair(sqs, 100)
    arn = queue_arn(sqs, dlq)
    with FaultProxy(sandbox.aws_endpoint, move_tasks=True) as proxy:
        result = native_move(
            arn,
            sqs=proxy_client(proxy.url),
            rate_limit_per_second=20,
            poll_seconds=0.2,
            timeout_s=0.5,
            journal_path=tmp_path / "t.jsonl",
            progress=no_progress,
        )
        assert proxy.counts["call:CancelMessageMoveTask"] == 1
    assert any("still running after" in e for e in result.errors)
    journal = read_journal(tmp_path / "t.jsonl")
    assert any(j.get("event") == "cancelled" and j.get("reason") == "timeout" for j in journal)
    time.sleep(1)  # let the emulated task finish its current batch
    moved = counts(sqs, src)[0]
    assert moved < 100 and counts(sqs, dlq)[0] + moved == 100
