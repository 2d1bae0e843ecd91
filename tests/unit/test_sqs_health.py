"""opslib.aws.sqs.health: the backlog thresholds, and health findings on the sandbox's SQS."""

from __future__ import annotations

import pytest

from opslib.aws.sqs import health as H
from opslib.aws.sqs import target as T
from opslib.core.findings import Severity
from tests.unit.sqs_support import make_pair, sqs_client

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    return sqs_client()


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
    f = H.backlog_finding("q", "source", visible, 0, "")
    assert f.severity is severity


def test_backlog_warning_at_1000(sqs):
    dlq, src = make_pair(sqs, 0)
    for _ in range(100):
        sqs.send_message_batch(
            QueueUrl=src, Entries=[{"Id": str(j), "MessageBody": "x"} for j in range(10)]
        )
    health = H.redrive_health(T.preflight(dlq, sqs=sqs), sqs=sqs)
    warn = [f for f in health.findings if f.severity is Severity.WARNING and ">= 1,000" in f.title]
    assert warn and warn[0].source.endswith(src.rsplit("/", 1)[-1])
    # the destination has messages and no consumer reading: flagged too
    assert any("no consumer appears to be reading" in f.title for f in health.findings)
