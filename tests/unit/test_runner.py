"""Runner on real kernels: statuses and exit codes, results, canary secrets, interrupt, timeout."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import opslib
import opslib.runner
from opslib import runner
from opslib.core.errors import BadInputError, SecretInParameterError
from opslib.evidence import load_results, verify

FIXTURES = Path(__file__).parents[1] / "fixtures" / "notebooks"
TINY, FAILING, REFUSING, LONG, CANARY = (
    str(FIXTURES / f"{n}.ipynb") for n in ("tiny", "failing", "refusing", "long", "canary")
)

pytestmark = pytest.mark.timeout(120)


def probe_notebook(path: Path, parameters: str, code: str) -> Path:
    """A two-cell runbook at ``path``: a parameters cell and one probe cell."""
    from nbformat.v4 import new_code_cell, new_notebook

    params = new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(code)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


def bundle_files(bundle: str) -> dict[str, bytes]:
    base = Path(bundle)
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two runs of the tiny runbook into one evidence dir (shared: kernels are the slow part)."""
    ev = tmp_path_factory.mktemp("evidence")
    r1 = opslib.run(TINY, {"count": "2", "label": "first"}, evidence_dir=ev)
    r2 = runner.run(
        TINY, {"count": 5}, evidence_dir=ev, extra={"trigger": {"alert": "HighLatency"}}
    )
    return ev, r1, r2


def test_success_bundle(tiny_runs):
    _, r1, _ = tiny_runs
    assert (r1.status, r1.exit_code) == ("succeeded", 0)
    files = bundle_files(r1.bundle)
    assert set(files) == {
        "tiny.ipynb",
        "tiny.html",
        "record.json",
        "manifest.json",
        "attachments/journal.txt",
    }
    assert files["attachments/journal.txt"] == b"journal for first\n"
    rec = json.loads(files["record.json"])
    assert rec["parameters"] == {"count": 2, "label": "first", "ratio": 0.5, "dry_run": True}
    assert rec["parameters_given"] == ["count", "label"]
    assert rec["status"] == "succeeded" and rec["error"] is None
    assert rec["operator"]["os_user"]
    assert rec["started"].endswith("Z") and rec["finished"] >= rec["started"]
    assert rec["opslib_version"] == opslib.__version__
    assert len(rec["notebooks_commit"]) == 40
    assert verify(r1.bundle).ok


def test_extra_fields_reach_the_record_but_never_replace_its_own(tiny_runs, evidence_dir):
    _, r1, r2 = tiny_runs
    assert r2.record["trigger"] == {"alert": "HighLatency"}
    assert "trigger" not in r1.record
    with pytest.raises(BadInputError, match="status"):
        runner.run(TINY, {}, evidence_dir=evidence_dir, extra={"status": "succeeded"})
    assert not list(Path(evidence_dir).glob("*/record.json"))  # refused before anything ran


def test_results_in_record_and_metadata(tiny_runs):
    _, r1, _ = tiny_runs
    assert r1.record["results"] == {"count": 2, "label": "first", "ratio": 0.5, "items": [0, 1]}
    nb = nbformat.read(Path(r1.bundle) / "tiny.ipynb", as_version=4)
    assert nb.metadata.opslib.results["items"] == [0, 1]
    # papermill timings and the injected parameters are kept
    assert "duration" in nb.metadata.papermill
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all("duration" in c.metadata.papermill for c in nb.cells if c.cell_type == "code")


def test_html_readable_offline(tiny_runs):
    _, r1, _ = tiny_runs
    html = (Path(r1.bundle) / "tiny.html").read_text()
    assert "count=2 label=first" in html
    assert '<script src="http' not in html and '<link rel="stylesheet" href="http' not in html


def test_load_results_over_runs(tiny_runs):
    ev, r1, r2 = tiny_runs
    df = load_results(ev)
    assert list(df["count"]) == [2, 5]
    assert list(df["label"]) == ["first", "demo"]
    assert list(df["items"].map(len)) == [2, 5]
    assert str(df["started"].dt.tz) == "UTC"
    assert r2.record["results"]["count"] == 5


def test_chain_between_runs(tiny_runs):
    ev, r1, r2 = tiny_runs
    manifest = json.loads((Path(r2.bundle) / "manifest.json").read_text())
    assert manifest["previous_bundle"] == Path(r1.bundle).relative_to(ev).as_posix()
    assert verify(str(ev)).ok


