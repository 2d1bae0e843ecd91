"""The opslib command: thin over the API; exit codes 0/1/2; bundle path last on stdout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opslib.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures" / "notebooks"
pytestmark = pytest.mark.timeout(120)


def opslib_cmd(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "opslib.cli", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )


@pytest.fixture
def books(monkeypatch, tmp_path):
    d = tmp_path / "notebooks"
    shutil.copytree(FIXTURES, d)
    monkeypatch.setenv("OPSLIB_NOTEBOOKS", str(d))
    return d


def test_list(books, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tiny: A tiny runbook for runner tests: records a few results." in out
    assert "count: int = 3  # how many items" in out
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {b["name"] for b in data} >= {"tiny", "long"}


def test_run_success_prints_bundle_last(books, tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text("label: from-file\ncount: 9\n")
    ev = tmp_path / "ev"
    p = opslib_cmd("run", "tiny", "-f", str(pf), "-p", "count", "4", "--evidence-dir", str(ev))
    assert p.returncode == 0, p.stderr
    bundle = Path(p.stdout.strip().splitlines()[-1])
    assert bundle.parent.parent == ev and (bundle / "tiny.html").exists()
    rec = json.loads((bundle / "record.json").read_text())
    assert rec["parameters"] == {"label": "from-file", "count": 4, "ratio": 0.5, "dry_run": True}
    assert "succeeded" in p.stdout

    assert main(["evidence", "verify", str(bundle)]) == 0
    assert main(["evidence", "verify", str(ev)]) == 0


def test_run_failed_exit_1(books, tmp_path):
    p = opslib_cmd("run", "failing", "--evidence-dir", str(tmp_path / "ev"))
    assert p.returncode == 1
    bundle = Path(p.stdout.strip().splitlines()[-1])
    assert json.loads((bundle / "record.json").read_text())["status"] == "failed"
    assert "ValueError" in p.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "bogus", "1"], "Unknown parameter 'bogus'"),
        (["-p", "count", "three"], "must be int"),
    ],
)
def test_bad_input_exit_2_lists_parameters(books, tmp_path, capsys, args, needle):
    ev = tmp_path / "ev"
    assert main(["run", "tiny", *args, "--evidence-dir", str(ev)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "count: int = 3  # how many items" in err and "ratio: float" in err
    assert not ev.exists()  # refused before any kernel: no bundle


def test_secret_parameter_exit_2(books, tmp_path, capsys):
    args = ["-p", "service", "host=db user=app password=pw", "--evidence-dir", str(tmp_path)]
    assert main(["run", "canary", *args]) == 2
    assert "PGPASSWORD" in capsys.readouterr().err


def test_unknown_runbook_exit_2(books, capsys):
    assert main(["run", "no-such-runbook"]) == 2
    assert "Known runbooks" in capsys.readouterr().err


def test_evidence_list(books, tmp_path, capsys):
    ev = tmp_path / "ev"
    assert opslib_cmd("run", "tiny", "-p", "count", "2", "--evidence-dir", str(ev)).returncode == 0
    assert main(["evidence", "list", str(ev)]) == 0
    out = capsys.readouterr().out
    assert "RUNBOOK" in out and "tiny" in out and "succeeded" in out and "count=2" in out


def test_sandbox_env_and_status(sandbox, capsys):
    assert main(["sandbox", "env"]) == 0
    out = capsys.readouterr().out
    assert "AWS_ENDPOINT_URL" in out and sandbox.aws_endpoint in out
    assert main(["sandbox", "status"]) == 0
