"""Read many bundles back: a table of runs for humans, a DataFrame of results for trends.

Both read only ``record.json`` of each bundle, from a directory or an ``s3://`` evidence dir.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from opslib.evidence.manifest import MANIFEST
from opslib.evidence.store import Store, open_store, split_bundle_location

PathLike = str | os.PathLike[str]


def _records_at(location: PathLike) -> list[dict[str, Any]]:
    """Records of every bundle in an evidence dir, or of the one bundle at ``location``."""
    loc = str(location).rstrip("/")
    store = open_store(loc)
    if store.exists(MANIFEST) or store.exists("record.json"):
        bstore, bundle = split_bundle_location(loc)
        return [_read_record(bstore, bundle)]
    return [_read_record(store, b) for b in store.list_bundles()]


def _read_record(store: Store, bundle: str) -> dict[str, Any]:
    rec = json.loads(store.read_bytes(f"{bundle}/record.json"))
    rec["bundle"] = store.url(bundle)
    return rec


def _key_results(results: dict[str, Any], limit: int = 4, width: int = 72) -> str:
    """A short ``name=value`` summary of the scalar results (lists shown by their length)."""
    parts = []
    for k, v in results.items():
        if isinstance(v, bool | int | float | str) or v is None:
            s = str(v)
            parts.append(f"{k}={s if len(s) <= 30 else s[:27] + '...'}")
        elif isinstance(v, list):
            parts.append(f"{k}=[{len(v)}]")
        if len(parts) >= limit:
            break
    text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 3] + "..."


def list_runs(location: PathLike = "evidence") -> list[dict[str, Any]]:
    """One row per run, oldest first: runbook, UTC time, status, operator, key results, bundle."""
    rows = []
    for rec in _records_at(location):
        op = rec.get("operator") or {}
        rows.append(
            {
                "runbook": rec.get("runbook", ""),
                "started": rec.get("started", ""),
                "status": rec.get("status", ""),
                "operator": op.get("aws_caller_arn") or op.get("os_user", ""),
                "key_results": _key_results(rec.get("results") or {}),
                "bundle": rec["bundle"],
            }
        )
    rows.sort(key=lambda r: (r["started"], r["bundle"]))
    return rows


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain fixed-width text table (what the CLI prints)."""
    if not rows:
        return "(no runs)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    for r in rows:
        lines.append("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip())
    return "\n".join(lines)


def load_results(locations: PathLike | Iterable[PathLike] = "evidence"):
    """A pandas DataFrame with one row per run and the recorded results flattened into columns.

    ``locations``: an evidence dir (local or ``s3://``), one bundle, or a list of either. Nested
    results become dotted columns (``lag.max``); columns ``runbook``, ``run_id``, ``started``
    (UTC timestamp), ``status`` and ``bundle`` come first. For trends across runs::

        df = load_results("evidence")
        df[df.runbook == "dlq-redrive"].plot(x="started", y="redriven")
    """
    import pandas as pd

    if isinstance(locations, str | os.PathLike):
        locations = [locations]
    records = [rec for loc in locations for rec in _records_at(loc)]
    base_cols = ["runbook", "run_id", "started", "status", "bundle"]
    if not records:
        return pd.DataFrame(columns=base_cols)
    base = pd.DataFrame([{c: rec.get(c) for c in base_cols} for rec in records])
    flat = pd.json_normalize([rec.get("results") or {} for rec in records], sep=".")
    flat = flat.drop(columns=[c for c in flat.columns if c in base_cols], errors="ignore")
    df = pd.concat([base, flat], axis=1)
    df["started"] = pd.to_datetime(df["started"], utc=True)
    return df.sort_values(["started", "bundle"], kind="stable").reset_index(drop=True)
