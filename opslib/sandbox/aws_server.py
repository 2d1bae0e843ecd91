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


def start(*, log: Path, env: dict[str, str], attempts: int = 3) -> dict:
    """Start ``python -m moto.server`` on a free port; return its process record (with ``url``).

    The port is picked just before the start, so another process may grab it first: then
    moto exits at once and the next attempt takes another port.
    """
    for attempt in range(1, attempts + 1):
        port = procs.free_port()
        url = f"http://127.0.0.1:{port}"
        rec = procs.spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            log=log,
            env=env,
        )
        procs.wait_until(
            lambda rec=rec, url=url: not procs.alive(rec) or _answers(url),
            timeout=START_TIMEOUT,
            interval=0.2,
        )
        if procs.alive(rec) and _answers(url):
            return {**rec, "port": port, "url": url}
        was_alive = procs.stop(rec)
        if was_alive or attempt == attempts:  # hung rather than lost a port race: do not retry
            break
    raise SandboxError(
        f"The moto server (AWS APIs) did not answer on {url} within {START_TIMEOUT}s. "
        f"Log: {log}\n{procs.tail(log)}"
    )
