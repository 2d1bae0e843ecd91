"""Sandbox scenario for dlq-redrive: an order pipeline whose consumer failed 500 times.

``orders`` (redrive policy: maxReceiveCount 3 -> ``orders-dlq``) with 500 failed messages in
the DLQ: JSON bodies in two error shapes (a payment gateway timeout and a validation error),
each with message attributes. And a FIFO pair ``payments.fifo`` -> ``payments-dlq.fifo`` with
messages in several groups, numbered so a test can check the order within each group.

Seeding deletes and recreates the four queues (idempotent: a re-seed resets whatever a
redrive moved) and loads them with SendMessageBatch (a few dozen calls, well under a second).
"""

from __future__ import annotations

import json

RUNBOOKS: tuple[str, ...] = ("dlq-redrive",)

ORDERS = "orders"
ORDERS_DLQ = "orders-dlq"
PAYMENTS = "payments.fifo"
PAYMENTS_DLQ = "payments-dlq.fifo"
ORDERS_FAILED = 500
TIMEOUTS = 350  # of ORDERS_FAILED: shape 1 (7 in every 10); the rest are validation errors
PAYMENT_GROUPS = ("acct-1001", "acct-1002", "acct-1003", "acct-1004")
PAYMENTS_PER_GROUP = 15
MAX_RECEIVE_COUNT = 3


def order_message(i: int) -> dict:
    """The i-th failed order message as a SendMessageBatch entry (deterministic)."""
    if i % 10 < 7:  # interleaved, so any sample shows both shapes
        body = {
            "order_id": f"ord-{i:05d}",
            "customer_id": f"cus-{i % 37:03d}",
            "amount": round(10 + (i * 7.31) % 490, 2),
            "currency": "EUR" if i % 3 else "USD",
            "error": {"type": "PaymentGatewayTimeout", "message": "gateway did not answer in 30s"},
        }
        kind = "timeout"
    else:
        body = {
            "order_id": f"ord-{i:05d}",
            "items": [{"sku": f"SKU-{i % 50:03d}", "qty": 1 + i % 3}],
            "errorType": "ValidationError",
            "errorMessage": f"unknown sku SKU-{i % 50:03d}",
        }
        kind = "validation"
    return {
        "Id": str(i % 10),
        "MessageBody": json.dumps(body, separators=(",", ":")),
        "MessageAttributes": {
            "tenant": {"DataType": "String", "StringValue": f"tenant-{i % 4}"},
            "failure_kind": {"DataType": "String", "StringValue": kind},
            "attempt": {"DataType": "Number", "StringValue": str(MAX_RECEIVE_COUNT)},
            "schema": {"DataType": "String.version", "StringValue": "orders.v2"},
        },
    }


def payment_message(group: str, seq: int) -> dict:
    """A FIFO payment message: the body carries its group and sequence number."""
    body = {"account": group, "seq": seq, "amount": 5 * seq + 1, "error": {"type": "LedgerLocked"}}
    return {
        "MessageBody": json.dumps(body, separators=(",", ":")),
        "MessageGroupId": group,
        "MessageDeduplicationId": f"{group}-{seq:04d}",
        "MessageAttributes": {"ledger": {"DataType": "String", "StringValue": "main"}},
    }


def _recreate(sqs, name: str, attributes: dict[str, str]) -> str:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = ""
    if url:
        sqs.delete_queue(QueueUrl=url)
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def _arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def _send_all(sqs, url: str, entries: list[dict]) -> None:
    for i in range(0, len(entries), 10):
        batch = [dict(e, Id=str(j)) for j, e in enumerate(entries[i : i + 10])]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=batch)
        if resp.get("Failed"):
            raise RuntimeError(
                f"seeding {url}: {len(resp['Failed'])} message(s) failed: {resp['Failed'][:2]}"
            )


def seed_queues(sqs) -> dict[str, str]:
    """(Re)create the four queues and their messages; returns {name: url}."""
    orders_dlq = _recreate(sqs, ORDERS_DLQ, {"MessageRetentionPeriod": "1209600"})
    orders = _recreate(
        sqs,
        ORDERS,
        {
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": _arn(sqs, orders_dlq), "maxReceiveCount": MAX_RECEIVE_COUNT}
            )
        },
    )
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    payments_dlq = _recreate(sqs, PAYMENTS_DLQ, dict(fifo, MessageRetentionPeriod="1209600"))
    payments = _recreate(
        sqs,
        PAYMENTS,
        dict(
            fifo,
            RedrivePolicy=json.dumps(
                {
                    "deadLetterTargetArn": _arn(sqs, payments_dlq),
                    "maxReceiveCount": MAX_RECEIVE_COUNT,
                }
            ),
        ),
    )
    _send_all(sqs, orders_dlq, [order_message(i) for i in range(ORDERS_FAILED)])
    # interleave the groups, as failures would arrive; order within each group is seq order
    _send_all(
        sqs,
        payments_dlq,
        [payment_message(g, seq) for seq in range(PAYMENTS_PER_GROUP) for g in PAYMENT_GROUPS],
    )
    return {ORDERS: orders, ORDERS_DLQ: orders_dlq, PAYMENTS: payments, PAYMENTS_DLQ: payments_dlq}


def seed(ctx) -> dict[str, dict]:
    """Reset the queues and return the presets: a dry run on orders-dlq by default."""
    seed_queues(ctx.aws("sqs"))
    # concurrency 1 on the sandbox: moto 5.2.5's SQS backend has no lock around receive/delete,
    # so concurrent movers there can see a message delivered twice or a deleted one come back
    # (real SQS does not); the library's concurrency is tested through a serializing proxy.
    return {"dlq-redrive": {"dlq": ORDERS_DLQ, "sample_size": 20, "concurrency": 1}}
