"""opslib.aws.sqs.selection: the operator's choice of groups or error kinds, into the plan and
honoured by the move (on the sandbox's SQS server)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from opslib.aws.sqs import messages as M
from opslib.aws.sqs import plan as P
from opslib.aws.sqs import selection as Sel
from opslib.aws.sqs import target as T
from opslib.aws.sqs.move import move_messages
from opslib.core.errors import BadInputError
from opslib.core.progress import no_progress
from tests.unit.sqs_support import counts, drain, make_pair, serial_client, sqs_client

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sqs(sandbox):
    return sqs_client()


@pytest.fixture(scope="module")
def serial(sandbox):
    yield from serial_client(sandbox)


def test_choice_of_everything_gives_the_same_plan_and_hash(sqs):
    """Headless, choose() returns the preselection: the plan must be byte-for-byte the same."""
    dlq, _ = make_pair(sqs, 30)
    for expression in ("", "error.type == 'Timeout'"):
        target = T.preflight(dlq, sqs=sqs, filter_expression=expression)
        sample = M.sample_messages(
            target.dlq, sqs=sqs, size=20, message_filter=target.message_filter
        )
        selection = Sel.redrive_selection(target, sample)
        options, pre = list(selection.options), list(selection.preselection)
        assert selection.description == "Error kinds to redrive"
        assert [k for _label, k in options] == pre
        if expression:
            assert pre == ["error.type == 'Timeout'"]  # only what the filter already selects
        else:
            assert set(pre) == {"error.type == 'Timeout'", "errorType == 'ValidationError'"}
            assert options[0][0].startswith("Timeout (") and "of 20 sampled)" in options[0][0]
        plain = P.plan_redrive(target, sqs=sqs, sample=sample)
        chosen = P.plan_redrive(target, sqs=sqs, sample=sample, only=tuple(pre))
        assert chosen.digest() == plain.digest()
        assert chosen == plain


def test_choice_narrows_the_filter_and_the_move_honours_it(sqs, serial, tmp_path):
    dlq, src = make_pair(sqs, 30)
    target = T.preflight(dlq, sqs=sqs)
    sample = M.sample_messages(target.dlq, sqs=sqs, size=20)
    plan = P.plan_redrive(target, sqs=sqs, sample=sample, only=["errorType == 'ValidationError'"])
    params = plan.changes[0].params
    assert params["filter_expression"] == "errorType == 'ValidationError'"
    assert params["strategy"] == "copy"
    assert any("Chosen in the widget: only ValidationError" in w for w in plan.warnings)
    assert plan.digest() != P.plan_redrive(target, sqs=sqs, sample=sample).digest()
    r = move_messages(
        dlq,
        src,
        sqs=serial,
        message_filter=M.parse_filter(params["filter_expression"]),
        journal_path=tmp_path / "j.jsonl",
        progress=no_progress,
    )
    assert (r.moved, r.skipped) == (9, 21)
    assert all(json.loads(m["Body"]).get("errorType") == "ValidationError" for m in drain(sqs, src))
    # a user filter is ANDed with the choice, never widened by it
    dlq2, _ = make_pair(sqs, 20)
    t2 = T.preflight(dlq2, sqs=sqs, filter_expression="id < `100`")
    s2 = M.sample_messages(t2.dlq, sqs=sqs, size=20, message_filter=t2.message_filter)
    p2 = P.plan_redrive(t2, sqs=sqs, sample=s2, only=["error.type == 'Timeout'"])
    assert p2.changes[0].params["filter_expression"] == "(id < `100`) && (error.type == 'Timeout')"


def test_fifo_choice_of_groups_moves_only_those_groups_in_order(sqs, tmp_path):
    dlq, src = make_pair(sqs, 36, fifo=True, groups=3)
    target = T.preflight(dlq, sqs=sqs)
    sample = M.sample_messages(target.dlq, sqs=sqs, size=36)
    selection = Sel.redrive_selection(target, sample)
    pre = list(selection.preselection)
    assert selection.description == "Message groups to redrive"
    assert pre == sorted({m.group_id for m in sample.messages}) and "g0" in pre and "g2" in pre
    assert P.plan_redrive(target, sqs=sqs, sample=sample, only=pre).digest() == (
        P.plan_redrive(target, sqs=sqs, sample=sample).digest()
    )
    plan = P.plan_redrive(target, sqs=sqs, sample=sample, only=["g0", "g2"])
    expression = plan.changes[0].params["filter_expression"]
    assert expression == 'contains(`["g0","g2"]`, group)'
    r = move_messages(
        dlq,
        src,
        sqs=sqs,
        fifo=True,
        message_filter=M.parse_filter(expression),
        journal_path=tmp_path / "j.jsonl",
        progress=no_progress,
    )
    assert r.moved == 24
    seqs: dict[str, list[int]] = {}
    for m in drain(sqs, src):
        b = json.loads(m["Body"])
        seqs.setdefault(b["group"], []).append(b["seq"])
    assert seqs == {"g0": list(range(12)), "g2": list(range(12))}
    left = drain(sqs, dlq)
    assert len(left) == 12 and {json.loads(m["Body"])["group"] for m in left} == {"g1"}


def test_choice_refusals_and_empty_choice(sqs):
    dlq, _ = make_pair(sqs, 12, fifo=True, groups=3)
    target = T.preflight(dlq, sqs=sqs)
    sample = M.sample_messages(target.dlq, sqs=sqs, size=12)
    with pytest.raises(BadInputError, match="not among the sampled choices"):
        P.plan_redrive(target, sqs=sqs, sample=sample, only=["g9"])
    # bodies without the group id: the move (body filter) cannot select groups
    blind = replace(sample, messages=tuple(replace(m, group_keys=()) for m in sample.messages))
    with pytest.raises(BadInputError, match="do not carry their MessageGroupId"):
        P.plan_redrive(target, sqs=sqs, sample=blind, only=["g0"])
    empty = P.plan_redrive(target, sqs=sqs, sample=sample, only=[])
    assert not empty.changes and "nothing selected" in empty.title
    sdlq, _ = make_pair(sqs, 10)
    rt = T.preflight(sdlq, sqs=sqs, filter_expression=r"re:\d")
    rs = M.sample_messages(rt.dlq, sqs=sqs, size=10, message_filter=rt.message_filter)
    with pytest.raises(BadInputError, match="re: filter"):
        P.plan_redrive(rt, sqs=sqs, sample=rs, only=["error.type == 'Timeout'"])
    assert counts(sqs, dlq) == (12, 0) and counts(sqs, sdlq) == (10, 0)
