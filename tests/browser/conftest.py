"""JupyterLab + headless Chromium for the browser tests (``pytest -m browser tests/browser``).

JupyterLab runs on 127.0.0.1 on a free port with a temporary root, settings and token; its
environment is the test session's (the sandbox's variables included, ``OPSLIB_HEADLESS``
removed) so kernels reach the sandbox and take the interactive path. The browser is Debian's
Chromium (``/usr/bin/chromium``), never a Playwright download. Every wait is bounded.
Screenshots of each step land in the test's temporary directory, which is reported (and kept
by pytest) when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds for JupyterLab to answer /api/status.
SERVER_START_TIMEOUT = 30
#: JupyterHub user name given to the kernels: the approver the evidence must name.
HUB_USER = "oncall-e2e"

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: its URL, token, root dir and evidence dir."""

    def __init__(self, root: Path, evidence: Path, port: int, token: str, proc: subprocess.Popen):
        self.root, self.evidence, self.port, self.token, self.proc = (
            root,
            evidence,
            port,
            token,
            proc,
        )
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"


def _write_settings(settings: Path) -> None:
    """No cell virtualisation (every output stays in the DOM), no news or update checks."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for rel, body in files.items():
        p = settings / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(body))


@pytest.fixture(scope="module")
def lab(sandbox, tmp_path_factory):
    """JupyterLab on a free loopback port over an empty temporary root, with the sandbox env."""
    base = tmp_path_factory.mktemp("lab")
    root, evidence, settings = base / "root", base / "evidence", base / "settings"
    for d in (root, evidence, settings, base / "config", base / "runtime", base / "workspaces"):
        d.mkdir()
    _write_settings(settings)
    token = uuid.uuid4().hex
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OPSLIB_HEADLESS"}
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        OPSLIB_EVIDENCE_DIR=str(evidence),
        JUPYTERHUB_USER=HUB_USER,
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = open(base / "jupyterlab.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2
            ):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop(proc)
                log.close()
                pytest.fail(
                    f"JupyterLab did not start within {SERVER_START_TIMEOUT} s; log: "
                    + (base / "jupyterlab.log").read_text(errors="replace")[-3000:]
                )
            time.sleep(0.3)
    yield Lab(root, evidence, port, token, proc)
    _stop(proc)
    log.close()


def _stop(proc: subprocess.Popen) -> None:
    """Stop the JupyterLab we started (its process group: the server and its kernels)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); "
            "the browser tests never download a browser."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


class Shots:
    """Numbered screenshots of each step in the test's temporary directory."""

    def __init__(self, page, directory: Path):
        self.page, self.dir, self.n = page, directory, 0
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True, timeout=15_000)
        return path


@pytest.fixture
def page(browser, tmp_path, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.shots = Shots(pg, tmp_path / "screenshots")
    yield pg
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        try:
            pg.shots("failure")
        except Exception as exc:  # the page may be gone; the earlier shots are still kept
            print(f"could not take the failure screenshot: {exc}")
        print(f"screenshots kept in {pg.shots.dir}")
    context.close()


def copy_runbook(
    src: Path, root: Path, values: dict, *, extra_files: tuple[Path, ...] = ()
) -> Path:
    """Copy a notebook into the Jupyter root with its parameters cell set to ``values``.

    Each parameters line ``name: type = value  # help`` keeps its type and help; only the
    literal changes, the way an engineer edits the cell before "Run All".
    """
    import nbformat

    nb = nbformat.read(src, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    lines, seen = [], set()
    for line in cell.source.splitlines():
        name = line.split(":", 1)[0].strip()
        if name in values and ":" in line and "=" in line:
            head, _, rest = line.partition("=")
            comment = rest[rest.index("#") :] if "#" in rest else ""
            line = f"{head}= {values[name]!r}" + (f"  {comment}" if comment else "")
            seen.add(name)
        lines.append(line)
    missing = set(values) - seen
    assert not missing, f"{src.name} has no parameters {sorted(missing)}"
    cell.source = "\n".join(lines)
    dest = root / src.name
    nbformat.write(nb, dest)
    for f in extra_files:
        shutil.copy(f, root / f.name)
    return dest


def write_demo_notebook(root: Path, values: dict, name: str = "demo_approval.ipynb") -> Path:
    """The harness's own runbook (S3 buckets on the sandbox), written into the Jupyter root.

    Built here rather than kept as a .ipynb under tests/, so nbval never collects it; its helper
    module ``demo_change.py`` is copied beside it for the kernel to import. Thin like a real
    runbook: parameters, a choice, the plan, a chart, the gate, a record, the capture.
    """
    import nbformat as nbf

    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbf.v4.new_code_cell(
        'prefix: str = "opslib-browser-demo"  # bucket name prefix\n'
        "dry_run: bool = True  # plan only unless False\n"
        'approved_by: str = ""  # empty in JupyterLab: the Approve button asks\n'
        'change_ticket: str = ""  # change ticket id'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbf.v4.new_markdown_cell(
            "# Browser demo\n\nCreates S3 buckets on the sandbox, to prove approval and capture."
        ),
        params,
        nbf.v4.new_code_cell(
            "import demo_change\n\nimport opslib\nfrom opslib import interactive, safety\n\n"
            "s3 = demo_change.s3_client()"
        ),
        nbf.v4.new_markdown_cell("## Which buckets"),
        nbf.v4.new_code_cell(
            'pick = interactive.choose(["alpha", "beta"], selected=["alpha"], description="Buckets")'
        ),
        nbf.v4.new_markdown_cell("## Plan"),
        nbf.v4.new_code_cell("plan = demo_change.plan_buckets(prefix, pick.final(), s3=s3)\nplan"),
        nbf.v4.new_code_cell('demo_change.chart(len(plan.changes), "planned")'),
        nbf.v4.new_markdown_cell("## Apply"),
        nbf.v4.new_code_cell(
            "result = safety.gate(plan, dry_run=dry_run, approved_by=approved_by,\n"
            "                     change_ticket=change_ticket, execute=demo_change.executor(s3=s3),\n"
            "                     on_applied=demo_change.on_applied)"
        ),
        nbf.v4.new_code_cell('opslib.record("buckets_planned", len(plan.changes))'),
        nbf.v4.new_markdown_cell("## Evidence"),
        nbf.v4.new_code_cell("opslib.capture_evidence()"),
    ]
    staging = root / ".demo-src"
    staging.mkdir(exist_ok=True)
    src = staging / name
    nbf.write(nb, src)
    return copy_runbook(src, root, values, extra_files=(HERE / "demo_change.py",))
