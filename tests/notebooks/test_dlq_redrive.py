"""dlq-redrive end to end: notebooks/dlq_redrive.ipynb through opslib.run / the opslib CLI on the
sandbox (moto on loopback), checking the evidence and, above all, that no message is lost.

"Nothing lost": after every test, each of the 500 seeded order messages (by its unique
order_id) is in orders-dlq or orders, and a message present twice is one the run reported
(possible duplicates, or the killed run's journal: sending/sent without deleted).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import opslib
from opslib.aws.sqs.move import journal_open_ids
from opslib.sandbox.scenarios import dlq as scenario
from tests.unit.sqs_support import drain as drain_url

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sqs(sandbox):
    from opslib import sandbox as sb
    from opslib.clients import aws_client

    errors = sb.seed(["dlq"])  # every test starts from the seeded incident: 500 in orders-dlq
    assert errors.get("dlq") == "", errors
    return aws_client("sqs")


def url(sqs, name: str) -> str:
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def counts(sqs, name: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url(sqs, name), AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def drain(sqs, name: str) -> list[dict]:
    """Every message of the named queue, consumed (the unit tests' helper, by queue name)."""
    return drain_url(sqs, url(sqs, name))


def order_index(m: dict) -> int:
    return int(json.loads(m["Body"])["order_id"].split("-")[1])


def assert_nothing_lost(
    in_dlq: list[dict], in_orders: list[dict], reported: set[str], journal_sources: dict[str, str]
) -> None:
    """Every seeded order is somewhere; a duplicate only when reported."""
    seen: dict[int, list[dict]] = {}
    for m in in_dlq + in_orders:
        seen.setdefault(order_index(m), []).append(m)
    assert sorted(seen) == list(range(scenario.ORDERS_FAILED)), "a message was lost"
    for i, copies in seen.items():
        if len(copies) > 1:
            sources = {journal_sources.get(c["MessageId"], c["MessageId"]) for c in copies}
            assert sources & reported, f"order {i} is duplicated but no run reported it"


def journal_of(bundle) -> list[dict]:
    path = Path(bundle) / "attachments" / "redrive-journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_dry_run_moves_nothing(sqs, evidence_dir):
    r = opslib.run("dlq-redrive", {}, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["dlq"] == "orders-dlq" and res["destination"] == "orders"
    assert (res["applied"], res["moved"], res["remaining"], res["strategy"]) == (
        False,
        0,
        500,
        "copy",
    )
    assert counts(sqs, "orders-dlq") == (500, 0) and counts(sqs, "orders") == (0, 0)
    assert not (Path(r.bundle) / "attachments" / "redrive-journal.jsonl").exists()
    nb = (Path(r.bundle) / "dlq-redrive.ipynb").read_text()
    assert '"image/png"' in nb  # the age chart
    assert (
        "DRY RUN: nothing changed" in nb
        and "PaymentGatewayTimeout" in nb
        and "ValidationError" in nb
    )
    # headless, the choice is the preselection (every sampled error kind), printed as text
    assert re.search(
        r"Chosen Error kinds to redrive: .*PaymentGatewayTimeout \(\d+ of 20 sampled\).*"
        r"ValidationError \(\d+ of 20 sampled\) \(2 of 2\)",
        nb,
    ), "the final choice is not in the evidence"


def test_approved_run_moves_all_500_with_attributes(sqs, evidence_dir):
    r = opslib.run(
        "dlq-redrive",
        {"dry_run": False, "approved_by": "e2e", "change_ticket": "CHG-42"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert r.exit_code == 0, r.record.get("error")
    res = r.record["results"]
    assert (res["moved"], res["failed"], res["skipped"], res["remaining"]) == (500, 0, 0, 0)
    assert res["possible_duplicates"] == [] and res["applied"] is True
    assert r.record["approvals"][0]["approver"] == "e2e"
    assert r.record["approvals"][0]["change_ticket"] == "CHG-42"
    moved = drain(sqs, "orders")
    assert len(moved) == 500
    for m in moved:
        want = scenario.order_message(order_index(m))
        assert m["Body"] == want["MessageBody"]
        got = {
            k: {kk: vv for kk, vv in v.items() if kk in ("DataType", "StringValue")}
            for k, v in m["MessageAttributes"].items()
        }
        assert got == want["MessageAttributes"]
    journal = journal_of(r.bundle)
    sent = {j["new_id"]: j["source_id"] for j in journal if j["event"] == "sent"}
    assert set(sent) == {m["MessageId"] for m in moved}
    assert {j["source_id"] for j in journal if j["event"] == "deleted"} == set(sent.values())
    assert_nothing_lost(drain(sqs, "orders-dlq"), moved, set(), sent)


def test_fifo_group_order_preserved(sqs, evidence_dir):
    r = opslib.run(
        "dlq-redrive",
        {"dlq": "payments-dlq.fifo", "dry_run": False, "approved_by": "e2e"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert r.exit_code == 0, r.record.get("error")
    total = len(scenario.PAYMENT_GROUPS) * scenario.PAYMENTS_PER_GROUP
    assert (r.record["results"]["moved"], r.record["results"]["remaining"]) == (total, 0)
    order: dict[str, list[int]] = {}
    for m in drain(sqs, "payments.fifo"):
        b = json.loads(m["Body"])
        assert m["Attributes"]["MessageGroupId"] == b["account"]
        assert m["Attributes"]["MessageDeduplicationId"] == f"{b['account']}-{b['seq']:04d}"
        order.setdefault(b["account"], []).append(b["seq"])
    assert order == {g: list(range(scenario.PAYMENTS_PER_GROUP)) for g in scenario.PAYMENT_GROUPS}
    nb = (Path(r.bundle) / "dlq-redrive.ipynb").read_text()
    assert "Chosen Message groups to redrive: acct-1001 (" in nb
    assert r.record["changes"][0]["data"]["move"]["skipped"] == 0  # every group chosen: no filter


@pytest.mark.parametrize(
    "params,message",
    [
        ({"dlq": "no-such-dlq"}, "does not exist"),
        ({"dlq": "orders"}, "not a dead-letter queue"),
        ({"filter_expression": "error.type =="}, "not valid JMESPath"),
        (
            {"destination": "no-such-queue", "dry_run": False, "approved_by": "e2e"},
            "does not exist",
        ),
    ],
)
def test_bad_input_exits_2_and_moves_nothing(sqs, evidence_dir, params, message):
    r = opslib.run("dlq-redrive", params, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("refused", 2)
    assert message in json.dumps(r.record["error"])
    assert counts(sqs, "orders-dlq") == (500, 0) and counts(sqs, "orders") == (0, 0)


def test_cli_bad_filter_exit_code_2(sqs, evidence_dir):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "opslib.cli",
            "run",
            "dlq-redrive",
            "--sandbox",
            "--evidence-dir",
            str(evidence_dir),
            "-p",
            "filter_expression",
            "re:([",
            "-p",
            "dry_run",
            "false",
            "-p",
            "approved_by",
            "e2e",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert "does not compile" in p.stdout + p.stderr
    assert counts(sqs, "orders-dlq") == (500, 0)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def test_sigkill_mid_move_then_rerun_finishes(sqs, evidence_dir, tmp_path):
    """The runner and its kernel SIGKILLed mid-move; the killed run's staging journal is the audit
    trail; a re-run moves the rest; nothing is lost and any duplicate was journalled."""
    staging_tmp = tmp_path / "tmp"
    staging_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(staging_tmp), OPSLIB_STAGING_DIR=str(staging_tmp))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opslib.cli",
            "run",
            "dlq-redrive",
            "--sandbox",
            "--evidence-dir",
            str(evidence_dir / "killed"),
            "-p",
            "dry_run",
            "false",
            "-p",
            "approved_by",
            "e2e",
            "-p",
            "rate_limit_per_second",
            "40",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while counts(sqs, "orders")[0] < 60:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the move never started"
            time.sleep(0.2)
    finally:
        victims = _descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    journals = list(staging_tmp.glob("dlq-redrive-*/attachments/redrive-journal.jsonl"))
    assert len(journals) == 1, journals
    open_ids = journal_open_ids(journals[0])
    text = journals[0].read_text()
    assert '"event":"sent"' in text and '"event":"end"' not in text  # killed mid-move, no epilogue
    killed_sent = [
        json.loads(line)
        for line in journals[0].read_text().splitlines()
        if line.endswith("}") and '"event":"sent"' in line
    ]
    moved_before = counts(sqs, "orders")[0]
    assert 60 <= moved_before < 500
    # messages the killed run held come back after their visibility timeout (30 s)
    deadline = time.monotonic() + 90
    while counts(sqs, "orders-dlq")[1]:
        assert time.monotonic() < deadline, "in-flight messages never came back"
        time.sleep(1)
    r = opslib.run(
        "dlq-redrive",
        {"dry_run": False, "approved_by": "e2e"},
        sandbox=True,
        evidence_dir=evidence_dir / "rerun",
    )
    assert r.exit_code == 0, r.record.get("error")
    assert r.record["results"]["remaining"] == 0
    sources = {j["new_id"]: j["source_id"] for j in journal_of(r.bundle) if j["event"] == "sent"}
    sources.update({j["new_id"]: j["source_id"] for j in killed_sent})
    reported = open_ids | set(r.record["results"]["possible_duplicates"])
    in_orders = drain(sqs, "orders")
    assert len(in_orders) >= 500
    assert len(in_orders) - 500 <= len(reported)
    assert_nothing_lost(drain(sqs, "orders-dlq"), in_orders, reported, sources)


def test_wire_faults_then_rerun_finishes(sqs, sandbox, evidence_dir, monkeypatch):
    """The runbook run against a fault-injecting proxy (partial batch failures, throttling, sends
    applied but answered 500), then re-run on the plain sandbox: nothing lost, every duplicate
    reported."""
    from tests.unit.faultproxy import FaultProxy

    faults = {
        "fail_every": {"SendMessageBatch": 7, "DeleteMessageBatch": 5},
        "throttle_every": {"SendMessageBatch": 6, "ReceiveMessage": 9},
        "ambiguous_every": {"SendMessageBatch": 11},
    }
    with FaultProxy(sandbox.aws_endpoint, **faults) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        r1 = opslib.run(
            "dlq-redrive",
            {
                "dlq": "orders-dlq",
                "dry_run": False,
                "approved_by": "e2e",
                "concurrency": 4,
                "max_messages": 300,
            },
            evidence_dir=evidence_dir / "faulty",
        )
    monkeypatch.undo()
    assert r1.exit_code == 0, r1.record.get("error")
    for key in (
        "failed_entries:SendMessageBatch",
        "failed_entries:DeleteMessageBatch",
        "throttled:SendMessageBatch",
        "ambiguous:SendMessageBatch",
    ):
        assert proxy.counts[key] > 0, key
    change = r1.record["changes"][0]
    move = change["data"]["move"]
    assert move["send_retries"] > 0 and move["delete_retries"] > 0 and move["throttled"] > 0
    res1 = r1.record["results"]
    assert res1["possible_duplicates"], "ambiguous sends must be reported"
    assert res1["moved"] == 300 and res1["remaining"] >= 200  # the blast radius held
    r2 = opslib.run(
        "dlq-redrive",
        {"dry_run": False, "approved_by": "e2e"},
        sandbox=True,
        evidence_dir=evidence_dir / "rerun",
    )
    assert r2.exit_code == 0, r2.record.get("error")
    assert r2.record["results"]["remaining"] == 0 and r2.record["results"]["moved"] >= 200
    sources = {}
    for r in (r1, r2):
        sources.update(
            {j["new_id"]: j["source_id"] for j in journal_of(r.bundle) if j["event"] == "sent"}
        )
    reported = set(res1["possible_duplicates"]) | set(r2.record["results"]["possible_duplicates"])
    in_orders = drain(sqs, "orders")
    assert len(in_orders) - 500 <= len(reported)
    assert_nothing_lost(drain(sqs, "orders-dlq"), in_orders, reported, sources)


def test_source_listing_denied_or_unknown_is_a_finding_not_a_crash(
    sqs, sandbox, evidence_dir, monkeypatch
):
    """As against a least-privilege role (AccessDenied) or a local SQS without the API
    (InvalidAction): the run goes on with the source from the messages' DeadLetterQueueSourceArn,
    and, when no message names it and no destination is given, refuses with exit 2."""
    from tests.unit.faultproxy import FaultProxy

    orders_arn = sqs.get_queue_attributes(QueueUrl=url(sqs, "orders"), AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    before = counts(sqs, "orders-dlq")
    with FaultProxy(
        sandbox.aws_endpoint,
        errors={"ListDeadLetterSourceQueues": "AccessDenied"},
        dlq_source={"orders-dlq": orders_arn},
    ) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        r = opslib.run("dlq-redrive", {"dlq": "orders-dlq"}, evidence_dir=evidence_dir / "denied")
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    assert proxy.counts["error:ListDeadLetterSourceQueues"] >= 1
    assert r.record["results"]["destination"] == "orders" and r.record["results"]["moved"] == 0
    nb = (Path(r.bundle) / "dlq-redrive.ipynb").read_text()
    assert (
        "ListDeadLetterSourceQueues" in nb and "denied" in nb and "DeadLetterQueueSourceArn" in nb
    )
    with FaultProxy(
        sandbox.aws_endpoint, errors={"ListDeadLetterSourceQueues": "InvalidAction"}
    ) as proxy2:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy2.url)
        r2 = opslib.run("dlq-redrive", {"dlq": "orders-dlq"}, evidence_dir=evidence_dir / "unknown")
        r3 = opslib.run(
            "dlq-redrive",
            {"dlq": "orders-dlq", "destination": "orders"},
            evidence_dir=evidence_dir / "dest",
        )
    monkeypatch.undo()
    assert (r2.status, r2.exit_code) == ("refused", 2)
    err = r2.record["error"]["evalue"]
    assert "destination=" in err and "InvalidAction" in err
    assert (r3.status, r3.exit_code) == ("succeeded", 0), r3.record.get("error")
    assert r3.record["results"]["destination"] == "orders"
    assert counts(sqs, "orders-dlq") == before  # dry runs: nothing moved
