"""The sandbox's AWS APIs: moto's server mode as a background process on 127.0.0.1.

A real HTTP server rather than in-process ``mock_aws``: notebooks run in their own kernels
and ``opslib run`` in its own process, and all of them must see the same seeded queues,
tables and clusters through plain ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from opslib.errors import SandboxError
from opslib.sandbox import procs

START_TIMEOUT = 30


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=2) as resp:
            return resp.status < 500
    except OSError:
        return False


def start(*, log: Path, env: dict[str, str]) -> dict:
    """Start ``python -m moto.server`` on a free port; return its process record (with ``url``)."""
    port = procs.free_port()
    url = f"http://127.0.0.1:{port}"
    rec = procs.spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                      log=log, env=env)
    if not procs.wait_until(lambda: not procs.alive(rec) or _answers(url), timeout=START_TIMEOUT,
                            interval=0.2) or not procs.alive(rec):
        procs.stop(rec)
        raise SandboxError(
            f"The moto server (AWS APIs) did not answer on {url} within {START_TIMEOUT}s. "
            f"Log: {log}\n{procs.tail(log)}"
        )
    return {**rec, "port": port, "url": url}
