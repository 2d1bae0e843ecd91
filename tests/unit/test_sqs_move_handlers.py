"""opslib.aws.sqs.move.handlers: the registered executors perform a planned copy through
opslib.safety.gate (on the sandbox's SQS server, through a serializing proxy)."""

from __future__ import annotations

import json

import pytest

from opslib.aws.sqs import plan as P
from opslib.aws.sqs import target as T
from opslib.aws.sqs import verify as V
from opslib.aws.sqs.move import ACTIONS, COPY_ACTION, NATIVE_ACTION
from opslib.core import executors
from opslib.core.plans import ChangeStatus
from opslib.core.progress import no_progress
from opslib.safety import gate
from tests.unit.sqs_support import (
    attrs,
    drain,
    make_pair,
    read_journal,
    serial_client,
    sqs_client,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    return sqs_client()


@pytest.fixture(scope="module")
def serial(sandbox):
    yield from serial_client(sandbox)


def test_the_plan_actions_are_registered():
    assert set(ACTIONS) == {COPY_ACTION, NATIVE_ACTION}
    assert set(ACTIONS) <= set(executors.registered())


def test_move_keeps_attributes_and_journals_every_id(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 40)
    target = T.preflight(dlq, sqs=sqs)
    plan = P.plan_redrive(target, sqs=sqs, concurrency=3)
    before = V.before_counts(target, sqs=sqs)
    path = tmp_path / "attachments" / "redrive-journal.jsonl"
    path.parent.mkdir()
    result = gate(
        plan,
        dry_run=False,
        approved_by="tester",
        execute=executors.bind(sqs=serial, journal_path=path, progress=no_progress),
    )
    assert result.outcomes[0].status is ChangeStatus.APPLIED
    v = V.verify_redrive(target, plan, result, sqs=sqs, before=before)
    assert (v.moved, v.failed, v.skipped, v.remaining, v.possible_duplicates) == (40, 0, 0, 0, ())
    moved = drain(sqs, src)
    assert sorted(json.loads(m["Body"])["id"] for m in moved) == list(range(40))
    for m in moved:
        i = json.loads(m["Body"])["id"]
        got = {
            k: {kk: vv for kk, vv in v.items() if kk in ("DataType", "StringValue", "BinaryValue")}
            for k, v in m["MessageAttributes"].items()
        }
        assert got == attrs(i), f"attributes of message {i} changed"
    journal = read_journal(path)
    sent = {r["source_id"]: r["new_id"] for r in journal if r["event"] == "sent"}
    deleted = {r["source_id"] for r in journal if r["event"] == "deleted"}
    assert len(sent) == 40 and deleted == set(sent)
    assert set(sent.values()) == {m["MessageId"] for m in moved}
    assert journal[0]["event"] == "start" and journal[-1]["event"] == "end"
