"""Recorded results travel as display outputs and come back out of an executed notebook."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import nbformat
import pytest
from nbclient import NotebookClient

from opslib.core.recorder import attachment_path, harvest, to_jsonable


class Color(StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Thing:
    n: int
    when: dt.datetime


def test_to_jsonable_handles_dataclasses_enums_datetimes_and_sets():
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert to_jsonable(Thing(1, when)) == {"n": 1, "when": "2026-01-02T03:04:05Z"}
    assert to_jsonable({"c": Color.RED, "s": {1}}) == {"c": "red", "s": [1]}


def test_record_in_a_real_kernel_is_harvested(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import opslib\nopslib.record('moved', 500)"),
        nbformat.v4.new_code_cell("opslib.record('ids', ['a', 'b'])\nopslib.record('moved', 501)"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    got = harvest(nb)
    assert got["results"] == {"moved": 501, "ids": ["a", "b"]}
    texts = [o.get("data", {}).get("text/plain", "") for c in nb.cells for o in c.outputs]
    assert "recorded moved = 500" in texts


def test_attachment_path_stays_inside_the_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLIB_RUN_DIR", str(tmp_path))
    p = attachment_path("journal.jsonl")
    assert p.parent == tmp_path / "attachments"
    with pytest.raises(ValueError):
        attachment_path("../escape")
