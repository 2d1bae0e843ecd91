"""Recovery of killed runs: SIGKILL leaves a staging dir; recovery writes a `killed` bundle from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import opslib
from opslib.cli import main
from opslib.core.errors import BadInputError
from opslib.evidence import recover as rec_mod
from opslib.evidence import verify
from opslib.evidence.record import RunRecord

pytestmark = pytest.mark.timeout(300)

PARAMS = """marker: str = ""  # file touched when the journal is written
seconds: int = 120  # how long to wait after it"""

BODY = """import time
from pathlib import Path
import opslib
from opslib.evidence import attachment_path

with open(attachment_path("journal.jsonl"), "a") as fh:
    for i in range(5):
        fh.write('{"moved": "m%d"}\\n' % i)
        fh.flush()
opslib.record("moved_so_far", 5)
print("journal written", flush=True)"""

WAIT = """Path(marker).write_text("ok")
time.sleep(seconds)
print("never printed")"""


@pytest.fixture
def staging(tmp_path, monkeypatch):
    root = tmp_path / "staging"
    monkeypatch.setenv(rec_mod.STAGING_ENV, str(root))
    return root


@pytest.fixture
def journal_nb(tmp_path):
    p = tmp_path / "journal_test.ipynb"
    params = new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Journal\n\nWrites a journal."),
            params,
            new_code_cell(BODY),
            new_code_cell(WAIT),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, str(p))
    return p


def start_and_kill(nb: Path, ev: Path, marker: Path, staging: Path) -> Path:
    """Start `opslib run` in a subprocess, wait until the journal is written, SIGKILL runner and kernel."""
    cmd = [
        sys.executable,
        "-m",
        "opslib.cli",
        "run",
        str(nb),
        "-p",
        "marker",
        str(marker),
        "--evidence-dir",
        str(ev),
    ]
    env = {**os.environ, rec_mod.STAGING_ENV: str(staging)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never reached its wait"
            time.sleep(0.1)
        [dirs] = [d for d in staging.iterdir() if d.is_dir()]
        kernel = json.loads((dirs / rec_mod.KERNEL_PID_FILE).read_text())["pid"]
        time.sleep(0.5)  # papermill saves the notebook after each cell
        proc.send_signal(signal.SIGKILL)  # the machine "died": runner and kernel at once
        os.kill(kernel, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while rec_mod.process_start(kernel) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
    return dirs


def test_sigkill_leaves_a_staging_dir_that_recovers_as_killed(
    journal_nb, tmp_path, staging, capsys
):
    ev = tmp_path / "ev"
    d = start_and_kill(journal_nb, ev, tmp_path / "marker", staging)
    assert (d / rec_mod.RUN_FILE).exists() and not ev.exists()
    assert [r.path for r in rec_mod.stale_runs()] == [d]
    assert main(["evidence", "recover", "--all"]) == 0
    bundle = capsys.readouterr().out.strip().splitlines()[-1]
    rec = RunRecord.load(bundle)
    assert rec["status"] == "killed" and rec.exit_code == 1
    assert rec.error["ename"] == "Killed" and "Path(marker)" in rec.error["cell_source"]
    assert rec.results == {"moved_so_far": 5}
    journal = (Path(bundle) / "attachments" / "journal.jsonl").read_text().splitlines()
    assert [json.loads(x)["moved"] for x in journal] == [f"m{i}" for i in range(5)]
    nb = (Path(bundle) / "journal-test.ipynb").read_text()
    assert "journal written" in nb and "never printed" not in json.dumps(
        [c.get("outputs") for c in json.loads(nb)["cells"]]
    )
    assert rec["recovered"]["staging_dir"] == str(d)
    assert verify(bundle).ok and verify(str(ev)).ok
    assert not d.exists()


def test_next_run_recovers_stale_dirs_first_and_chains_after(journal_nb, tmp_path, staging):
    ev = tmp_path / "ev"
    start_and_kill(journal_nb, ev, tmp_path / "marker", staging)
    tiny = str(Path(__file__).parents[1] / "fixtures" / "notebooks" / "tiny.ipynb")
    r = opslib.run(tiny, evidence_dir=ev)
    assert r.status == "succeeded"
    statuses = [
        RunRecord.load(ev / b).status
        for b in sorted(p.relative_to(ev).as_posix() for p in ev.glob("*/*"))
    ]
    assert sorted(statuses) == ["killed", "succeeded"]
    res = verify(str(ev))
    assert res.ok and "chain of 2" in " ".join(res.notes), str(res)
    assert [p for p in staging.iterdir()] == []


def test_recover_refuses_a_live_run_and_a_non_staging_dir(tmp_path, staging):
    d = staging / "live"
    d.mkdir(parents=True)
    rec_mod.write_run_file(d, {"runbook": "x", "evidence_dir": str(tmp_path / "ev")})
    with pytest.raises(BadInputError, match="still going"):
        rec_mod.recover(d)
    assert rec_mod.stale_runs() == []
    with pytest.raises(BadInputError, match="not an opslib staging dir"):
        rec_mod.recover(tmp_path)


# --------------------------------------------------------------------------- the DLQ redrive, killed


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant at once: a machine that died."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=20)


RUN_REDRIVE = """
import sys, opslib
opslib.run("dlq-redrive", {"dry_run": False, "approved_by": "tester", "change_ticket": "INC-9",
           "rate_limit_per_second": 20, "concurrency": 1}, sandbox=True, evidence_dir=sys.argv[1])
"""


def test_sigkill_mid_redrive_journal_in_recovered_bundle_lists_every_moved_message(
    sandbox, tmp_path, staging
):
    from opslib.aws.sqs.move.journal import journal_open_ids
    from opslib.clients import aws_client
    from opslib.sandbox.scenarios import dlq

    sqs = aws_client("sqs")
    urls = dlq.seed_queues(sqs)
    ev = tmp_path / "ev"
    env = {**os.environ, rec_mod.STAGING_ENV: str(staging)}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_REDRIVE, str(ev)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        journal = None
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the redrive never got going"
            found = list(staging.glob("*/attachments/redrive-journal.jsonl"))
            if found and found[0].read_text().count('"event":"deleted"') >= 60:
                journal = found[0]
                break
            time.sleep(0.2)
        _kill_tree(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not ev.exists() or not list(ev.glob("*/*/manifest.json"))  # no bundle: it was killed
    staged = journal.parent.parent
    bundle = rec_mod.recover(staged)
    rec = bundle.record
    assert rec["status"] == "killed" and rec["parameters"]["change_ticket"] == "INC-9"
    assert "redrive-journal.jsonl" in rec["attachments"]
    kept = Path(bundle.location) / "attachments" / "redrive-journal.jsonl"
    lines = [json.loads(x) for x in kept.read_text().splitlines() if x.strip().endswith("}")]
    sent_new_ids = {x["new_id"] for x in lines if x.get("event") == "sent"}
    # what actually arrived in the destination: every message there is in the journal
    arrived: set[str] = set()
    while True:
        got = sqs.receive_message(
            QueueUrl=urls[dlq.ORDERS],
            MaxNumberOfMessages=10,
            VisibilityTimeout=300,
            WaitTimeSeconds=0,
        )
        msgs = got.get("Messages", [])
        if not msgs:
            break
        arrived |= {m["MessageId"] for m in msgs}
    unjournalled = arrived - sent_new_ids
    in_flight = journal_open_ids(kept)  # sent (or sending) at the kill, not yet deleted
    assert len(arrived) >= 60
    assert len(unjournalled) <= len(in_flight), (len(unjournalled), len(in_flight))
    assert verify(bundle.location).ok
