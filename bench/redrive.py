"""Benchmark: DLQ redrive throughput, opslib's move vs the legacy loop vs the sequential API floor.

Usage: .venv/bin/python bench/redrive.py [--messages 20000] [--rounds 2] [--concurrency 4]
       [--threads-only]

One local SQS server (fauxqs 1.9.2 from npm, installed by this script into the ignored folder
``.bench/``; not moto, whose ReceiveMessage cost grows with queue size so it would measure
moto). In each round, alternating (and each round starting with the next contender, so the
server's warm-up and drift hit all three alike), each contender gets a fresh
DLQ/source pair seeded with N messages carrying message attributes, and moves them all:

- opslib: ``opslib.aws.sqs.move.move_messages`` (library call, journal on, no progress, no
  notebook), with ``sqs_factory=worker_factory(client)``: the parent's threads plus a worker
  process per further core, each with the parent's client rebuilt (``--threads-only``: threads
  sharing the one client, for comparison);
- legacy: the hand-run loop of the DLQ redrive procedure (receive 10, then send_message +
  delete_message per message);
- runbook: the whole runbook as a user runs it, ``opslib run dlq-redrive -p dlq ... -p
  destination ... -p dry_run False -p approved_by bench`` in a fresh process (kernel start,
  preflight, sample, health, plan, the gated move, verify, the evidence bundle), timed from
  process start to exit; fauxqs has no ListDeadLetterSourceQueues, so the run names its
  destination (without it the runbook refuses with exit 2, as it should);
- floor: the sequential API floor: one ReceiveMessage of 10, one SendMessageBatch, one
  DeleteMessageBatch per 10 messages, one call after another, bare boto3.

Each timing stops when the last message has been moved (the legacy loop's final empty 5 s poll
is not counted). Every move is checked: N messages in the destination, 0 in the DLQ. Prints
messages/s for all three, the ratios, and whether opslib clears the floor of 5x the legacy loop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / ".bench"
FAUXQS_VERSION = "1.9.2"
FAUXQS_CLI = BENCH_DIR / "node_modules" / "fauxqs" / "dist" / "cli.js"
REQUIRED_RATIO = 5.0


def install_fauxqs() -> None:
    """npm install fauxqs@1.9.2 into .bench/ (once; the folder is git-ignored)."""
    pkg = BENCH_DIR / "node_modules" / "fauxqs" / "package.json"
    if pkg.exists() and json.loads(pkg.read_text()).get("version") == FAUXQS_VERSION:
        return
    BENCH_DIR.mkdir(exist_ok=True)
    npm = shutil.which("npm")
    if not npm:
        sys.exit("npm not found: install Node.js 20 (node + npm) to run this benchmark.")
    print(f"installing fauxqs@{FAUXQS_VERSION} into {BENCH_DIR} ...", flush=True)
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(BENCH_DIR),
            f"fauxqs@{FAUXQS_VERSION}",
        ],
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fauxqs() -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, FAUXQS_PORT=str(port), FAUXQS_HOST="127.0.0.1", FAUXQS_LOGGER="false")
    proc = subprocess.Popen(
        ["node", str(FAUXQS_CLI)],
        cwd=BENCH_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"fauxqs exited: {proc.stderr.read().decode()[:500]}")
        try:
            urllib.request.urlopen(url + "/health", timeout=1)  # noqa: S310 - loopback
            return proc, url
        except OSError as exc:
            if getattr(exc, "code", None):  # any HTTP answer means it is listening
                return proc, url
            time.sleep(0.2)
    proc.kill()
    sys.exit("fauxqs did not start within 30 s")


def bare_client():
    """The legacy loop's client: plain boto3.client('sqs') (endpoint from AWS_ENDPOINT_URL)."""
    import boto3

    return boto3.client("sqs")


