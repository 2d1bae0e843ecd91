"""opslib.aws.sqs / sqs_move against a real SQS server on loopback (the sandbox's moto server).

Each test that moves messages makes its own small queue pair (unique names), so tests do not
depend on each other; faults are injected on the wire by tests/unit/faultproxy.py.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace

import pytest

from opslib.aws import sqs as S
from opslib.aws.sqs_move import journal_open_ids, move_messages, worker_client_factory
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.findings import Severity
from opslib.core.plans import ChangeStatus
from opslib.safety import gate
from tests.unit.faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    from opslib.clients import aws_client

    return aws_client("sqs")


@pytest.fixture(scope="module")
def serial(sandbox):
    """A client through a fault-free, serializing proxy, for concurrent movers.

    moto 5.2.5's SQS backend has no lock around receive/delete, so concurrent calls can deliver
    one message twice or resurrect a deleted one (seen here: 501 moved out of 500); real SQS
    does not. Serializing upstream calls gives the mover SQS's semantics to be tested against.
    """
    with FaultProxy(sandbox.aws_endpoint) as proxy:
        yield _proxy_client(proxy.url)


def body(i: int) -> str:
    if i % 10 < 7:
        return json.dumps({"id": i, "error": {"type": "Timeout"}})
    return json.dumps({"id": i, "errorType": "ValidationError", "errorMessage": f"bad sku {i}"})


def attrs(i: int) -> dict:
    return {
        "tenant": {"DataType": "String", "StringValue": f"t-{i % 3}"},
        "attempt": {"DataType": "Number", "StringValue": str(i)},
        "blob": {"DataType": "Binary", "BinaryValue": bytes([i % 256, 7])},
    }


def make_pair(sqs, n: int, *, fifo: bool = False, groups: int = 3) -> tuple[str, str]:
    """A DLQ with ``n`` messages and a source queue whose redrive policy targets it."""
    tag = uuid.uuid4().hex[:8]
    suffix = ".fifo" if fifo else ""
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"t{tag}-dlq{suffix}", Attributes=extra)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    src = sqs.create_queue(
        QueueName=f"t{tag}{suffix}",
        Attributes=dict(
            extra, RedrivePolicy=json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
        ),
    )["QueueUrl"]
    for start in range(0, n, 10):
        entries = []
        for i in range(start, min(n, start + 10)):
            e = {"Id": str(i - start), "MessageBody": body(i), "MessageAttributes": attrs(i)}
            if fifo:
                g = f"g{i % groups}"
                e.update(
                    MessageGroupId=g,
                    MessageDeduplicationId=f"d{i}",
                    MessageBody=json.dumps({"group": g, "seq": i // groups}),
                )
            entries.append(e)
        assert not sqs.send_message_batch(QueueUrl=dlq, Entries=entries).get("Failed")
    return dlq, src


def drain(sqs, url: str, *, visibility_timeout: int = 60) -> list[dict]:
    """Every message of a queue, in receive order, consumed (for verification only).

    Shared with tests/notebooks/test_dlq_redrive.py; the visibility timeout keeps a slow drain
    from receiving a message twice."""
    out: list[dict] = []
    empty = 0
    while empty < 2:
        msgs = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=visibility_timeout,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not msgs:
            empty += 1
            continue
        empty = 0
        out += msgs
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)
            ],
        )
    return out


def counts(sqs, url: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def read_journal(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ------------------------------------------------------------------------- pure functions


def test_filter_parsing_and_matching():
    assert S.parse_filter("").matches("anything")
    f = S.parse_filter("error.type == 'Timeout'")
    assert f.kind == "jmespath"
    assert f.matches(body(0)) and not f.matches(body(7)) and not f.matches("not json")
    r = S.parse_filter(r"re:bad sku \d+")
    assert r.kind == "regex" and r.matches(body(7)) and not r.matches(body(0))
    with pytest.raises(BadInputError, match="not valid JMESPath"):
        S.parse_filter("error.type == ")
    with pytest.raises(BadInputError, match="does not compile"):
        S.parse_filter("re:([")


def test_error_shape_and_redaction():
    assert S.error_shape(body(0)) == ("{error,id}", "Timeout")
    assert S.error_shape(body(7)) == ("{errorMessage,errorType,id}", "ValidationError")
    assert S.error_shape("upstream 503 at 12:00")[0] == "text: upstream # at #:#"
    shown = S.redact_body(
        json.dumps(
            {
                "card_number": "4111111111111111",
                "note": "pan 4111 1111 1111 1111",
                "password": "hunter22",
                "amount": 5,
            }
        )
    )
    assert "4111" not in shown and "hunter22" not in shown and '"amount":5' in shown


@pytest.mark.parametrize(
    ("visible", "severity"),
    [
        (0, Severity.OK),
        (999, Severity.OK),
        (1_000, Severity.WARNING),
        (9_999, Severity.WARNING),
        (10_000, Severity.CRITICAL),
    ],
)
def test_backlog_thresholds(visible, severity):
    f = S.backlog_finding("q", "source", visible, 0, "")
    assert f.severity is severity


# ------------------------------------------------------------------------- against the server


def test_preflight_refuses_bad_input(sqs):
    dlq, src = make_pair(sqs, 0)
    with pytest.raises(NotFoundError, match="does not exist"):
        S.preflight("no-such-dlq", sqs=sqs)
    with pytest.raises(NotFoundError, match="destination"):
        S.preflight(dlq, "no-such-destination", sqs=sqs)
    with pytest.raises(BadInputError, match="not a dead-letter queue"):
        S.preflight(src, sqs=sqs)
    with pytest.raises(BadInputError, match="JMESPath"):
        S.preflight(dlq, filter_expression="a ==", sqs=sqs)
    fdlq, fsrc = make_pair(sqs, 0, fifo=True)
    with pytest.raises(BadInputError, match="FIFO"):
        S.preflight(fdlq, src, sqs=sqs)
    filtered = S.preflight(dlq, sqs=sqs, filter_expression="id")
    with pytest.raises(BadInputError, match="native"):
        S.choose_strategy(filtered, sqs=sqs, strategy="native")
    target = S.preflight(dlq, sqs=sqs)
    assert [s.url for s in target.sources] == [src] and target.destination is None
    assert target.destination_label == src.rsplit("/", 1)[-1]


def test_sample_reads_without_consuming(sqs):
    dlq, _ = make_pair(sqs, 30)
    target = S.preflight(dlq, sqs=sqs, filter_expression="error.type == 'Timeout'")
    sample = S.sample_messages(target.dlq, sqs=sqs, size=20, message_filter=target.message_filter)
    assert len(sample.messages) == 20
    assert counts(sqs, dlq) == (30, 0)  # released at once, nothing consumed
    shapes = sample.shapes_frame()
    assert set(shapes["error"]) == {"Timeout", "ValidationError"}
    assert shapes["count"].sum() == 20
    assert sample.matched == sum(m.error == "Timeout" for m in sample.messages)
    assert all(m.attribute_names == ("attempt", "blob", "tenant") for m in sample.messages)
    health = S.redrive_health(target, sqs=sqs, sample=sample)
    dlq_row = health.get(target.dlq.name)
    assert dlq_row.visible == 30 and dlq_row.oldest_age_from == "sample"
    assert any(
        f.severity is Severity.INFO and "30 message(s) in the DLQ" in f.title
        for f in health.findings
    )


def test_backlog_warning_at_1000(sqs):
    dlq, src = make_pair(sqs, 0)
    for _ in range(100):
        sqs.send_message_batch(
            QueueUrl=src, Entries=[{"Id": str(j), "MessageBody": "x"} for j in range(10)]
        )
    health = S.redrive_health(S.preflight(dlq, sqs=sqs), sqs=sqs)
    warn = [f for f in health.findings if f.severity is Severity.WARNING and ">= 1,000" in f.title]
    assert warn and warn[0].source.endswith(src.rsplit("/", 1)[-1])
    # the destination has messages and no consumer reading: flagged too
    assert any("no consumer appears to be reading" in f.title for f in health.findings)


def test_dry_run_moves_nothing(sqs):
    dlq, src = make_pair(sqs, 25)
    target = S.preflight(dlq, sqs=sqs)
    plan = S.plan_redrive(target, sqs=sqs)
    assert S.plan_strategy(plan) == "copy"  # moto has no StartMessageMoveTask
    assert plan.changes[0].params["planned_count"] == 25
    assert any("Duplicates possible" in w for w in plan.warnings)
    before = S.before_counts(target, sqs=sqs)
    assert gate(plan, dry_run=True, approved_by="", execute=S.redrive_executor(sqs=sqs)) is None
    assert gate(plan, dry_run=False, approved_by="", execute=S.redrive_executor(sqs=sqs)) is None
    v = S.verify_redrive(target, plan, None, sqs=sqs, before=before)
    assert (v.moved, v.remaining, v.applied) == (0, 25, False)
    assert counts(sqs, dlq) == (25, 0) and counts(sqs, src) == (0, 0)


def test_move_keeps_attributes_and_journals_every_id(sqs, serial, tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLIB_RUN_DIR", str(tmp_path))
    dlq, src = make_pair(sqs, 40)
    target = S.preflight(dlq, sqs=sqs)
    plan = S.plan_redrive(target, sqs=sqs, concurrency=3)
    before = S.before_counts(target, sqs=sqs)
    result = gate(
        plan,
        dry_run=False,
        approved_by="tester",
        execute=S.redrive_executor(sqs=serial, progress=False),
    )
    assert result.outcomes[0].status is ChangeStatus.APPLIED
    v = S.verify_redrive(target, plan, result, sqs=sqs, before=before)
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
    journal = read_journal(tmp_path / "attachments" / "redrive-journal.jsonl")
    sent = {r["source_id"]: r["new_id"] for r in journal if r["event"] == "sent"}
    deleted = {r["source_id"] for r in journal if r["event"] == "deleted"}
    assert len(sent) == 40 and deleted == set(sent)
    assert set(sent.values()) == {m["MessageId"] for m in moved}
    assert journal[0]["event"] == "start" and journal[-1]["event"] == "end"


def test_filter_moves_matching_and_releases_the_rest(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 40)
    r = move_messages(
        dlq,
        src,
        sqs=serial,
        message_filter=S.parse_filter("error.type == 'Timeout'"),
        concurrency=2,
        journal_path=tmp_path / "j.jsonl",
        show_progress=False,
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
        show_progress=False,
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
        show_progress=False,
    )
    assert r.moved == 30
    assert time.monotonic() - t >= 1.0  # 30 messages at 20/s: at least 1 s after the first 10


def test_fifo_keeps_group_order(sqs, tmp_path):
    dlq, src = make_pair(sqs, 36, fifo=True, groups=3)
    target = S.preflight(dlq, sqs=sqs)
    plan = S.plan_redrive(target, sqs=sqs, concurrency=8)
    assert plan.changes[0].params["concurrency"] == 1
    assert any("FIFO" in w for w in plan.warnings)
    r = move_messages(
        dlq, src, sqs=sqs, fifo=True, journal_path=tmp_path / "j.jsonl", show_progress=False
    )
    assert r.moved == 36 and counts(sqs, dlq) == (0, 0)
    moved = drain(sqs, src)
    seqs: dict[str, list[int]] = {}
    for m in moved:
        b = json.loads(m["Body"])
        assert m["Attributes"]["MessageGroupId"] == b["group"]
        seqs.setdefault(b["group"], []).append(b["seq"])
    assert seqs == {f"g{g}": list(range(12)) for g in range(3)}


def _proxy_client(url: str):
    from opslib.clients import aws_config, aws_session

    return aws_session().client("sqs", endpoint_url=url, config=aws_config())


def test_partial_failures_and_throttling_are_retried_and_counted(sqs, sandbox, tmp_path):
    dlq, src = make_pair(sqs, 60)
    with FaultProxy(
        sandbox.aws_endpoint,
        fail_every={"SendMessageBatch": 7, "DeleteMessageBatch": 5},
        throttle_every={"SendMessageBatch": 4, "ReceiveMessage": 5},
    ) as proxy:
        client = _proxy_client(proxy.url)
        r = move_messages(
            dlq,
            src,
            sqs=client,
            concurrency=3,
            journal_path=tmp_path / "j.jsonl",
            show_progress=False,
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
        client = _proxy_client(proxy.url)
        r1 = move_messages(
            dlq,
            src,
            sqs=client,
            concurrency=2,
            journal_path=tmp_path / "j1.jsonl",
            show_progress=False,
        )
    assert proxy.counts["ambiguous:SendMessageBatch"] > 0
    assert r1.possible_duplicates
    time.sleep(0.1)
    r2 = move_messages(
        dlq, src, sqs=serial, concurrency=2, journal_path=tmp_path / "j2.jsonl", show_progress=False
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


def test_not_found_for_missing_queue_by_url(sqs, sandbox):
    with pytest.raises(NotFoundError):
        S.resolve_queue(f"{sandbox.aws_endpoint}/123456789012/nope-{uuid.uuid4().hex[:6]}", sqs=sqs)


def _interrupt_after(seconds: float):
    """Deliver a KeyboardInterrupt to the main thread after ``seconds`` (as Ctrl-C would)."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


