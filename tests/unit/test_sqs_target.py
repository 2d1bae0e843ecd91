"""opslib.aws.sqs.target (preflight) and .strategy: refusals before anything moves."""

from __future__ import annotations

import pytest

from opslib.aws.sqs import strategy as St
from opslib.aws.sqs import target as T
from opslib.core.errors import BadInputError, NotFoundError
from tests.unit.sqs_support import make_pair, sqs_client

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    return sqs_client()


def test_preflight_refuses_bad_input(sqs):
    dlq, src = make_pair(sqs, 0)
    with pytest.raises(NotFoundError, match="does not exist"):
        T.preflight("no-such-dlq", sqs=sqs)
    with pytest.raises(NotFoundError, match="destination"):
        T.preflight(dlq, "no-such-destination", sqs=sqs)
    with pytest.raises(BadInputError, match="not a dead-letter queue"):
        T.preflight(src, sqs=sqs)
    with pytest.raises(BadInputError, match="JMESPath"):
        T.preflight(dlq, filter_expression="a ==", sqs=sqs)
    fdlq, fsrc = make_pair(sqs, 0, fifo=True)
    with pytest.raises(BadInputError, match="FIFO"):
        T.preflight(fdlq, src, sqs=sqs)
    filtered = T.preflight(dlq, sqs=sqs, filter_expression="id")
    with pytest.raises(BadInputError, match="native"):
        St.choose_strategy(filtered, sqs=sqs, strategy="native")
    target = T.preflight(dlq, sqs=sqs)
    assert [s.url for s in target.sources] == [src] and target.destination is None
    assert target.destination_label == src.rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "none"}, "use one of auto, copy, native"),
        ({"strategy": "fast"}, "use one of auto, copy, native"),
        ({"max_messages": -1}, "max_messages"),
        ({"sample_size": 101}, "sample_size"),
        ({"rate_limit_per_second": -1}, "rate_limit_per_second"),
        ({"concurrency": 0}, "concurrency"),
        ({"filter_expression": "re:(["}, "does not compile"),
    ],
)
def test_parameters_are_checked_without_a_client(kwargs, message):
    with pytest.raises(BadInputError, match=message):
        T.validate_parameters(**kwargs)


def test_native_support_is_a_typed_answer(sqs):
    dlq, _ = make_pair(sqs, 0)
    support = St.native_supported(T.preflight(dlq, sqs=sqs).dlq, sqs=sqs)
    assert isinstance(support, St.NativeSupport)
    assert support.supported is False and "move tasks" in support.reason  # moto has none
    choice = St.choose_strategy(T.preflight(dlq, sqs=sqs), sqs=sqs)
    assert (choice.strategy, choice.reason) == (St.Strategy.COPY, support.reason)


# --- ListDeadLetterSourceQueues denied or unsupported: a finding, then the messages' source ---


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("AccessDenied", "denied"),
        ("InvalidAction", "unsupported"),
        ("UnknownOperationException", "unsupported"),
    ],
)
def test_denied_or_unknown_source_listing_falls_back_to_the_messages(sandbox, sqs, code, kind):
    from tests.unit.faultproxy import FaultProxy
    from tests.unit.sqs_support import proxy_client, queue_arn

    dlq, src = make_pair(sqs, 5)
    dlq_name = dlq.rsplit("/", 1)[-1]
    with FaultProxy(
        sandbox.aws_endpoint,
        errors={"ListDeadLetterSourceQueues": code},
        dlq_source={dlq_name: queue_arn(sqs, src)},
    ) as proxy:
        target = T.preflight(dlq, sqs=proxy_client(proxy.url))
    assert proxy.counts["error:ListDeadLetterSourceQueues"] == 1
    assert [s.name for s in target.sources] == [src.rsplit("/", 1)[-1]]  # URLs name the proxy
    assert target.sources_from == "DeadLetterQueueSourceArn"
    denied = next(f for f in target.findings if "ListDeadLetterSourceQueues" in f.title)
    assert denied.severity.value == "warning" and kind in denied.title and code in denied.evidence
    assert any("taken from the messages" in f.title for f in target.findings)
    # the messages were only peeked: all five are still visible in the DLQ
    a = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(a["Attributes"]["ApproximateNumberOfMessages"]) == 5


def test_source_not_found_anywhere_is_refused_naming_destination(sandbox, sqs):
    from tests.unit.faultproxy import FaultProxy
    from tests.unit.sqs_support import proxy_client

    dlq, src = make_pair(sqs, 3)  # seeded straight into the DLQ: no DeadLetterQueueSourceArn
    with FaultProxy(
        sandbox.aws_endpoint, errors={"ListDeadLetterSourceQueues": "AccessDenied"}
    ) as proxy:
        client = proxy_client(proxy.url)
        with pytest.raises(BadInputError, match="Pass destination="):
            T.preflight(dlq, sqs=client)
        target = T.preflight(dlq, src, sqs=client)  # with destination= it goes on
    assert target.destination.name == src.rsplit("/", 1)[-1]
    assert target.sources == () and target.sources_from == ""
    assert any(f.data.get("aws_kind") == "denied" for f in target.findings)


def test_other_errors_of_the_source_listing_still_raise(sandbox, sqs):
    import botocore.exceptions

    from tests.unit.faultproxy import FaultProxy
    from tests.unit.sqs_support import proxy_client

    dlq, _ = make_pair(sqs, 0)
    with FaultProxy(
        sandbox.aws_endpoint, errors={"ListDeadLetterSourceQueues": "InternalError"}
    ) as proxy:
        with pytest.raises(botocore.exceptions.ClientError):
            T.preflight(dlq, sqs=proxy_client(proxy.url))
