"""opslib.aws.sqs.move.copy (with mover, batch, throttle, journal): the copy strategy against
the sandbox's SQS server, with faults injected on the wire by tests/unit/faultproxy.py."""

from __future__ import annotations

import json
import time

import pytest

from opslib.aws.sqs import plan as P
from opslib.aws.sqs import target as T
from opslib.aws.sqs.messages import parse_filter
from opslib.aws.sqs.move import move_messages
from opslib.core.progress import no_progress
from tests.unit.faultproxy import FaultProxy
from tests.unit.sqs_support import (
    attrs,
    body,
    cancel_interrupt,
    counts,
    drain,
    interrupt_after,
    make_pair,
    proxy_client,
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


def test_filter_moves_matching_and_releases_the_rest(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 40)
    r = move_messages(
        dlq,
        src,
        sqs=serial,
        message_filter=parse_filter("error.type == 'Timeout'"),
        concurrency=2,
        journal_path=tmp_path / "j.jsonl",
        progress=no_progress,
    )
    assert (r.moved, r.skipped, r.failed) == (28, 12, 0)
    assert counts(sqs, dlq) == (12, 0)  # skipped ones released at once, not left invisible
    assert counts(sqs, src) == (28, 0)
    assert all(json.loads(m["Body"])["errorType"] == "ValidationError" for m in drain(sqs, dlq))


def test_max_messages_is_a_hard_cap(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 40)
    r = move_messages(
        dlq,
        src,
        sqs=serial,
        max_messages=15,
        concurrency=4,
        journal_path=tmp_path / "j.jsonl",
        progress=no_progress,
    )
    assert r.moved == 15
    assert counts(sqs, dlq) == (25, 0) and counts(sqs, src) == (15, 0)


def test_rate_limit(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 30)
    t = time.monotonic()
    r = move_messages(
        dlq,
        src,
        sqs=serial,
        rate_limit_per_second=20,
        concurrency=4,
        journal_path=tmp_path / "j.jsonl",
        progress=no_progress,
    )
    assert r.moved == 30
    assert time.monotonic() - t >= 1.0  # 30 messages at 20/s: at least 1 s after the first 10


def test_fifo_keeps_group_order(sqs, tmp_path):
    dlq, src = make_pair(sqs, 36, fifo=True, groups=3)
    target = T.preflight(dlq, sqs=sqs)
    plan = P.plan_redrive(target, sqs=sqs, concurrency=8)
    assert plan.changes[0].params["concurrency"] == 1
    assert any("FIFO" in w for w in plan.warnings)
    r = move_messages(
        dlq, src, sqs=sqs, fifo=True, journal_path=tmp_path / "j.jsonl", progress=no_progress
    )
    assert r.moved == 36 and counts(sqs, dlq) == (0, 0)
    moved = drain(sqs, src)
    seqs: dict[str, list[int]] = {}
    for m in moved:
        b = json.loads(m["Body"])
        assert m["Attributes"]["MessageGroupId"] == b["group"]
        seqs.setdefault(b["group"], []).append(b["seq"])
    assert seqs == {f"g{g}": list(range(12)) for g in range(3)}


def test_partial_failures_and_throttling_are_retried_and_counted(sqs, sandbox, tmp_path):
    dlq, src = make_pair(sqs, 60)
    with FaultProxy(
        sandbox.aws_endpoint,
        fail_every={"SendMessageBatch": 7, "DeleteMessageBatch": 5},
        throttle_every={"SendMessageBatch": 4, "ReceiveMessage": 5},
    ) as proxy:
        client = proxy_client(proxy.url)
        r = move_messages(
            dlq,
            src,
            sqs=client,
            concurrency=3,
            journal_path=tmp_path / "j.jsonl",
            progress=no_progress,
        )
    assert proxy.counts["failed_entries:SendMessageBatch"] > 0
    assert proxy.counts["failed_entries:DeleteMessageBatch"] > 0
    assert proxy.counts["throttled:SendMessageBatch"] > 0
    assert r.send_retries >= proxy.counts["failed_entries:SendMessageBatch"]
    assert r.delete_retries >= proxy.counts["failed_entries:DeleteMessageBatch"]
    assert r.throttled >= proxy.counts["throttled:SendMessageBatch"]
    assert (r.moved, r.failed, r.possible_duplicates) == (60, 0, ())
    assert counts(sqs, dlq) == (0, 0)
    assert sorted(json.loads(m["Body"])["id"] for m in drain(sqs, src)) == list(range(60))


def test_ambiguous_sends_are_reported_and_a_rerun_finishes(sqs, serial, sandbox, tmp_path):
    """A send applied server-side but answered 500: the copy may exist twice; it must be reported.

    Then a re-run without faults finishes the job; nothing is lost and every duplicate in the
    destination is one the mover reported.
    """
    dlq, src = make_pair(sqs, 50)
    with FaultProxy(
        sandbox.aws_endpoint,
        ambiguous_every={"SendMessageBatch": 3},
        fail_every={"DeleteMessageBatch": 4},
    ) as proxy:
        client = proxy_client(proxy.url)
        r1 = move_messages(
            dlq,
            src,
            sqs=client,
            concurrency=2,
            journal_path=tmp_path / "j1.jsonl",
            progress=no_progress,
        )
    assert proxy.counts["ambiguous:SendMessageBatch"] > 0
    assert r1.possible_duplicates
    time.sleep(0.1)
    r2 = move_messages(
        dlq,
        src,
        sqs=serial,
        concurrency=2,
        journal_path=tmp_path / "j2.jsonl",
        progress=no_progress,
    )
    assert counts(sqs, dlq) == (0, 0)
    moved = drain(sqs, src)
    ids = [json.loads(m["Body"])["id"] for m in moved]
    assert set(ids) == set(range(50))  # nothing lost
    dup_bodies = {i for i in ids if ids.count(i) > 1}
    # map reported source message ids to bodies through the journal
    reported = set()
    for name in ("j1.jsonl", "j2.jsonl"):
        for rec in read_journal(tmp_path / name):
            if rec["event"] == "end":
                reported |= set(rec["possible_duplicates"])
    sent_bodies = {}
    for m in moved:
        sent_bodies.setdefault(json.loads(m["Body"])["id"], set()).add(m["MessageId"])
    journal_src = {}
    for name in ("j1.jsonl", "j2.jsonl"):
        for rec in read_journal(tmp_path / name):
            if rec["event"] == "sent":
                journal_src[rec["new_id"]] = rec["source_id"]
    for i in dup_bodies:
        sources = {journal_src.get(n) for n in sent_bodies[i]} - {None}
        assert sources & reported, f"message {i} is duplicated but was not reported"
    assert r1.moved + r2.moved <= 50 + len(r1.possible_duplicates)


def test_interrupted_copy_stops_cleanly_and_loses_nothing(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 100)
    previous = interrupt_after(1.5)
    try:
        with pytest.raises(KeyboardInterrupt, match="redrive interrupted after moving"):
            move_messages(
                dlq,
                src,
                sqs=serial,
                rate_limit_per_second=20,
                concurrency=2,
                journal_path=tmp_path / "j.jsonl",
                progress=no_progress,
            )
    finally:
        cancel_interrupt(previous)
    end = read_journal(tmp_path / "j.jsonl")[-1]
    assert end["event"] == "end" and end["interrupted"] is True
    assert 0 < end["moved"] < 100
    in_dlq, in_src = counts(sqs, dlq), counts(sqs, src)
    assert in_src == (end["moved"], 0)
    assert in_dlq == (100 - end["moved"], 0)  # workers finished their batch; nothing held


def test_slow_batches_get_their_visibility_extended(sqs, sandbox, tmp_path):
    """Sends slower than the visibility timeout: the heartbeat keeps the batches invisible, so
    the other worker never receives a message that is being moved (no duplicates)."""
    dlq, src = make_pair(sqs, 20)
    with FaultProxy(sandbox.aws_endpoint, delay={"SendMessageBatch": 3.0}) as proxy:
        client = proxy_client(proxy.url)
        r = move_messages(
            dlq,
            src,
            sqs=client,
            concurrency=2,
            visibility_timeout=2,
            journal_path=tmp_path / "j.jsonl",
            progress=no_progress,
        )
    assert r.visibility_extensions > 0
    assert (r.moved, r.failed, r.possible_duplicates, r.errors) == (20, 0, (), ())
    ids = [json.loads(m["Body"])["id"] for m in drain(sqs, src)]
    assert sorted(ids) == list(range(20))  # each exactly once


def test_trace_header_and_attributes_go_on_the_wire(sqs, sandbox, tmp_path):
    """AWSTraceHeader survives the copy. moto drops system attributes on SendMessageBatch (its
    batch path ignores them), so the check is on the wire: what the mover sent."""
    dlq, src = make_pair(sqs, 0)
    traces = {}
    for i in range(12):
        trace = f"Root=1-5759e988-bd862e3fe1be46a99427{i:04d};Sampled=1"
        mid = sqs.send_message(
            QueueUrl=dlq,
            MessageBody=body(i),
            MessageAttributes=attrs(i),
            MessageSystemAttributes={
                "AWSTraceHeader": {"DataType": "String", "StringValue": trace}
            },
        )["MessageId"]
        traces[body(i)] = trace
    with FaultProxy(sandbox.aws_endpoint, record=("SendMessageBatch",)) as proxy:
        r = move_messages(
            dlq,
            src,
            sqs=proxy_client(proxy.url),
            concurrency=1,
            journal_path=tmp_path / "j.jsonl",
            progress=no_progress,
        )
    assert r.moved == 12 and mid
    entries = [e for op, req in proxy.requests for e in req["Entries"]]
    assert len(entries) == 12
    for e in entries:
        assert (
            e["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"]
            == traces[e["MessageBody"]]
        )
        i = json.loads(e["MessageBody"])["id"]
        assert e["MessageAttributes"]["tenant"] == attrs(i)["tenant"]
