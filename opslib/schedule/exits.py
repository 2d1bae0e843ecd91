"""Exit codes a scheduler can act on, and the record summary for its next step.

    0 succeeded; 1 the runbook failed (or was interrupted / timed out); 2 bad input or
    refused, not worth retrying; 3 the run succeeded but found something at or above
    ``--fail-on SEVERITY`` (the daily health check is red); 4 infrastructure error (the
    kernel died, the evidence store was unreachable, the run was killed and its bundle
    recovered afterwards): worth retrying.

The runner's record keeps its own status (``failed`` for a dead kernel, ``succeeded`` for a
run with critical findings); this module reads a finished record and tells a scheduler what
to do with it, so Kubernetes ``podFailurePolicy``, Argo ``retryStrategy`` and Airflow retries
all agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import IntEnum
from pathlib import Path
from typing import Any

from opslib.core.findings import RANK, Severity


class Exit(IntEnum):
    SUCCEEDED = 0
    FAILED = 1
    REFUSED = 2
    FINDINGS = 3
    INFRASTRUCTURE = 4


#: exceptions (the record's ``error.ename``) that mean the machinery failed, not the runbook
INFRA_ERRORS = frozenset(
    {
        "DeadKernelError",
        "CellTimeoutError",
        "RuntimeError",  # jupyter_client: kernel did not start / died while starting
        "TimeoutError",
        "ConnectionError",
        "ConnectionRefusedError",
        "EvidenceError",
        "EndpointConnectionError",
    }
)
SEVERITIES = tuple(s.value for s in sorted(Severity, key=lambda s: RANK[s]) if s is not Severity.OK)


def findings_of(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every recorded finding (a results value that is a list of dicts with a ``severity``)."""
    out: list[Mapping[str, Any]] = []
    for value in (record.get("results") or {}).values():
        if isinstance(value, list):
            out += [v for v in value if isinstance(v, Mapping) and "severity" in v]
    return out


def worst(record: Mapping[str, Any]) -> Severity | None:
    sev = [Severity(f["severity"]) for f in findings_of(record) if f["severity"] in set(Severity)]
    return min(sev, key=lambda s: RANK[s]) if sev else None


def exit_code(record: Mapping[str, Any] | None, base: int, *, fail_on: str = "") -> tuple[int, str]:
    """(exit code, why) for a finished run whose runner exit code is ``base`` (0, 1 or 2)."""
    if record is None:
        return base, ""
    if record.get("evidence_store_error"):
        return Exit.INFRASTRUCTURE, str(record["evidence_store_error"])
    if record.get("status") == "killed":  # SIGKILL / OOM / node loss, recovered from staging
        return Exit.INFRASTRUCTURE, "the run was killed before it finished (recovered bundle)"

    error = record.get("error") or {}
    if (
        base == Exit.FAILED
        and error.get("ename") in INFRA_ERRORS
        and error.get("cell_index") is None
    ):
        return Exit.INFRASTRUCTURE, f"{error.get('ename')}: {error.get('evalue', '')}"
    if base == Exit.FAILED and error.get("ename") == "DeadKernelError":
        return Exit.INFRASTRUCTURE, f"the kernel died: {error.get('evalue', '')}"
    if base == Exit.SUCCEEDED and fail_on:
        threshold = RANK[Severity(fail_on)]
        hits = [
            f
            for f in findings_of(record)
            if f["severity"] in set(Severity) and RANK[Severity(f["severity"])] <= threshold
        ]
        if hits:
            top = min(hits, key=lambda f: RANK[Severity(f["severity"])])
            return (
                Exit.FINDINGS,
                f"{len(hits)} finding(s) at or above {fail_on}: {top.get('title', '')}",
            )
    return base, ""


def summary(
    record: Mapping[str, Any] | None, *, code: int, why: str, bundle: str | None
) -> dict[str, Any]:
    """What ``--result-json`` writes: enough for the next step without opening the bundle."""
    rec = record or {}
    top = worst(rec)
    return {
        "runbook": rec.get("runbook"),
        "run_id": rec.get("run_id"),
        "status": rec.get("status"),
        "exit_code": int(code),
        "exit_reason": why,
        "bundle": bundle,
        "html": f"{bundle}/{rec['runbook']}.html" if bundle and rec.get("runbook") else None,
        "started": rec.get("started"),
        "finished": rec.get("finished"),
        "parameters": rec.get("parameters") or {},
        "results": rec.get("results") or {},
        "worst_severity": top.value if top else None,
        "error": rec.get("error"),
    }


def write_summary(path: str | Path, data: Mapping[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(p)
