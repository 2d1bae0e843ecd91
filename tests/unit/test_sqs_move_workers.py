"""opslib.aws.sqs.move.workers: a standard-queue move in worker processes (the parent's client
rebuilt in each), on the sandbox's SQS server through a serializing proxy (moto has no lock
around receive/delete)."""

from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest

from opslib.aws.sqs.move import journal_open_ids, move_messages, worker_factory
from opslib.clients import AwsClientFactory, aws_client, aws_session
from opslib.core.progress import no_progress
from tests.unit.faultproxy import FaultProxy
from tests.unit.sqs_support import (
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


def test_worker_processes_move_everything_and_journal_every_id(sqs, serial, tmp_path):
    """A standard-queue move with ``sqs_factory`` runs in the parent and a worker process
    (their own clients): nothing lost, attributes kept, one journal written by both."""
    dlq, src = make_pair(sqs, 200)
    path = tmp_path / "j.jsonl"
    r = move_messages(
        dlq,
        src,
        sqs=serial,
        sqs_factory=worker_factory(serial),
        concurrency=4,
        rate_limit_per_second=100,  # ~2 s, so the worker process surely joins in
        journal_path=path,
        progress=no_progress,
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


def _owner_profile(sandbox, tmp_path, monkeypatch) -> str:
    """Two profiles on the sandbox: ``owner`` (a role's session in account 111111111111) and
    ``other`` (the sandbox's default account). moto ties an access key to an account only when
    it was issued in that account (an STS session of a role there); any other key, numeric or
    not, lands in the default account 123456789012. The default chain is pointed at
    ``other``; returns the owner's profile name."""
    creds = aws_client("sts").assume_role(
        RoleArn="arn:aws:iam::111111111111:role/redrive-owner", RoleSessionName="opslib-test"
    )["Credentials"]
    path = tmp_path / "credentials"
    path.write_text(
        "[owner]\n"
        f"aws_access_key_id = {creds['AccessKeyId']}\n"
        f"aws_secret_access_key = {creds['SecretAccessKey']}\n"
        f"aws_session_token = {creds['SessionToken']}\n"
        "[other]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    (tmp_path / "config").write_text("")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "other")
    return "owner"


def test_worker_processes_use_the_parents_credentials_not_the_default_chain(
    sandbox, serial, tmp_path, monkeypatch
):
    """The parent's client is built from profile ``owner``, which alone can reach the queues;
    the default chain (AWS_PROFILE) points at ``other``, which cannot. A move in worker
    processes must still move every message: the workers rebuild the parent's client."""
    owner = aws_session(profile=_owner_profile(sandbox, tmp_path, monkeypatch))
    owned = owner.client("sqs", endpoint_url=sandbox.aws_endpoint)
    dlq, src = make_pair(owned, 200)
    default_chain = AwsClientFactory(service="sqs", region=owned.meta.region_name)
    with pytest.raises(botocore.exceptions.ClientError, match="does not exist"):
        default_chain().get_queue_attributes(QueueUrl=dlq)  # the other account: not found
    parent = proxy_client(serial.meta.endpoint_url, session=owner)  # serialized, as owner
    path = tmp_path / "j.jsonl"
    r = move_messages(
        dlq,
        src,
        sqs=parent,
        sqs_factory=worker_factory(parent),
        concurrency=4,
        rate_limit_per_second=100,  # ~2 s, so the worker process surely joins in
        journal_path=path,
        progress=no_progress,
    )
    assert r.workers.startswith("processes=")
    assert (r.moved, r.failed, r.possible_duplicates, r.errors) == (200, 0, (), ())
    assert counts(owned, dlq) == (0, 0)
    assert sorted(json.loads(m["Body"])["id"] for m in drain(owned, src)) == list(range(200))
    pids = {x["pid"] for x in read_journal(path) if x["event"] == "sending"}
    assert len(pids) >= 2  # a worker process moved batches with the owner's credentials


def test_worker_processes_retry_partial_failures_and_keep_the_cap(sqs, sandbox, tmp_path):
    dlq, src = make_pair(sqs, 80)
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
            sqs_factory=worker_factory(client),
            max_messages=65,
            concurrency=4,
            journal_path=tmp_path / "j.jsonl",
            progress=no_progress,
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


def test_worker_processes_interrupted_stop_cleanly_and_lose_nothing(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 100)
    previous = interrupt_after(2.5)
    try:
        with pytest.raises(KeyboardInterrupt, match="redrive interrupted after moving"):
            move_messages(
                dlq,
                src,
                sqs=serial,
                sqs_factory=worker_factory(serial),
                rate_limit_per_second=20,
                concurrency=4,
                journal_path=tmp_path / "j.jsonl",
                progress=no_progress,
            )
    finally:
        cancel_interrupt(previous)
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
from opslib.aws.sqs.move import move_messages, worker_factory
from opslib.clients import aws_client
from opslib.core.progress import no_progress
sqs = aws_client("sqs")
move_messages(sys.argv[1], sys.argv[2], sqs=sqs, sqs_factory=worker_factory(sqs),
              concurrency=4, rate_limit_per_second=60, visibility_timeout=3,
              journal_path=sys.argv[3], progress=no_progress)
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
    # the script's client (and so its workers') goes through the serializing proxy
    monkeypatch.setenv("AWS_ENDPOINT_URL", serial.meta.endpoint_url)
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
        dlq,
        src,
        sqs=serial,
        concurrency=2,
        journal_path=tmp_path / "j2.jsonl",
        progress=no_progress,
    )
    assert r.failed == 0 and counts(sqs, dlq) == (0, 0)
    ids = [json.loads(m["Body"])["id"] for m in drain(sqs, src)]
    assert set(ids) == set(range(300))
    assert len(ids) - 300 <= len(open_ids)
