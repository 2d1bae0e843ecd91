"""Typed findings shared by every runbook: what was seen, how bad, the evidence, what to do next."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How urgently a finding needs action; ordered from most to least urgent by :data:`RANK`."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    OK = "ok"
    ERROR = "error"  # the check itself failed (unreachable, access denied); shown, never swallowed


RANK = {
    Severity.CRITICAL: 0,
    Severity.ERROR: 1,
    Severity.WARNING: 2,
    Severity.INFO: 3,
    Severity.OK: 4,
}


@dataclass(frozen=True)
class Finding:
    """One observation with the evidence behind it and the next action the procedures prescribe."""

    severity: Severity
    title: str
    source: str = ""  # which check produced it: "alb", "postgres", "sqs:orders-dlq", ...
    evidence: str = ""  # the numbers or rows behind the title
    next_action: str = ""
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        return d


def error_finding(source: str, exc: BaseException, *, next_action: str = "") -> Finding:
    """Turn a failed check into a finding so the rest of the runbook continues and the error shows."""
    return Finding(
        severity=Severity.ERROR,
        title=f"{source}: check failed: {type(exc).__name__}",
        source=source,
        evidence=str(exc)[:500],
        next_action=next_action or "Check credentials, endpoint and permissions for this source.",
    )


def skipped_finding(source: str, what: str) -> Finding:
    """A source left empty by the caller: visible as 'skipped: no X given', not an error."""
    return Finding(severity=Severity.INFO, title=f"skipped: no {what} given", source=source)


def rank(findings: Iterable[Finding]) -> list[Finding]:
    """Most urgent first; stable for equal severity."""
    return sorted(findings, key=lambda f: RANK[f.severity])


def to_frame(findings: Iterable[Finding]):
    """Findings as a pandas DataFrame (severity, title, source, evidence, next_action)."""
    import pandas as pd

    rows = [{k: v for k, v in f.to_dict().items() if k != "data"} for f in findings]
    return pd.DataFrame(rows, columns=["severity", "title", "source", "evidence", "next_action"])
