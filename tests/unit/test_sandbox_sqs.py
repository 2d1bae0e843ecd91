"""The sandbox AWS server's SQS shortcuts keep moto's behaviour: what is received, counted and
expired is what moto itself would answer; only the cost of each call changes."""

from __future__ import annotations

import time
from types import SimpleNamespace

from opslib.clients import aws_client
from opslib.sandbox import aws_server


def test_retention_rule_is_motos():
    backend = SimpleNamespace(get_queue=lambda name: SimpleNamespace(message_retention_period="60"))
    now_ms = time.time() * 1000
    assert aws_server.retained(backend, "q", SimpleNamespace(sent_timestamp=now_ms - 30_000))
    assert not aws_server.retained(backend, "q", SimpleNamespace(sent_timestamp=now_ms - 61_000))


def test_clock_is_the_wall_clock_and_dates_still_convert(monkeypatch):
    import datetime as dt

    from moto.core.utils import unix_time
    from moto.sqs import models

    for name in ("unix_time", "unix_time_millis"):  # undone after the test
        monkeypatch.setattr(models, name, getattr(models, name))
    monkeypatch.setattr(
        models.SQSBackend,
        "is_message_valid_based_on_retention_period",
        models.SQSBackend.is_message_valid_based_on_retention_period,
    )
    monkeypatch.setattr(aws_server, "_moto_unix_time", None)
    when = dt.datetime(2026, 1, 2, 3, 4, 5)  # naive UTC, as moto passes them
    assert aws_server.fast_unix_time(when) == 1767323045  # before the install too
    aws_server.install_fast_sqs()
    aws_server.install_fast_sqs()  # twice: still moto's conversion underneath, no recursion
    assert models.unix_time is aws_server.fast_unix_time
    assert abs(models.unix_time() - unix_time()) < 1
    assert models.unix_time(when) == unix_time(when) == 1767323045
    assert abs(models.unix_time_millis() - time.time() * 1000) < 1000


def test_receive_counts_and_attributes_on_the_server(sandbox):
    sqs = aws_client("sqs")
    url = sqs.create_queue(QueueName="sandbox-sqs-shortcuts")["QueueUrl"]
    try:
        for b in range(30):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": f"m-{b * 10 + i}",
                        "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
                    }
                    for i in range(10)
                ],
            )
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        )["Messages"]
        assert len(got) == 10 and all(
            m["MessageAttributes"]["k"]["StringValue"] == "v" for m in got
        )
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (
            attrs["ApproximateNumberOfMessages"],
            attrs["ApproximateNumberOfMessagesNotVisible"],
        ) == (
            "290",
            "10",
        )
    finally:
        sqs.delete_queue(QueueUrl=url)