def make_pair(sqs, tag: str) -> tuple[str, str]:
    """A fresh DLQ and its source queue (redrive policy), empty; returns (dlq_url, source_url)."""
    dlq = sqs.create_queue(QueueName=f"bench-{tag}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    src = sqs.create_queue(
        QueueName=f"bench-{tag}",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
        },
    )["QueueUrl"]
    return dlq, src


def fill(sqs, url: str, n: int) -> None:
    """N JSON messages with three message attributes, sent in batches of 10 from 8 threads."""

    def batch(start: int) -> None:
        entries = [
            {
                "Id": str(j),
                "MessageBody": json.dumps(
                    {
                        "order_id": f"ord-{start + j:06d}",
                        "amount": (start + j) % 977,
                        "error": {"type": "Timeout"},
                    }
                ),
                "MessageAttributes": {
                    "tenant": {"DataType": "String", "StringValue": f"t-{(start + j) % 7}"},
                    "attempt": {"DataType": "Number", "StringValue": "3"},
                    "schema": {"DataType": "String", "StringValue": "orders.v2"},
                },
            }
            for j in range(min(10, n - start))
        ]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if resp.get("Failed"):
            raise RuntimeError(f"fill failed: {resp['Failed'][:1]}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(batch, range(0, n, 10)))


def count(sqs, url: str) -> int:
    a = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def run_legacy_loop(sqs, dlq_url: str, main_url: str) -> float:
    """The legacy redrive loop, verbatim but for the print; returns seconds to the last move."""
    t0 = time.perf_counter()
    last = t0
    while True:
        response = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=5)
        if "Messages" not in response:
            break
        for msg in response["Messages"]:
            sqs.send_message(QueueUrl=main_url, MessageBody=msg["Body"])
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=msg["ReceiptHandle"])
        last = time.perf_counter()
    return last - t0


def run_floor(sqs, dlq_url: str, main_url: str) -> float:
    """Sequential floor: receive 10 -> SendMessageBatch -> DeleteMessageBatch, one at a time."""
    t0 = time.perf_counter()
    last = t0
    while True:
        resp = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        )
        msgs = resp.get("Messages")
        if not msgs:
            break
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageAttributes": m.get("MessageAttributes", {}),
            }
            for i, m in enumerate(msgs)
        ]
        sent = sqs.send_message_batch(QueueUrl=main_url, Entries=entries)
        ok = {s["Id"] for s in sent.get("Successful", [])}
        sqs.delete_message_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(msgs)
                if str(i) in ok
            ],
        )
        last = time.perf_counter()
    return last - t0


def run_opslib(
    sqs, dlq_url: str, main_url: str, concurrency: int, journal: Path, processes: bool
) -> float:
    from opslib.aws.sqs.move import move_messages, worker_factory
    from opslib.core.progress import no_progress

    t0 = time.perf_counter()
    result = move_messages(
        dlq_url,
        main_url,
        sqs=sqs,
        sqs_factory=worker_factory(sqs) if processes else None,
        concurrency=concurrency,
        journal_path=journal,
        progress=no_progress,
    )
    elapsed = time.perf_counter() - t0
    if result.failed or result.errors or result.possible_duplicates:
        raise RuntimeError(f"opslib move reported problems: {result}")
    # the timing ends at the last move; the final empty receive + count check is tiny here
    return elapsed


