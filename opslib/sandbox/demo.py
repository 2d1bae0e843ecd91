"""The demo: every runbook on the sandbox, then the approved runs the scenarios offer.

First each runbook runs headless with its sandbox presets (dry run: plans shown, nothing
changed). Then each scenario may offer approved demo runs through an optional
``demo_runs(presets) -> list[DemoRun]`` hook (e.g. the PITR scenario restores PostgreSQL to just
before the accidental DELETE, and Aurora and DynamoDB to new targets), which are safe to apply
because they act only on the local sandbox. The sandbox is re-seeded first when it was already
running, so the demo can be run again and again.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opslib.catalog import list_runbooks
from opslib.core.errors import OpslibError
from opslib.sandbox import stack as sb
from opslib.sandbox.runs import run_on_sandbox
from opslib.sandbox.scenarios import SCENARIOS


@dataclass(frozen=True)
class DemoRun:
    """One extra demo run a scenario offers: ``parameters`` are complete (no presets added)."""

    runbook: str
    label: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoRow:
    """One line of the demo table."""

    runbook: str
    status: str
    html: str
    bundle: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"runbook": self.runbook, "status": self.status, "html": self.html}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def scenario_demo_runs(state_dir: str | None = None) -> list[DemoRun]:
    """The approved runs every scenario offers for the demo, given the presets it seeded."""

    runs: list[DemoRun] = []
    for name in SCENARIOS:
        module = importlib.import_module(f"opslib.sandbox.scenarios.{name}")
        hook = getattr(module, "demo_runs", None)
        if hook is None:
            continue
        presets = {book: sb.presets(book, state_dir) for book in getattr(module, "RUNBOOKS", ())}
        runs.extend(hook(presets))
    return runs


def run_demo(
    *, evidence_dir: str = "evidence", timeout: float | None = 600, state_dir: str | None = None
) -> list[DemoRow]:
    """Start (or re-seed) the sandbox, run every runbook and the scenarios' demo runs on it."""

    _log("starting the sandbox (AWS API, PostgreSQL, Kubernetes API on 127.0.0.1)...")
    was_running = sb.status(state_dir) is not None
    sb.up(state_dir)
    if was_running:
        _log("the sandbox was already running: re-seeding the demo incident...")
        sb.seed(None, state_dir)
    rows: list[DemoRow] = []

    def one(label: str, runbook: str, params: Mapping[str, Any] | None, presets: bool) -> None:
        _log(f"running {label} ...")
        try:
            result = run_on_sandbox(
                runbook,
                dict(params or {}),
                state_dir=state_dir,
                use_presets=presets,
                evidence_dir=evidence_dir,
                timeout=timeout,
            )
        except OpslibError as exc:  # refused before a kernel started: shown in the table
            rows.append(DemoRow(label, "refused", str(exc).splitlines()[0]))
            return
        rows.append(DemoRow(label, result.status, result.html or "", str(result.bundle or "")))

    for book in list_runbooks():
        one(book.name, book.name, None, True)
    extra = scenario_demo_runs(state_dir)
    for demo in extra:  # the sandbox, without presets: their parameters are complete
        one(f"{demo.runbook} ({demo.label})", demo.runbook, demo.parameters, False)
    return rows
