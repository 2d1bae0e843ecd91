"""opslib.aws.sqs.queues: resolving queues on the sandbox's SQS server."""

from __future__ import annotations

import uuid

import pytest

from opslib.aws.sqs import queues as Q
from opslib.core.errors import NotFoundError
from tests.unit.sqs_support import make_pair, sqs_client

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    return sqs_client()


def test_not_found_for_missing_queue_by_url(sqs, sandbox):
    with pytest.raises(NotFoundError):
        Q.resolve_queue(f"{sandbox.aws_endpoint}/123456789012/nope-{uuid.uuid4().hex[:6]}", sqs=sqs)


def test_resolve_by_name_url_and_arn_and_dead_letter_sources(sqs):
    dlq, src = make_pair(sqs, 0)
    by_url = Q.resolve_queue(dlq, sqs=sqs)
    assert Q.resolve_queue(by_url.name, sqs=sqs) == by_url == Q.resolve_queue(by_url.arn, sqs=sqs)
    assert [s.url for s in Q.dead_letter_sources(by_url, sqs=sqs)] == [src]
    with pytest.raises(NotFoundError, match="does not exist"):
        Q.resolve_queue(f"nope-{uuid.uuid4().hex[:6]}", sqs=sqs, parameter="dlq")
    assert Q.queue_name_from(by_url.arn) == Q.queue_name_from(dlq) == by_url.name