def run_runbook(dlq_url: str, main_url: str, concurrency: int) -> float:
    """The whole notebook through the CLI, end to end (the figure a user sees)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-redrive-ev-") as ev:
        cmd = [
            str(Path(sys.executable).with_name("opslib")), "run", "dlq-redrive",
            "-p", "dlq", dlq_url.rsplit("/", 1)[-1],
            "-p", "destination", main_url.rsplit("/", 1)[-1],
            "-p", "concurrency", str(concurrency),
            "-p", "dry_run", "False",
            "-p", "approved_by", "bench",
            "--evidence-dir", ev,
        ]  # fmt: skip
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=1800)
        elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(
            f"runbook failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
        )
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument(
        "--threads-only",
        action="store_true",
        help="opslib without worker processes (threads sharing one client), for comparison",
    )
    args = ap.parse_args()
    install_fauxqs()
    proc, endpoint = start_fauxqs()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        from opslib.aws.sqs.move import MOVER_CLIENT_CONFIG
        from opslib.clients import aws_client

        bare_sqs = bare_client()
        ops_sqs = aws_client("sqs", **MOVER_CLIENT_CONFIG)  # the client the notebook uses
        journal = BENCH_DIR / "redrive-journal.jsonl"
        n = args.messages
        rates: dict[str, list[float]] = {"opslib": [], "runbook": [], "legacy": [], "floor": []}
        print(
            f"fauxqs {FAUXQS_VERSION} at {endpoint}; {n:,} messages with 3 attributes each; "
            f"{args.rounds} round(s); opslib concurrency {args.concurrency} "
            f"({'threads' if args.threads_only else 'worker processes'})",
            flush=True,
        )
        for r in range(args.rounds):
            order = ("opslib", "runbook", "legacy", "floor")
            for name in order[r % 4 :] + order[: r % 4]:  # each goes first in turn
                dlq, src = make_pair(bare_sqs, f"{name}-{r}")
                fill(bare_sqs, dlq, n)
                assert count(bare_sqs, dlq) == n, "fill incomplete"
                journal.unlink(missing_ok=True)
                if name == "opslib":
                    secs = run_opslib(
                        ops_sqs, dlq, src, args.concurrency, journal, not args.threads_only
                    )
                elif name == "runbook":
                    secs = run_runbook(dlq, src, args.concurrency)
                elif name == "legacy":
                    secs = run_legacy_loop(bare_sqs, dlq, src)
                else:
                    secs = run_floor(bare_sqs, dlq, src)
                moved, left = count(bare_sqs, src), count(bare_sqs, dlq)
                if moved != n or left != 0:
                    raise SystemExit(f"{name}: moved {moved} of {n}, {left} left in the DLQ")
                rates[name].append(n / secs)
                print(
                    f"round {r + 1} {name:>6}: {n:,} msgs in {secs:6.2f} s = {n / secs:8.0f} msg/s",
                    flush=True,
                )
                bare_sqs.delete_queue(QueueUrl=dlq)
                bare_sqs.delete_queue(QueueUrl=src)
        med = {k: statistics.median(v) for k, v in rates.items()}
        per_round = ", ".join(
            f"{o / sd:.1f}x" for o, sd in zip(rates["opslib"], rates["legacy"], strict=True)
        )
        print(f"\nopslib / legacy per round: {per_round}")
        print(
            f"opslib move      : {med['opslib']:8.0f} msg/s (median of {args.rounds}; library call)"
        )
        print(f"whole runbook    : {med['runbook']:8.0f} msg/s (opslib run, process start to exit)")
        print(f"legacy loop      : {med['legacy']:8.0f} msg/s  (baseline)")
        print(f"sequential floor : {med['floor']:8.0f} msg/s")
        print(
            f"opslib / legacy  : {med['opslib'] / med['legacy']:6.1f}x  (required >= {REQUIRED_RATIO:.0f}x, goal 10x)"
        )
        print(
            f"runbook / legacy : {med['runbook'] / med['legacy']:6.1f}x  (required >= {REQUIRED_RATIO:.0f}x, goal 10x)"
        )
        print(f"opslib / floor   : {med['opslib'] / med['floor']:6.2f}x")
        print(f"floor / legacy   : {med['floor'] / med['legacy']:6.1f}x")
        ok = (
            med["opslib"] / med["legacy"] >= REQUIRED_RATIO
            and med["runbook"] / med["legacy"] >= REQUIRED_RATIO
        )
        print(
            "PASS" if ok else "FAIL",
            f": opslib is {med['opslib'] / med['legacy']:.1f}x the legacy loop, the whole runbook "
            f"{med['runbook'] / med['legacy']:.1f}x",
        )
        return 0 if ok else 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
