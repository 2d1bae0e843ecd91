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
