"""opslib.runbooks.dlq_redrive: the flow's own checks (the steps are tested through the adapter
in tests/unit/test_sqs_*.py and end to end in tests/notebooks/test_dlq_redrive.py)."""

from __future__ import annotations

import pytest

from opslib.aws.sqs.move import Strategy
from opslib.core.errors import BadInputError
from opslib.runbooks import dlq_redrive


def test_inputs_are_checked_before_any_client():
    inp = dlq_redrive.inputs("orders-dlq", strategy="copy", concurrency=2)
    assert (inp.dlq, inp.strategy, inp.concurrency) == ("orders-dlq", Strategy.COPY, 2)
    for kwargs, message in (
        ({"strategy": "fast"}, "use one of auto, copy, native"),
        ({"concurrency": 33}, "concurrency"),
        ({"filter_expression": "re:(["}, "does not compile"),
        ({"filter_expression": "error.type =="}, "not valid JMESPath"),
    ):
        with pytest.raises(BadInputError, match=message):
            dlq_redrive.inputs("orders-dlq", **kwargs)


def test_executor_journals_into_the_runs_attachments(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLIB_RUN_DIR", str(tmp_path))
    conns = dlq_redrive.Clients(sqs=object(), cloudwatch=object())
    assert callable(dlq_redrive.executor(conns))
    assert (tmp_path / "attachments").is_dir()
    assert not (tmp_path / "attachments" / dlq_redrive.JOURNAL_NAME).exists()  # not before a move
