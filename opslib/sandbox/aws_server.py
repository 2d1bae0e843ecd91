"""The sandbox's AWS APIs: moto's server mode as a background process on 127.0.0.1.

A real HTTP server rather than in-process ``mock_aws``: notebooks run in their own kernels
and ``opslib run`` in its own process, and all of them must see the same seeded queues,
tables and clusters through plain ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from opslib.core.errors import SandboxError
from opslib.sandbox import procs

START_TIMEOUT = 30


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=2) as resp:
            return resp.status < 500
    except OSError:
        return False


def launch(*, log: Path, env: dict[str, str]) -> dict:
    """Spawn ``python -m moto.server`` on a free port without waiting (see :func:`ready`)."""
    port = procs.free_port()
    rec = procs.spawn(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log=log, env=env
    )
    return {**rec, "port": port, "url": f"http://127.0.0.1:{port}"}


def ready(rec: dict, *, log: Path, env: dict[str, str], attempts: int = 3) -> dict:
    """Wait (bounded) until the launched server answers; return the record of the one that does.

    The port is picked just before the start, so another process may grab it first: then
    moto exits at once and another port is tried.
    """
    for attempt in range(1, attempts + 1):
        procs.wait_until(
            lambda rec=rec: not procs.alive(rec) or _answers(rec["url"]),
            timeout=START_TIMEOUT,
            interval=0.1,
        )
        if procs.alive(rec) and _answers(rec["url"]):
            return rec
        was_alive = procs.stop(rec)
        if was_alive or attempt == attempts:  # hung rather than lost a port race: do not retry
            break
        rec = launch(log=log, env=env)
    raise SandboxError(
        f"The moto server (AWS APIs) did not answer on {rec['url']} within {START_TIMEOUT}s. "
        f"Log: {log}\n{procs.tail(log)}"
    )


def start(*, log: Path, env: dict[str, str]) -> dict:
    """Launch and wait: the record of a moto server that answers."""
    return ready(launch(log=log, env=env), log=log, env=env)
