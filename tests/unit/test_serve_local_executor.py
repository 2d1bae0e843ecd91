"""The local executor runs each alert's runbook in a process of its own: its outcome comes
back through a pipe, it sees the receiver's environment as it is now, it runs at the lower
priority, and a run process that dies leaves an infrastructure failure (exit 4), not a row
stuck running."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from nbformat import write
from nbformat.v4 import new_code_cell, new_notebook

from opslib.serve.executors import LocalExecutor
from opslib.serve.priority import RUN_NICENESS
from opslib.serve.store import Queued


def _book(directory, name: str, body: str) -> None:
    params = new_code_cell('service: str = ""\ndry_run: bool = True\napproved_by: str = ""')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[params, new_code_cell("import os\nimport opslib\n" + body)],
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "P"}},
    )
    write(nb, str(directory / f"{name}.ipynb"))


def _queued(runbook: str, row_id: int = 1) -> Queued:
    return Queued(
        id=row_id,
        runbook=runbook,
        parameters={"service": "api", "dry_run": False, "approved_by": "alert"},
        trigger={"name": "HighLatency"},
        route="r",
        job="",
        attempts=1,
    )


@pytest.fixture
def books(tmp_path, monkeypatch):
    directory = tmp_path / "nb"
    directory.mkdir()
    _book(
        directory,
        "probe",
        'opslib.record("pid", os.getpid())\n'
        'opslib.record("nice", os.getpriority(os.PRIO_PROCESS, 0))\n'
        'opslib.record("marker", os.environ.get("OPSLIB_TEST_MARKER", ""))\n'
        'opslib.record("dry_run_seen", dry_run)\n'
        'opslib.record("verdict", "OK: probed")',
    )
    # the kernel's parent is the run's own process: killing it is a run process that dies
    _book(directory, "suicide", "import signal\nos.kill(os.getppid(), signal.SIGKILL)")
    monkeypatch.setenv("OPSLIB_NOTEBOOKS", str(directory))
    return directory


def test_a_run_in_its_own_process_reports_back_dry_and_niced(books, tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLIB_TEST_MARKER", "set-after-the-fork-server-started")
    ex = LocalExecutor(evidence_dir=str(tmp_path / "ev"), timeout=120)
    out = ex.run(_queued("probe"), store=None)  # type: ignore[arg-type]  (unused by local)
    assert (out.status, out.exit_code, out.verdict) == ("succeeded", 0, "OK: probed"), out.error
    results = json.loads((Path(out.bundle) / "record.json").read_text())["results"]
    assert results["marker"] == "set-after-the-fork-server-started"
    assert results["dry_run_seen"] is True  # forced dry whatever the row said
    if sys.platform.startswith("linux"):
        assert results["nice"] >= RUN_NICENESS
    assert results["pid"] != os.getpid()


def test_a_run_process_that_dies_is_an_infrastructure_failure(books, tmp_path):
    ex = LocalExecutor(evidence_dir=str(tmp_path / "ev"), timeout=120)
    out = ex.run(_queued("suicide", 2), store=None)  # type: ignore[arg-type]
    assert (out.status, out.exit_code) == ("failed", 4)
    assert "ended without an outcome" in out.error and "-9" in out.error