def test_interrupted_copy_stops_cleanly_and_loses_nothing(sqs, serial, tmp_path):
    import signal

    dlq, src = make_pair(sqs, 100)
    previous = _interrupt_after(1.5)
    try:
        with pytest.raises(KeyboardInterrupt, match="redrive interrupted after moving"):
            move_messages(
                dlq,
                src,
                sqs=serial,
                rate_limit_per_second=20,
                concurrency=2,
                journal_path=tmp_path / "j.jsonl",
                show_progress=False,
            )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    end = read_journal(tmp_path / "j.jsonl")[-1]
    assert end["event"] == "end" and end["interrupted"] is True
    assert 0 < end["moved"] < 100
    in_dlq, in_src = counts(sqs, dlq), counts(sqs, src)
    assert in_src == (end["moved"], 0)
    assert in_dlq == (100 - end["moved"], 0)  # workers finished their batch; nothing held


def test_native_strategy_start_poll_and_cancel(sqs, sandbox, tmp_path, monkeypatch):
    """On an endpoint with message move tasks (the proxy emulates them on moto), auto picks
    native; the task is polled to completion; an interrupt cancels it."""
    import signal

    from opslib.aws.sqs_move import native_move

    monkeypatch.setenv("OPSLIB_RUN_DIR", str(tmp_path))
    dlq, src = make_pair(sqs, 40)
    with FaultProxy(sandbox.aws_endpoint, move_tasks=True) as proxy:
        client = _proxy_client(proxy.url)
        target = S.preflight(dlq, sqs=client)
        plan = S.plan_redrive(target, sqs=client)
        assert S.plan_strategy(plan) == "native"
        assert plan.changes[0].action == "sqs:StartMessageMoveTask"
        assert S.plan_strategy(S.plan_redrive(target, sqs=client, max_messages=5)) == "copy"
        result = gate(
            plan,
            dry_run=False,
            approved_by="t",
            execute=S.redrive_executor(sqs=client, progress=False),
        )
        assert result.outcomes[0].status is ChangeStatus.APPLIED
        assert result.outcomes[0].data["move"]["moved"] == 40
        assert counts(sqs, dlq) == (0, 0) and counts(sqs, src) == (40, 0)
        journal = read_journal(tmp_path / "attachments" / "redrive-journal.jsonl")
        assert journal[0]["event"] == "start" and journal[0]["task_handle"]

        dlq2, src2 = make_pair(sqs, 100)
        arn = sqs.get_queue_attributes(QueueUrl=dlq2, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        previous = _interrupt_after(1.0)
        try:
            with pytest.raises(KeyboardInterrupt, match="cancelled"):
                native_move(
                    arn,
                    sqs=client,
                    rate_limit_per_second=20,
                    poll_seconds=0.2,
                    journal_path=tmp_path / "n.jsonl",
                    show_progress=False,
                )
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert proxy.counts["call:CancelMessageMoveTask"] == 1
        task = next(t for t in proxy.tasks.values() if t["SourceArn"] == arn)
        assert task["Status"] == "CANCELLED"
        time.sleep(1)  # let the emulated task finish its current batch
        moved = counts(sqs, src2)[0]
        assert 0 < moved < 100 and counts(sqs, dlq2)[0] + moved == 100


def test_slow_batches_get_their_visibility_extended(sqs, sandbox, tmp_path):
    """Sends slower than the visibility timeout: the heartbeat keeps the batches invisible, so
    the other worker never receives a message that is being moved (no duplicates)."""
    dlq, src = make_pair(sqs, 20)
    with FaultProxy(sandbox.aws_endpoint, delay={"SendMessageBatch": 3.0}) as proxy:
        client = _proxy_client(proxy.url)
        r = move_messages(
            dlq,
            src,
            sqs=client,
            concurrency=2,
            visibility_timeout=2,
            journal_path=tmp_path / "j.jsonl",
            show_progress=False,
        )
    assert r.visibility_extensions > 0
    assert (r.moved, r.failed, r.possible_duplicates, r.errors) == (20, 0, (), ())
    ids = [json.loads(m["Body"])["id"] for m in drain(sqs, src)]
    assert sorted(ids) == list(range(20))  # each exactly once


def test_plan_warns_when_the_destination_has_its_own_failing_dlq(sqs):
    dlq, _ = make_pair(sqs, 5)
    other_dlq, dest = make_pair(sqs, 3)  # dest's own DLQ holds 3 failures
    target = S.preflight(dlq, dest, sqs=sqs)
    plan = S.plan_redrive(target, sqs=sqs)
    name = other_dlq.rsplit("/", 1)[-1]
    assert any(f"own DLQ {name} already holds 3 message(s)" in w for w in plan.warnings)
    assert plan.changes[0].target.endswith(dest.rsplit("/", 1)[-1])


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
            sqs=_proxy_client(proxy.url),
            concurrency=1,
            journal_path=tmp_path / "j.jsonl",
            show_progress=False,
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


# ----------------------------------------------------------- worker processes (sqs_factory)


def _via(monkeypatch, client) -> None:
    """Worker processes build their own clients from the environment: point it at ``client``'s
    endpoint (a serializing proxy: moto has no lock around receive/delete)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", client.meta.endpoint_url)


def test_worker_processes_move_everything_and_journal_every_id(sqs, serial, tmp_path, monkeypatch):
    """A standard-queue move with ``sqs_factory`` runs in the parent and a worker process
    (their own clients): nothing lost, attributes kept, one journal written by both."""
    dlq, src = make_pair(sqs, 200)
    _via(monkeypatch, serial)
    path = tmp_path / "j.jsonl"
    r = move_messages(
        dlq,
        src,
        sqs=serial,
        sqs_factory=worker_client_factory(),
        concurrency=4,
        rate_limit_per_second=100,  # ~2 s, so the worker process surely joins in
        journal_path=path,
        show_progress=False,
    )
    assert r.workers.startswith("processes=")
    assert (r.moved, r.failed, r.skipped, r.possible_duplicates, r.errors) == (200, 0, 0, (), ())
    assert counts(sqs, dlq) == (0, 0)
    moved = drain(sqs, src)
    assert sorted(json.loads(m["Body"])["id"] for m in moved) == list(range(200))
    for m in moved:
        i = json.loads(m["Body"])["id"]
        assert m["MessageAttributes"]["tenant"]["StringValue"] == f"t-{i % 3}"
        assert m["MessageAttributes"]["blob"]["BinaryValue"] == bytes([i % 256, 7])
    journal = read_journal(path)  # every line parses: no interleaved writes
    assert journal[0]["event"] == "start" and journal[0]["workers"] == r.workers
    assert journal[-1]["event"] == "end" and journal[-1]["moved"] == 200
    sent = {x["source_id"] for x in journal if x["event"] == "sent"}
    deleted = {x["source_id"] for x in journal if x["event"] == "deleted"}
    assert len(sent) == 200 and sent == deleted and journal_open_ids(path) == set()
    pids = {x["pid"] for x in journal if x["event"] == "sending"}
    assert len(pids) >= 2  # the parent and a worker process both moved batches


def test_worker_processes_retry_partial_failures_and_keep_the_cap(
    sqs, sandbox, tmp_path, monkeypatch
):
    dlq, src = make_pair(sqs, 80)
    with FaultProxy(
        sandbox.aws_endpoint,
        fail_every={"SendMessageBatch": 7, "DeleteMessageBatch": 5},
        throttle_every={"SendMessageBatch": 4, "ReceiveMessage": 5},
    ) as proxy:
        client = _proxy_client(proxy.url)
        _via(monkeypatch, client)
        r = move_messages(
            dlq,
            src,
            sqs=client,
            sqs_factory=worker_client_factory(),
            max_messages=65,
            concurrency=4,
            journal_path=tmp_path / "j.jsonl",
            show_progress=False,
        )
    assert r.workers.startswith("processes=")
    assert proxy.counts["failed_entries:SendMessageBatch"] > 0
    assert proxy.counts["failed_entries:DeleteMessageBatch"] > 0
    assert r.send_retries >= proxy.counts["failed_entries:SendMessageBatch"]
    assert r.delete_retries >= proxy.counts["failed_entries:DeleteMessageBatch"]
    assert r.throttled >= proxy.counts["throttled:SendMessageBatch"] > 0
    assert (r.moved, r.failed, r.possible_duplicates) == (65, 0, ())  # the cap, exactly
    assert counts(sqs, dlq) == (15, 0)
    assert len(drain(sqs, src)) == 65


def test_worker_processes_interrupted_stop_cleanly_and_lose_nothing(
    sqs, serial, tmp_path, monkeypatch
):
    import signal

    dlq, src = make_pair(sqs, 100)
    _via(monkeypatch, serial)
    previous = _interrupt_after(2.5)
    try:
        with pytest.raises(KeyboardInterrupt, match="redrive interrupted after moving"):
            move_messages(
                dlq,
                src,
                sqs=serial,
                sqs_factory=worker_client_factory(),
                rate_limit_per_second=20,
                concurrency=4,
                journal_path=tmp_path / "j.jsonl",
                show_progress=False,
            )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    journal = read_journal(tmp_path / "j.jsonl")
    end = journal[-1]
    assert end["event"] == "end" and end["interrupted"] is True
    assert end["workers"].startswith("processes=")
    assert 0 < end["moved"] < 100
    assert journal_open_ids(tmp_path / "j.jsonl") == set()  # in-flight batches were finished
    assert counts(sqs, src) == (end["moved"], 0)
    assert counts(sqs, dlq) == (100 - end["moved"], 0)


_KILL_SCRIPT = """
import sys
from opslib.aws.sqs_move import move_messages, worker_client_factory
from opslib.clients import aws_client
move_messages(sys.argv[1], sys.argv[2], sqs=aws_client("sqs"), sqs_factory=worker_client_factory(),
              concurrency=4, rate_limit_per_second=60, visibility_timeout=3,
              journal_path=sys.argv[3], show_progress=False)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_worker_processes_parent_sigkilled_then_rerun_finishes(sqs, serial, tmp_path, monkeypatch):
    """Only the parent SIGKILLed: its worker process notices, finishes its in-flight batch and
    exits; every message is in the DLQ or the destination, a copy in both only if the journal
    lists it as open; a re-run moves the rest."""
    import os
    import signal
    import subprocess
    import sys

    dlq, src = make_pair(sqs, 300)
    _via(monkeypatch, serial)
    path = tmp_path / "j.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, dlq, src, str(path)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists() and len({r.get("pid") for r in read_journal(path)} - {None}) >= 2:
                break  # the parent and a worker process are both moving
            time.sleep(0.1)
        else:
            pytest.fail("the worker process never started moving")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # the orphaned worker stops within a batch: the queues then stop changing
    last, stable_since = None, time.monotonic()
    while time.monotonic() - stable_since < 1.5:
        now = (sum(counts(sqs, dlq)), sum(counts(sqs, src)), path.stat().st_size)
        if now != last:
            last, stable_since = now, time.monotonic()
        assert time.monotonic() - deadline < 60, "the queues keep changing after the kill"
        time.sleep(0.2)
    in_dlq, in_src, _ = last
    workers = {r["pid"] for r in read_journal(path) if r.get("pid")} - {proc.pid}
    for pid in workers:  # and then exits: no orphan left behind
        deadline = time.monotonic() + 30
        while _running(pid):
            assert time.monotonic() < deadline, f"worker process {pid} still running"
            time.sleep(0.2)
    open_ids = journal_open_ids(path)
    assert 0 < in_src < 300
    assert 300 <= in_dlq + in_src <= 300 + len(open_ids)  # nothing lost; extra copies journalled
    time.sleep(3.5)  # the killed run's in-flight receipts time out (visibility_timeout=3)
    r = move_messages(
        dlq, src, sqs=serial, concurrency=2, journal_path=tmp_path / "j2.jsonl", show_progress=False
    )
    assert r.failed == 0 and counts(sqs, dlq) == (0, 0)
    ids = [json.loads(m["Body"])["id"] for m in drain(sqs, src)]
    assert set(ids) == set(range(300))
    assert len(ids) - 300 <= len(open_ids)


# ------------------------------------------------------------------------- widget choice (issue 7)


def test_error_selector_selects_exactly_its_error_kind():
    for b in (body(0), body(7), json.dumps({"a": 1, "b": 2}), json.dumps({"errorCode": 500})):
        sel = S.error_selector(b)
        assert S.parse_filter(sel).matches(b), sel
    assert S.error_selector(body(0)) == "error.type == 'Timeout'"
    assert S.error_selector(body(7)) == "errorType == 'ValidationError'"
    assert not S.parse_filter(S.error_selector(body(0))).matches(body(7))
    quoted = json.dumps({"error": "it's `odd`"})
    assert S.parse_filter(S.error_selector(quoted)).matches(quoted)
    assert S.error_selector("not json") == ""


def test_choice_of_everything_gives_the_same_plan_and_hash(sqs):
    """Headless, choose() returns the preselection: the plan must be byte-for-byte today's."""
    dlq, _ = make_pair(sqs, 30)
    for expression in ("", "error.type == 'Timeout'"):
        target = S.preflight(dlq, sqs=sqs, filter_expression=expression)
        sample = S.sample_messages(
            target.dlq, sqs=sqs, size=20, message_filter=target.message_filter
        )
        options, pre, description = S.redrive_selection(target, sample)
        assert description == "Error kinds to redrive"
        assert [k for _label, k in options] == pre
        if expression:
            assert pre == ["error.type == 'Timeout'"]  # only what the filter already selects
        else:
            assert set(pre) == {"error.type == 'Timeout'", "errorType == 'ValidationError'"}
            assert options[0][0].startswith("Timeout (") and "of 20 sampled)" in options[0][0]
        plain = S.plan_redrive(target, sqs=sqs, sample=sample)
        chosen = S.plan_redrive(target, sqs=sqs, sample=sample, only=tuple(pre))
        assert chosen.digest() == plain.digest()
        assert chosen == plain


def test_choice_narrows_the_filter_and_the_move_honours_it(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 30)
    target = S.preflight(dlq, sqs=sqs)
    sample = S.sample_messages(target.dlq, sqs=sqs, size=20)
    plan = S.plan_redrive(target, sqs=sqs, sample=sample, only=["errorType == 'ValidationError'"])
    params = plan.changes[0].params
    assert params["filter_expression"] == "errorType == 'ValidationError'"
    assert params["strategy"] == "copy"
    assert any("Chosen in the widget: only ValidationError" in w for w in plan.warnings)
    assert plan.digest() != S.plan_redrive(target, sqs=sqs, sample=sample).digest()
    r = move_messages(
        dlq,
        src,
        sqs=serial,
        message_filter=S.parse_filter(params["filter_expression"]),
        journal_path=tmp_path / "j.jsonl",
        show_progress=False,
    )
    assert (r.moved, r.skipped) == (9, 21)
    assert all(json.loads(m["Body"]).get("errorType") == "ValidationError" for m in drain(sqs, src))
    # a user filter is ANDed with the choice, never widened by it
    dlq2, _ = make_pair(sqs, 20)
    t2 = S.preflight(dlq2, sqs=sqs, filter_expression="id < `100`")
    s2 = S.sample_messages(t2.dlq, sqs=sqs, size=20, message_filter=t2.message_filter)
    p2 = S.plan_redrive(t2, sqs=sqs, sample=s2, only=["error.type == 'Timeout'"])
    assert p2.changes[0].params["filter_expression"] == "(id < `100`) && (error.type == 'Timeout')"


def test_fifo_choice_of_groups_moves_only_those_groups_in_order(sqs, tmp_path):
    dlq, src = make_pair(sqs, 36, fifo=True, groups=3)
    target = S.preflight(dlq, sqs=sqs)
    sample = S.sample_messages(target.dlq, sqs=sqs, size=36)
    options, pre, description = S.redrive_selection(target, sample)
    assert description == "Message groups to redrive"
    assert pre == sorted({m.group_id for m in sample.messages}) and "g0" in pre and "g2" in pre
    assert S.plan_redrive(target, sqs=sqs, sample=sample, only=pre).digest() == (
        S.plan_redrive(target, sqs=sqs, sample=sample).digest()
    )
    plan = S.plan_redrive(target, sqs=sqs, sample=sample, only=["g0", "g2"])
    expression = plan.changes[0].params["filter_expression"]
    assert expression == 'contains(`["g0","g2"]`, group)'
    r = move_messages(
        dlq,
        src,
        sqs=sqs,
        fifo=True,
        message_filter=S.parse_filter(expression),
        journal_path=tmp_path / "j.jsonl",
        show_progress=False,
    )
    assert r.moved == 24
    seqs: dict[str, list[int]] = {}
    for m in drain(sqs, src):
        b = json.loads(m["Body"])
        seqs.setdefault(b["group"], []).append(b["seq"])
    assert seqs == {"g0": list(range(12)), "g2": list(range(12))}
    left = drain(sqs, dlq)
    assert len(left) == 12 and {json.loads(m["Body"])["group"] for m in left} == {"g1"}


def test_choice_refusals_and_empty_choice(sqs):
    dlq, _ = make_pair(sqs, 12, fifo=True, groups=3)
    target = S.preflight(dlq, sqs=sqs)
    sample = S.sample_messages(target.dlq, sqs=sqs, size=12)
    with pytest.raises(BadInputError, match="not among the sampled choices"):
        S.plan_redrive(target, sqs=sqs, sample=sample, only=["g9"])
    # bodies without the group id: the move (body filter) cannot select groups
    blind = replace(sample, messages=tuple(replace(m, group_keys=()) for m in sample.messages))
    with pytest.raises(BadInputError, match="do not carry their MessageGroupId"):
        S.plan_redrive(target, sqs=sqs, sample=blind, only=["g0"])
    empty = S.plan_redrive(target, sqs=sqs, sample=sample, only=[])
    assert not empty.changes and "nothing selected" in empty.title
    sdlq, _ = make_pair(sqs, 10)
    rt = S.preflight(sdlq, sqs=sqs, filter_expression=r"re:\d")
    rs = S.sample_messages(rt.dlq, sqs=sqs, size=10, message_filter=rt.message_filter)
    with pytest.raises(BadInputError, match="re: filter"):
        S.plan_redrive(rt, sqs=sqs, sample=rs, only=["error.type == 'Timeout'"])
    assert counts(sqs, dlq) == (12, 0) and counts(sqs, sdlq) == (10, 0)


def test_native_move_wait_is_bounded_and_cancels_without_loss(sqs, sandbox, tmp_path):
    """A move task still running after timeout_s is cancelled: an error says so, the journal
    records why, and every message is in the DLQ or the source (nothing lost)."""
    from opslib.aws.sqs_move import native_move

    dlq, src = make_pair(sqs, 100)
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    with FaultProxy(sandbox.aws_endpoint, move_tasks=True) as proxy:
        result = native_move(
            arn,
            sqs=_proxy_client(proxy.url),
            rate_limit_per_second=20,
            poll_seconds=0.2,
            timeout_s=0.5,
            journal_path=tmp_path / "t.jsonl",
            show_progress=False,
        )
        assert proxy.counts["call:CancelMessageMoveTask"] == 1
    assert any("still running after" in e for e in result.errors)
    journal = read_journal(tmp_path / "t.jsonl")
    assert any(j.get("event") == "cancelled" and j.get("reason") == "timeout" for j in journal)
    time.sleep(1)  # let the emulated task finish its current batch
    moved = counts(sqs, src)[0]
    assert moved < 100 and counts(sqs, dlq)[0] + moved == 100
