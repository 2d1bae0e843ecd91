"""``opslib.record_all(result)``: record every public field of a typed result in one call.

A notebook's record cell is part of its narrative; ten ``opslib.record(...)`` lines bury it.
A runbook's flow returns a frozen dataclass whose public fields ARE the record names of its
contract (``dlq``, ``moved``, ``plan_hash``, ...), and the cell is one line. The names are a
contract with whoever reads ``record.json``: a field is recorded under its own name, a field
whose name starts with ``_`` is not recorded, and nothing else is added.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from opslib.core.recorder import record


def record_all(result: Any, *, prefix: str = "") -> dict[str, Any]:
    """Record each public field of the dataclass ``result`` (as :func:`record` does one).

    Returns ``{name: value}`` of what was recorded. ``prefix`` names them ``prefix + field``
    (two results of one kind in one run). Raises TypeError for anything but a dataclass
    instance: a dict or an object's ``__dict__`` has no declared fields, so no contract.
    """
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        raise TypeError(
            f"record_all() takes a dataclass instance (a typed result), not {type(result).__name__}; "
            "use opslib.record(name, value) for single values."
        )
    out: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        if f.name.startswith("_"):
            continue
        value = getattr(result, f.name)
        record(prefix + f.name, value)
        out[prefix + f.name] = value
    return out


__all__ = ["record_all"]