def test_failed_run_records_error_and_cell(evidence_dir):
    r = opslib.run(FAILING, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("failed", 1)
    err = r.record["error"]
    assert err["ename"] == "ValueError" and "queue q1 exploded" in err["evalue"]
    assert "raise ValueError" in err["cell_source"]
    nb = nbformat.read(Path(r.bundle) / "failing.ipynb", as_version=4)
    assert "raise ValueError" in nb.cells[err["cell_index"]].source
    assert "before the failure" in json.dumps(
        [c.get("outputs") for c in nb.cells[: err["cell_index"]]]
    )
    assert verify(r.bundle).ok


def test_bad_input_raised_by_notebook_is_refused(evidence_dir):
    r = opslib.run(REFUSING, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("refused", 2)
    assert r.record["error"]["ename"] == "PreflightError"
    assert verify(r.bundle).ok


def test_validation_before_kernel(evidence_dir):
    t0 = time.monotonic()
    with pytest.raises(
        BadInputError, match=r"(?s)Unknown parameter 'nope'.*count: int = 3  # how many items"
    ):
        opslib.run(TINY, {"nope": 1}, evidence_dir=evidence_dir)
    with pytest.raises(BadInputError, match=r"(?s)must be int.*ratio: float"):
        opslib.run(TINY, {"count": "many"}, evidence_dir=evidence_dir)
    assert time.monotonic() - t0 < 5  # no kernel was started
    assert not any(evidence_dir.iterdir())


def test_param_file_and_override(tmp_path, evidence_dir):
    pf = tmp_path / "p.yaml"
    pf.write_text("count: 1\nlabel: from-file\n")
    with pytest.raises(BadInputError, match="Unknown parameter 'bogus'"):
        (tmp_path / "bad.yaml").write_text("bogus: 1\n")
        opslib.run(TINY, evidence_dir=evidence_dir, param_file=tmp_path / "bad.yaml")
    info, params = opslib.runner.prepare(TINY, {"label": "cli"}, param_file=pf)
    assert params == {"count": 1, "label": "cli"}


CANARIES = {
    "OPSLIB_CANARY_SECRET": "canary-env-secret-7f3a9",
    "OPSLIB_CANARY_TOKEN": "canary-token-b81c2d",
    # not a secret-named variable: only the URL / conninfo patterns protect it
    "OPSLIB_CANARY_URLPW": "canary-urlpw-55e1",
}


def test_canary_secrets_never_reach_the_bundle(evidence_dir, monkeypatch):
    for k, v in CANARIES.items():
        monkeypatch.setenv(k, v)
    r = opslib.run(CANARY, evidence_dir=evidence_dir)
    assert r.status == "failed"  # the notebook ends by raising with the secrets in the message
    files = bundle_files(r.bundle)
    assert {"canary.ipynb", "canary.html", "record.json", "attachments/leak.txt"} <= set(files)
    for name, data in files.items():
        for canary in [*CANARIES.values(), "AKIAABCDEFGHIJKLMNOP", "canary-fetched-at-runtime-42"]:
            assert canary.encode() not in data, f"{canary} leaked into {name}"
    # the evidence is still useful: the masked places are visible
    assert b"[REDACTED]" in files["canary.ipynb"] and b"db.internal:5432" in files["canary.ipynb"]
    assert "RuntimeError" == r.record["error"]["ename"]
    assert verify(r.bundle).ok


def test_conninfo_with_password_refused(evidence_dir):
    with pytest.raises(SecretInParameterError, match="PGPASSWORD"):
        opslib.run(CANARY, {"service": "host=db password=canary-pw"}, evidence_dir=evidence_dir)


def test_timeout_kills_and_keeps_partial_output(evidence_dir):
    t0 = time.monotonic()
    r = opslib.run(LONG, {"seconds": 60}, evidence_dir=evidence_dir, timeout=10)
    assert time.monotonic() - t0 < 45
    assert (r.status, r.exit_code) == ("timeout", 1)
    nb = (Path(r.bundle) / "long.ipynb").read_text()
    assert "partial output before the long wait" in nb
    assert "after the long cell" not in json.dumps(
        [c.get("outputs") for c in json.loads(nb)["cells"]]
    )
    assert "time.sleep(seconds)" in r.record["error"]["cell_source"]
    assert verify(r.bundle).ok


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_interrupts_and_still_writes_bundle(tmp_path, sig):
    ev = tmp_path / "ev"
    marker = tmp_path / "started"
    cmd = [
        sys.executable,
        "-m",
        "opslib.cli",
        "run",
        LONG,
        "-p",
        "seconds",
        "60",
        "-p",
        "marker",
        str(marker),
        "--evidence-dir",
        str(ev),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "long cell never started"
            time.sleep(0.1)
        time.sleep(0.3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    bundle = out.strip().splitlines()[-1]
    rec = json.loads((Path(bundle) / "record.json").read_text())
    assert rec["status"] == "interrupted"
    assert signal.Signals(sig).name in rec["error"]["evalue"]
    nb = (Path(bundle) / "long.ipynb").read_text()
    assert "partial output before the long wait" in nb
    assert verify(bundle).ok
    assert os.path.isdir(ev)


def test_max_output_mb_moves_outputs_out_of_the_notebook(evidence_dir):
    r = opslib.runner.run(TINY, {"count": 1}, evidence_dir=evidence_dir, max_output_mb=0.00005)
    assert r.status == "succeeded"
    moved = r.record["outputs_moved"]
    assert moved and all(m["attachment"].startswith("attachments/output-") for m in moved)
    assert "is over the bound of 5e-05 MB" in (Path(r.bundle) / "tiny.html").read_text()
    assert verify(r.bundle).ok


def test_kernel_never_sees_the_signing_key_or_the_receivers_secrets(
    evidence_dir, tmp_path, monkeypatch
):

    from opslib.core.runtime import SERVE_SECRET_ENVS
    from opslib.evidence import signing

    priv, _pub = signing.generate(tmp_path / "k")
    monkeypatch.setenv(signing.SIGNING_KEY_ENV, str(priv))
    for name in SERVE_SECRET_ENVS:  # what an `opslib serve` run inherits from the receiver
        monkeypatch.setenv(name, "receiver-secret-canary-51f0")
    path = probe_notebook(
        tmp_path / "probe.ipynb",
        'label: str = ""  # a label',
        "import os\nprint('key in kernel:', os.environ.get('OPSLIB_SIGNING_KEY'))\n"
        "print('serve secrets in kernel:', "
        "sorted(k for k in os.environ if k.startswith('OPSLIB_SERVE_')))",
    )
    r = opslib.run(str(path), evidence_dir=evidence_dir)
    assert r.status == "succeeded"
    assert (Path(r.bundle) / "manifest.sig").is_file()
    executed = (Path(r.bundle) / "probe.ipynb").read_text()
    assert "key in kernel: None" in executed
    assert "serve secrets in kernel: []" in executed


def test_kernel_sockets_fit_sun_path_when_the_staging_dir_is_deep(tmp_path):
    """A deep staging dir (pytest-xdist's tmp paths, a long $HOME) cannot hold unix sockets
    (108 bytes with the NUL): the kernel's sockets go to a short private dir instead, which is
    removed with the manager; a short staging dir keeps them."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    km = runner.kernel_manager({}, deep)
    short = Path(km.ip).parent
    assert len(km.ip) + len("-99999") <= 107 and short != deep and short.is_dir()
    assert (short.stat().st_mode & 0o777) == 0o700
    del km
    import gc

    gc.collect()
    assert not short.exists()
    near = Path("/tmp") / "k"
    assert runner.kernel_manager({}, near).ip == str(near / "kernel")


def test_kernel_exit_still_runs_atexit_and_flushes_files(evidence_dir, tmp_path):
    """Headless kernels end without the interpreter's teardown (opslib.core.kernel_launcher);
    what a normal exit does outside the process still happens: atexit handlers run, a file
    left open is flushed, and the run is done only once the kernel is gone."""
    out = tmp_path / "kernel-exit"
    out.mkdir()
    path = probe_notebook(
        tmp_path / "exit_probe.ipynb",
        'out_dir: str = ""  # where the probe writes',
        "import atexit, os\n"
        "atexit.register(lambda: open(os.path.join(out_dir, 'atexit.txt'), 'w').write('ran'))\n"
        "left_open = open(os.path.join(out_dir, 'open.txt'), 'w')\n"
        "left_open.write('flushed at exit')\n"
        "print('kernel pid', os.getpid())",
    )
    r = opslib.run(str(path), {"out_dir": str(out)}, evidence_dir=evidence_dir)
    assert r.status == "succeeded"
    executed = next(Path(r.bundle).glob("*.ipynb")).read_text()
    pid = int(re.search(r"kernel pid (\d+)", executed).group(1))
    assert not Path(f"/proc/{pid}").exists()
    assert (out / "atexit.txt").read_text() == "ran"
    assert (out / "open.txt").read_text() == "flushed at exit"


def test_kernel_that_used_multiprocessing_still_shuts_down_gracefully(evidence_dir, tmp_path):
    """A cell that started multiprocessing's forkserver and resource tracker (as the DLQ
    move's worker processes do): the kernel stops them at shutdown, so ipykernel does not wait
    on the tracker (which ignores SIGTERM) until jupyter_client kills the kernel, and the
    kernel's own exit still runs its atexit handlers, which a kill would skip."""
    out = tmp_path / "mp-exit"
    out.mkdir()
    path = probe_notebook(
        tmp_path / "mp_probe.ipynb",
        'out_dir: str = ""  # where the probe writes',
        "import atexit, multiprocessing, os\n"
        "ctx = multiprocessing.get_context('forkserver')\n"
        "p = ctx.Process(target=os.getpid)\n"
        "p.start(); p.join()\n"
        "lock = ctx.Lock()  # a semaphore the resource tracker watches\n"
        "atexit.register(lambda: open(os.path.join(out_dir, 'atexit.txt'), 'w').write('ran'))\n"
        "print('exit code of the child', p.exitcode)",
    )
    r = opslib.run(str(path), {"out_dir": str(out)}, evidence_dir=evidence_dir)
    assert r.status == "succeeded"
    assert "exit code of the child 0" in next(Path(r.bundle).glob("*.ipynb")).read_text()
    assert (out / "atexit.txt").read_text() == "ran"
