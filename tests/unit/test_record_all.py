"""opslib.record_all: a typed result's public fields recorded in one call, under their own names."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pytest

import opslib
from opslib.core.recorder import SESSION


class Kind(enum.StrEnum):
    COPY = "copy"


@dataclass(frozen=True)
class Result:
    dlq: str
    strategy: Kind
    moved: int
    possible_duplicates: tuple[str, ...]
    _internal: str = "never recorded"


def test_record_all_records_each_public_field_under_its_name():
    SESSION.results.clear()
    got = opslib.record_all(Result("orders-dlq", Kind.COPY, 500, ("m1",)))
    assert list(got) == ["dlq", "strategy", "moved", "possible_duplicates"]
    assert SESSION.results == {
        "dlq": "orders-dlq",
        "strategy": "copy",
        "moved": 500,
        "possible_duplicates": ["m1"],
    }
    opslib.record_all(Result("b", Kind.COPY, 1, ()), prefix="second_")
    assert SESSION.results["second_moved"] == 1 and "_internal" not in SESSION.results


def test_record_all_refuses_what_has_no_declared_fields():
    for bad in ({"a": 1}, Result, object()):
        with pytest.raises(TypeError, match="dataclass instance"):
            opslib.record_all(bad)
