"""Helpers shared by the tests of opslib.aws.sqs (tests/unit/test_sqs_*.py) and the notebook
test of dlq-redrive: queue pairs on the sandbox's SQS server, draining, counting, journals.

Each test that moves messages makes its own small queue pair (unique names), so tests do not
depend on each other; faults are injected on the wire by tests/unit/faultproxy.py.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator

from tests.unit.faultproxy import FaultProxy


def sqs_client():
    """A plain SQS client on the sandbox (the environment's endpoint and credentials)."""
    from opslib.clients import aws_client

    return aws_client("sqs")


def proxy_client(url: str, *, session=None):
    """An SQS client through a proxy at ``url`` (``session``: the environment's chain)."""
    from opslib.clients import aws_config, aws_session

    return (session or aws_session()).client("sqs", endpoint_url=url, config=aws_config())


def serial_client(sandbox) -> Iterator:
    """A client through a fault-free, serializing proxy, for concurrent movers.

    moto 5.2.5's SQS backend has no lock around receive/delete, so concurrent calls can deliver
    one message twice or resurrect a deleted one (seen here: 501 moved out of 500); real SQS
    does not. Serializing upstream calls gives the mover SQS's semantics to be tested against.
    """
    with FaultProxy(sandbox.aws_endpoint) as proxy:
        yield proxy_client(proxy.url)


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


def queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def make_pair(sqs, n: int, *, fifo: bool = False, groups: int = 3) -> tuple[str, str]:
    """A DLQ with ``n`` messages and a source queue whose redrive policy targets it."""
    tag = uuid.uuid4().hex[:8]
    suffix = ".fifo" if fifo else ""
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"t{tag}-dlq{suffix}", Attributes=extra)["QueueUrl"]
    arn = queue_arn(sqs, dlq)
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


def interrupt_after(seconds: float):
    """Deliver a KeyboardInterrupt to the main thread after ``seconds`` (as Ctrl-C would)."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


def cancel_interrupt(previous) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)
