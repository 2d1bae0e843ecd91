"""opslib.aws.sqs.messages: the filter, error shapes and selectors, redaction, sampling (on the
sandbox's SQS server)."""

from __future__ import annotations

import json

import pytest

from opslib.aws.sqs import health as H
from opslib.aws.sqs import messages as M
from opslib.aws.sqs import target as T
from opslib.core.errors import BadInputError
from opslib.core.findings import Severity
from tests.unit.sqs_support import body, counts, make_pair, sqs_client

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    return sqs_client()


def test_filter_parsing_and_matching():
    assert M.parse_filter("").matches("anything")
    f = M.parse_filter("error.type == 'Timeout'")
    assert f.kind == "jmespath"
    assert f.matches(body(0)) and not f.matches(body(7)) and not f.matches("not json")
    r = M.parse_filter(r"re:bad sku \d+")
    assert r.kind == "regex" and r.matches(body(7)) and not r.matches(body(0))
    with pytest.raises(BadInputError, match="not valid JMESPath"):
        M.parse_filter("error.type == ")
    with pytest.raises(BadInputError, match="does not compile"):
        M.parse_filter("re:([")


def test_error_shape_and_redaction():
    assert M.error_shape(body(0)) == ("{error,id}", "Timeout")
    assert M.error_shape(body(7)) == ("{errorMessage,errorType,id}", "ValidationError")
    assert M.error_shape("upstream 503 at 12:00")[0] == "text: upstream # at #:#"
    shown = M.redact_body(
        json.dumps(
            {
                "card_number": "4111111111111111",
                "note": "pan 4111 1111 1111 1111",
                "password": "hunter22",
                "amount": 5,
            }
        )
    )
    assert "4111" not in shown and "hunter22" not in shown and '"amount":5' in shown


def test_error_selector_selects_exactly_its_error_kind():
    for b in (body(0), body(7), json.dumps({"a": 1, "b": 2}), json.dumps({"errorCode": 500})):
        sel = M.error_selector(b)
        assert M.parse_filter(sel).matches(b), sel
    assert M.error_selector(body(0)) == "error.type == 'Timeout'"
    assert M.error_selector(body(7)) == "errorType == 'ValidationError'"
    assert not M.parse_filter(M.error_selector(body(0))).matches(body(7))
    quoted = json.dumps({"error": "it's `odd`"})
    assert M.parse_filter(M.error_selector(quoted)).matches(quoted)
    assert M.error_selector("not json") == ""


def test_sample_reads_without_consuming(sqs):
    dlq, _ = make_pair(sqs, 30)
    target = T.preflight(dlq, sqs=sqs, filter_expression="error.type == 'Timeout'")
    sample = M.sample_messages(target.dlq, sqs=sqs, size=20, message_filter=target.message_filter)
    assert len(sample.messages) == 20
    assert counts(sqs, dlq) == (30, 0)  # released at once, nothing consumed
    shapes = sample.shapes_frame()
    assert set(shapes["error"]) == {"Timeout", "ValidationError"}
    assert shapes["count"].sum() == 20
    assert sample.matched == sum(m.error == "Timeout" for m in sample.messages)
    assert all(m.attribute_names == ("attempt", "blob", "tenant") for m in sample.messages)
    health = H.redrive_health(target, sqs=sqs, sample=sample)
    dlq_row = health.get(target.dlq.name)
    assert dlq_row.visible == 30 and dlq_row.oldest_age_from == "sample"
    assert any(
        f.severity is Severity.INFO and "30 message(s) in the DLQ" in f.title
        for f in health.findings
    )
