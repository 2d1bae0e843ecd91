"""``record.json``: what machines read of a run, with typed accessors.

The record stays a JSON object on disk (schedulers, ``jq`` and other runbooks read it), so in
Python it is a ``dict`` too; :class:`RunRecord` adds typed properties for the fields every
consumer uses, and :class:`RunStatus` is the one vocabulary of how a run ended.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any


class RunStatus(StrEnum):
    """How a run ended (``record.json`` ``status``); each maps to one exit code."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"
    TIMEOUT = "timeout"
    KILLED = "killed"  # the process died (SIGKILL, a lost machine); recovered from its staging dir


#: the process exit code of each status: 0 success, 1 the runbook failed, 2 bad input
EXIT_CODES: Mapping[RunStatus, int] = {
    RunStatus.SUCCEEDED: 0,
    RunStatus.FAILED: 1,
    RunStatus.INTERRUPTED: 1,
    RunStatus.TIMEOUT: 1,
    RunStatus.KILLED: 1,
    RunStatus.REFUSED: 2,
}


class RunRecord(dict[str, Any]):
    """The parsed ``record.json`` of one run (a dict, with typed accessors)."""

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Read ``record.json`` from a bundle dir or the file itself."""
        p = Path(path)
        if p.is_dir():
            p = p / "record.json"
        return cls(json.loads(p.read_text(encoding="utf-8")))

    @property
    def runbook(self) -> str:
        return str(self.get("runbook", ""))

    @property
    def run_id(self) -> str:
        return str(self.get("run_id", ""))

    @property
    def status(self) -> RunStatus:
        return RunStatus(self["status"])

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def parameters(self) -> Mapping[str, Any]:
        return self.get("parameters") or {}

    @property
    def results(self) -> Mapping[str, Any]:
        """What the notebook recorded with ``opslib.record`` (counts, verdicts, ids)."""
        return self.get("results") or {}

    @property
    def error(self) -> Mapping[str, Any] | None:
        return self.get("error")

    @property
    def approvals(self) -> list[Mapping[str, Any]]:
        return list(self.get("approvals") or [])

    @property
    def changes(self) -> list[Mapping[str, Any]]:
        return list(self.get("changes") or [])

    @property
    def plans(self) -> list[Mapping[str, Any]]:
        """Every plan the gate was shown: title, digest, changes and what was decided."""
        return list(self.get("plans") or [])

    @property
    def change_ticket(self) -> str:
        """The change/incident ticket: the parameter, else the first approval's ticket."""
        ticket = str(self.parameters.get("change_ticket") or "").strip()
        if ticket:
            return ticket
        for a in self.approvals:
            if a.get("change_ticket"):
                return str(a["change_ticket"])
        return ""
