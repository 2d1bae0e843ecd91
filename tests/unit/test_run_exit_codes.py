"""``opslib run`` exit codes for schedulers: 3 for findings at or above ``--fail-on``, 4 for
an infrastructure error (here: the S3 evidence store unreachable), and ``--result-json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opslib.schedule.exits import exit_code
from tests.unit.serve_support import free_port, write_triage_notebook

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def env(tmp_path):
    write_triage_notebook(tmp_path / "nb")
    return {**os.environ, "OPSLIB_NOTEBOOKS": str(tmp_path / "nb")}


def opslib_run(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "opslib.cli", "run", "triage", *args],
        capture_output=True,
        text=True,
        timeout=200,
        env=env,
    )


def test_fail_on_severity_exit_3_and_result_json(env, tmp_path):
    ev, out = tmp_path / "ev", tmp_path / "out" / "result.json"
    p = opslib_run(
        env,
        "-p",
        "severity",
        "critical",
        "--fail-on",
        "warning",
        "--evidence-dir",
        str(ev),
        "--result-json",
        str(out),
    )
    assert p.returncode == 3, p.stdout + p.stderr
    lines = p.stdout.strip().splitlines()
    assert "exit 3: 1 finding(s) at or above warning" in p.stdout and Path(lines[-1]).is_dir()
    res = json.loads(out.read_text())
    assert (
        res["exit_code"] == 3
        and res["status"] == "succeeded"
        and res["worst_severity"] == "critical"
    )
    assert res["bundle"] == lines[-1] and res["results"]["findings"][0]["title"] == " is slow"
    # below the threshold: exit 0; no --fail-on: exit 0
    assert (
        opslib_run(
            env, "-p", "severity", "warning", "--fail-on", "critical", "--evidence-dir", str(ev)
        ).returncode
        == 0
    )
    assert opslib_run(env, "-p", "severity", "critical", "--evidence-dir", str(ev)).returncode == 0


def test_unreachable_evidence_store_exit_4(env, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {
        **env,
        "AWS_ENDPOINT_URL": dead,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    out = tmp_path / "r.json"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "opslib.cli",
            "run",
            "triage",
            "--evidence-dir",
            "s3://no-such/x",
            "--result-json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=200,
        env=env,
        cwd=tmp_path,
    )
    assert p.returncode == 4, p.stdout + p.stderr
    res = json.loads(out.read_text())
    assert res["exit_code"] == 4 and "could not write to s3://no-such/x" in res["exit_reason"]
    assert (tmp_path / res["bundle"] / "record.json").is_file()  # kept locally instead


def test_bad_input_exit_2_still_writes_result_json(env, tmp_path):
    out = tmp_path / "r.json"
    p = opslib_run(env, "-p", "bogus", "1", "--result-json", str(out))
    assert p.returncode == 2 and json.loads(out.read_text())["exit_code"] == 2


def test_exit_code_rules():
    dead = {
        "status": "failed",
        "error": {"ename": "DeadKernelError", "evalue": "Kernel died", "cell_index": 3},
    }
    assert exit_code(dead, 1)[0] == 4
    cell = {
        "status": "failed",
        "error": {"ename": "ConnectionError", "evalue": "db down", "cell_index": 3},
    }
    assert exit_code(cell, 1)[0] == 1  # the runbook's own check failed: not the machinery
    killed = {"status": "killed", "error": {"ename": "Killed", "cell_index": 4}}
    assert exit_code(killed, 1)[0] == 4  # the machine died under it: worth retrying
    assert exit_code({"status": "refused"}, 2, fail_on="info")[0] == 2
    assert (
        exit_code(
            {"results": {"findings": [{"severity": "error", "title": "x"}]}}, 0, fail_on="warning"
        )[0]
        == 3
    )
    assert (
        exit_code(
            {"results": {"findings": [{"severity": "info", "title": "x"}]}}, 0, fail_on="warning"
        )[0]
        == 0
    )


def test_evidence_flags_reach_the_runner(env, tmp_path):
    ev = tmp_path / "ev"
    p = opslib_run(env, "--evidence-dir", str(ev), "--max-output-mb", "0.000001")
    assert p.returncode == 0, p.stdout + p.stderr
    record = json.loads((Path(p.stdout.strip().splitlines()[-1]) / "record.json").read_text())
    assert record["outputs_moved"], record  # the bound moved the output out of the notebook
    locked = opslib_run(env, "--evidence-dir", str(ev), "--object-lock-mode", "governance")
    assert locked.returncode == 2 and "needs an s3:// evidence dir" in locked.stderr
