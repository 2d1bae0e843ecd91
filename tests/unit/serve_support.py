"""Helpers for the receiver and scheduler tests: a fixture runbook written at test time, a
running ``opslib serve`` subprocess on a free loopback port, and bounded waits on its API.

The runbook ``triage`` is small on purpose (one kernel, no clients): the receiver's behaviour
(persistence, dedup, bounds, the always-dry rule) is what is under test, not a runbook.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def write_triage_notebook(directory: Path) -> Path:
    """``triage``: records its parameters and one finding of the given severity."""
    directory.mkdir(parents=True, exist_ok=True)
    params = new_code_cell(
        'service: str = ""  # the service that alerted\n'
        'severity: str = "warning"  # severity of the finding it records\n'
        "sleep_s: float = 0  # seconds to take, for concurrency tests\n"
        'marker_dir: str = ""  # a file per run is touched here while it runs\n'
        "dry_run: bool = True  # plan only\n"
        'approved_by: str = ""  # who approves'
    )
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Triage\n\nA fixture triage runbook for the alert receiver tests."),
            params,
            new_code_cell("import os, time\nfrom pathlib import Path\n\nimport opslib"),
            new_code_cell(
                "if marker_dir:\n"
                "    m = Path(marker_dir) / f\"{os.environ['OPSLIB_RUN_ID']}.running\"\n"
                '    m.write_text("1")\n'
                "time.sleep(sleep_s)\n"
                "if marker_dir:\n"
                "    m.unlink()\n"
                '    (Path(marker_dir) / f"{os.environ[\'OPSLIB_RUN_ID\']}.done").write_text("1")'
            ),
            new_code_cell(
                'opslib.record("service", service)\n'
                'opslib.record("dry_run_seen", dry_run)\n'
                'opslib.record("approved_by_seen", approved_by)\n'
                'opslib.record("verdict", f"{severity.upper()}: {service} checked")\n'
                'opslib.record("findings", [{"severity": severity, "title": f"{service} is slow"}])'
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = directory / "triage.ipynb"
    nbformat.write(nb, path)
    return path


def AUTH_HEADER(token: str) -> dict[str, str]:  # noqa: N802  reads like a constant
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """One ``opslib serve`` subprocess; ``url`` once it listens. Stopped by :meth:`stop`."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60.0, port: int = 0) -> Receiver:
        port = port or free_port()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opslib.cli", "serve", *self.args, "--port", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"opslib serve exited {self.proc.returncode}:\n{self.log.read_text()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(
            f"opslib serve did not listen within {timeout}s:\n{self.log.read_text()}"
        )

    def kill(self) -> None:
        """SIGKILL the receiver and everything it started (a crash, not a clean stop)."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def post(self, source: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(
            f"{self.url}/alerts/{source}",
            content=data,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=30,
        )

    def runs(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/runs", timeout=10).json()

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/healthz", timeout=10).json()


@contextlib.contextmanager
def receiver(
    args: list[str], *, env: dict[str, str], log: Path, port: int = 0
) -> Iterator[Receiver]:
    r = Receiver(args, env=env, log=log)
    try:
        yield r.start(port=port)
    finally:
        r.stop()


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, poll: float = 0.5) -> Any:
    """``check()`` until truthy (returned), else AssertionError naming ``what`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def finished(r: Receiver, n: int) -> list[dict[str, Any]] | None:
    done = [x for x in r.runs() if x["state"] == "done"]
    return done if len(done) >= n else None


def am_webhook(
    *,
    alertname: str = "HighLatency",
    service: str = "auth-service",
    status: str = "firing",
    starts: str = "2024-05-01T10:00:00Z",
    fingerprint: str = "f00d",
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels = {
        "alertname": alertname,
        "service": service,
        "severity": "critical",
        **(extra_labels or {}),
    }
    return {
        "version": "4",
        "receiver": "opslib",
        "status": status,
        "groupKey": '{}:{alertname="' + alertname + '"}',
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "p99 over 500 ms"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.test/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


@contextlib.contextmanager
def kube_api(state: Path, timeout: float = 60.0) -> Iterator[Path]:
    """The sandbox's Kubernetes API emulator alone (no AWS, PostgreSQL or scenario seeding):
    what the scheduler and the kubernetes executor tests need. Yields its kubeconfig."""
    from opslib.sandbox.kube.server import write_kubeconfig

    state.mkdir(parents=True, exist_ok=True)
    log = (state / "kube.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "opslib.sandbox.kube", "--port", "0", "--state", str(state)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        port_file = state / "port"
        wait_for(port_file.exists, timeout=timeout, what="the Kubernetes API emulator", poll=0.1)
        yield write_kubeconfig(state / "kubeconfig", f"http://127.0.0.1:{port_file.read_text()}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()
