"""Background processes of the sandbox: started in their own session, stopped by pid.

Every process is recorded with its pid and its kernel start time (``/proc/PID/stat`` field
22), so ``down`` never signals a recycled pid that now belongs to someone else, and never
needs a broad ``pkill``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot, or "" when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; only its exit status is left
        return ""
    return fields[19]


def alive(record: dict | None) -> bool:
    """True when the recorded process still runs (same pid AND same start time)."""
    if not record or not record.get("pid"):
        return False
    return start_time(int(record["pid"])) == record.get("start")


def spawn(argv: list[str], *, log: Path, env: dict | None = None, cwd: str | None = None) -> dict:
    """Start ``argv`` in a new session (its own process group), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    return {
        "pid": proc.pid,
        "start": start_time(proc.pid),
        "argv": [str(a) for a in argv],
        "log": str(log),
    }


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our child (else it lingers as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its own parent (or init) reaps it


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # started with start_new_session: pgid == pid, children included
    except ProcessLookupError:
        pass  # already gone
    except PermissionError:
        os.kill(pid, sig)


def stop_many(records: dict[str, dict | None], *, grace: float = 5.0) -> list[str]:
    """SIGTERM every recorded process group at once, SIGKILL what is left after ``grace``
    seconds; returns the names that were running. Only pids whose start time still matches
    the record are signalled."""
    running = {name: rec for name, rec in records.items() if alive(rec)}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        left = {n: r for n, r in running.items() if alive(r)}
        if not left:
            break
        for rec in left.values():
            _signal(int(rec["pid"]), sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for rec in left.values():
                _reap(int(rec["pid"]))
            if not any(alive(r) for r in left.values()):
                break
            time.sleep(0.05)
    for rec in running.values():
        _reap(int(rec["pid"]))
    return sorted(running)


def stop(record: dict | None, *, grace: float = 5.0) -> bool:
    """SIGTERM the recorded process group, SIGKILL after ``grace`` seconds; True if it was running."""
    return bool(stop_many({"p": record}, grace=grace))


def wait_until(check, *, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``check()`` until it is truthy or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path | str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
