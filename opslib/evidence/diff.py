"""What changed between two runs: parameters, results and findings, without the noise.

A post-mortem asks "what was different the second time?". Comparing two ``record.json`` by
hand drowns in run ids, timestamps and plan hashes that always differ; :func:`diff_records`
ignores those volatile fields (by name, and any value that is an ISO timestamp) and reports
parameters and results that changed, and findings that are new, resolved, or changed
severity. Findings are matched by source and title with numbers masked, so "p99 812 ms" and
"p99 640 ms" from the same check are one finding whose evidence changed, not two.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from opslib.evidence.record import RunRecord
from opslib.evidence.store import split_bundle_location

#: Names of fields that differ in every run (ids, times, hashes): never reported.
VOLATILE = re.compile(
    r"(?:^|[._])(?:run_id|id|ids|uuid|arn|plan_hash|digest|started|finished|timestamp|"
    r"time|date|duration_seconds)$|_(?:id|ids|at|time|timestamp|arn)$",
    re.IGNORECASE,
)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_NUM = re.compile(r"\d+(?:\.\d+)?")


def _is_volatile(key: str, value: Any) -> bool:
    if VOLATILE.search(key):
        return True
    if isinstance(value, str) and _ISO.match(value):
        try:
            _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return True
        except ValueError:
            return False
    return False


def _is_findings(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, Mapping) and "severity" in v and "title" in v for v in value)
    )


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass(frozen=True)
class FieldChange:
    """One parameter or result whose value differs (``None`` on a side where it is absent)."""

    name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class FindingChange:
    """A finding that is new, resolved, or present in both with another severity."""

    kind: str  # "new", "resolved" or "severity"
    source: str
    title: str
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class RunDiff:
    """The differences between run ``a`` (earlier) and run ``b``."""

    a: str
    b: str
    status: tuple[str, str]
    parameters: tuple[FieldChange, ...] = ()
    results: tuple[FieldChange, ...] = ()
    findings: tuple[FindingChange, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return (
            self.status[0] == self.status[1]
            and not self.parameters
            and not self.results
            and not self.findings
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        def show(v: Any) -> str:
            s = json.dumps(v, default=str, ensure_ascii=False) if v is not None else "(absent)"
            return s if len(s) <= 80 else s[:77] + "..."

        lines = [f"A: {self.a}", f"B: {self.b}"]
        if self.status[0] != self.status[1]:
            lines.append(f"status: {self.status[0]} -> {self.status[1]}")
        for title, items in (("parameters", self.parameters), ("results", self.results)):
            if items:
                lines.append(f"{title} changed:")
                lines += [f"  {c.name}: {show(c.before)} -> {show(c.after)}" for c in items]
        if self.findings:
            lines.append("findings:")
            for f in self.findings:
                what = {
                    "new": f"new ({f.after})",
                    "resolved": f"resolved (was {f.before})",
                    "severity": f"severity {f.before} -> {f.after}",
                }[f.kind]
                src = f"[{f.source}] " if f.source else ""
                lines.append(f"  {what}: {src}{f.title}")
        if self.empty:
            lines.append("no differences (volatile fields such as ids and times ignored)")
        return "\n".join(lines)


def _fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    fa, fb = _flatten(a), _flatten(b)
    out = []
    for k in sorted(set(fa) | set(fb)):
        va, vb = fa.get(k), fb.get(k)
        if _is_findings(va) or _is_findings(vb):
            continue
        if _is_volatile(k, va) or _is_volatile(k, vb):
            continue
        if va != vb:
            out.append(FieldChange(k, va, vb))
    return tuple(out)


def _finding_key(f: Mapping[str, Any]) -> tuple[str, str]:
    return str(f.get("source", "")), _NUM.sub("#", str(f.get("title", "")))


def _all_findings(results: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for v in _flatten(results).values():
        if _is_findings(v):
            for f in v:
                out.setdefault(_finding_key(f), f)
    return out


def _findings(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[FindingChange, ...]:
    fa, fb = _all_findings(a), _all_findings(b)
    out = []
    for k in fb.keys() - fa.keys():
        out.append(FindingChange("new", k[0], str(fb[k]["title"]), after=str(fb[k]["severity"])))
    for k in fa.keys() - fb.keys():
        out.append(
            FindingChange("resolved", k[0], str(fa[k]["title"]), before=str(fa[k]["severity"]))
        )
    for k in fa.keys() & fb.keys():
        if fa[k]["severity"] != fb[k]["severity"]:
            out.append(
                FindingChange(
                    "severity",
                    k[0],
                    str(fb[k]["title"]),
                    before=str(fa[k]["severity"]),
                    after=str(fb[k]["severity"]),
                )
            )
    order = {"new": 0, "severity": 1, "resolved": 2}
    return tuple(sorted(out, key=lambda c: (order[c.kind], c.source, c.title)))


def diff_records(
    a: Mapping[str, Any], b: Mapping[str, Any], *, names: tuple[str, str] = ("A", "B")
) -> RunDiff:
    """The differences between two records (``record.json`` objects), earlier first."""
    ra, rb = RunRecord(a), RunRecord(b)
    return RunDiff(
        a=names[0],
        b=names[1],
        status=(str(a.get("status", "")), str(b.get("status", ""))),
        parameters=_fields(ra.parameters, rb.parameters),
        results=_fields(ra.results, rb.results),
        findings=_findings(ra.results, rb.results),
    )


def load_record(location: str) -> RunRecord:
    """The record of the bundle at ``location`` (folder or ``s3://`` URL)."""
    store, bundle = split_bundle_location(location)
    return RunRecord(json.loads(store.read_bytes(f"{bundle}/record.json")))


def diff_bundles(a: str, b: str) -> RunDiff:
    """:func:`diff_records` of two bundles."""
    return diff_records(load_record(a), load_record(b), names=(str(a), str(b)))
