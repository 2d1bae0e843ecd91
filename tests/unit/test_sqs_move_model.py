"""opslib.aws.sqs.move.model: the typed settings between plan and mover, and the result."""

from __future__ import annotations

import json
import pickle

import pytest

from opslib.aws.sqs.move import MoveResult, MoveSettings, Strategy


def test_settings_round_trip_through_the_plan_params():
    s = MoveSettings(
        dlq_url="http://x/1/q-dlq",
        dlq_arn="arn:aws:sqs:us-east-1:1:q-dlq",
        routes={"arn:aws:sqs:us-east-1:1:q": "http://x/1/q"},
        filter_expression="id",
        max_messages=5,
        planned_count=9,
        rate_limit_per_second=0.0,
        concurrency=4,
        strategy="copy",
        strategy_reason="a filter is set",
    )
    params = s.to_params()
    assert params["strategy"] == "copy" and type(params["strategy"]) is str
    assert json.loads(json.dumps(params)) == params  # JSON as the plan hash sees it
    assert MoveSettings.from_params(params) == s and s.strategy is Strategy.COPY
    assert pickle.loads(pickle.dumps(s)) == s  # crosses into the worker processes
    assert MoveSettings(dlq_url="u", fifo=True, concurrency=8).workers == 1
    with pytest.raises(ValueError, match="not redrive move params"):
        MoveSettings.from_params({**params, "surprise": 1})


def test_result_dict_has_the_strategy_as_text():
    r = MoveResult(
        strategy=Strategy.NATIVE,
        dlq="q-dlq",
        destinations=("(source queues)",),
        moved=10,
        failed=0,
        skipped=0,
        possible_duplicates=(),
        failed_ids=(),
        send_retries=0,
        delete_retries=0,
        throttled=0,
        visibility_extensions=0,
        elapsed_seconds=2.0,
        journal="",
    )
    d = r.to_dict()
    assert d["strategy"] == "native" and type(d["strategy"]) is str and d["rate"] == 5.0
