"""Benchmark: the backup runbook's PostgreSQL base backup vs bare pg_basebackup, same run.

Builds its own throwaway cluster (never the shared sandbox) holding at least ``--size-mb`` of
data (default 1024: the >= 1 GB the runbook is sized for; ``--size-mb 64`` for a quick check),
then, alternating, ``--rounds`` times each:

- runbook: the plan the backup flow makes (``basebackup.plan_base_backup``) applied through
  ``executors.bind`` with the handler :mod:`opslib.pg.basebackup` registered, timing the
  backup itself (``backup_seconds``: pg_basebackup -Ft -X stream -c fast plus the runbook's
  checks, label read and sizing) and, separately, the ``pg_verifybackup`` that follows it;
- bare: ``pg_basebackup -D DIR -Ft -X stream -c fast`` by hand, as the same OS user.

Prints both medians, the ratio, and the verification time; FAILS (exit 1) when the runbook's
backup is slower than 1.2x the bare one (the goal is 1.05x).

    .venv/bin/python bench/backup_postgres.py [--size-mb 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opslib.core import executors
from opslib.pg import basebackup, binaries, pitr

FLOOR = 1.2
GOAL = 1.05


def user() -> str:
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def as_user(argv: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 3600)
    if os.geteuid() == 0:
        kw["user"] = user()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return subprocess.run(argv, env=env, cwd="/", **kw)


def psql(bin_dir: str, port: int, sql: str, db: str = "bench") -> str:
    argv = [
        f"{bin_dir}/psql",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        "bench",
        "-d",
        db,
        "-Atqc",
        sql,
    ]
    return as_user(argv).stdout.strip()


def build(root: Path, bin_dir: str, size_mb: int) -> int:
    """initdb, start, load >= size_mb of table data; returns the port."""
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, user())
    as_user([f"{bin_dir}/initdb", "-D", str(data), "-U", "bench", "--auth=trust", "--no-sync",
             "-E", "UTF8", "--locale=C"])  # fmt: skip
    port = pitr.free_port()
    with open(data / "postgresql.conf", "a") as fh:
        fh.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "wal_level = replica\nfsync = off\nsynchronous_commit = off\nmax_wal_size = '2GB'\n"
        )
    as_user(
        [
            f"{bin_dir}/pg_ctl",
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    psql(bin_dir, port, "create database bench", db="postgres")
    psql(bin_dir, port, "create table ledger (id bigint, account int, amount bigint, memo text)")
    n, batch = 0, 1_000_000
    while int(psql(bin_dir, port, "select pg_database_size('bench')")) < size_mb * 1024 * 1024:
        psql(bin_dir, port, f"insert into ledger select g, g % 1000, g * 7, md5(g::text) || md5((g+1)::text) "
             f"from generate_series({n + 1}, {n + batch}) g")  # fmt: skip
        n += batch
    psql(bin_dir, port, "checkpoint")
    return port


def runbook_backup(port: int, into: Path) -> tuple[float, float, int]:
    """The flow's change through the registered handler: (backup s, verify s, bytes)."""
    dsn = f"host=127.0.0.1 port={port} user=bench dbname=bench"
    change = basebackup.plan_base_backup(dsn, str(into), label="bench", resource="bench")
    execute = executors.bind({"timeout_s": 3600.0}, allowed={basebackup.ACTION_BASEBACKUP})
    out = execute(change)
    d = out.data
    return float(d["backup_seconds"]), float(d["verify_seconds"]), int(d["size_bytes"])


def bare_backup(bin_dir: str, port: int, into: Path) -> float:
    into.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(into, user())
    t0 = time.monotonic()
    as_user([f"{bin_dir}/pg_basebackup", "-h", "127.0.0.1", "-p", str(port), "-U", "bench", "-D", str(into),
             "-Ft", "-X", "stream", "-c", "fast"])  # fmt: skip
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--size-mb", type=int, default=1024, help="data to back up (default 1024 = 1 GB)"
    )
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    bin_dir = str(binaries.find_bin_dir())
    root = Path(tempfile.mkdtemp(prefix="opslib-bench-backup-"))
    os.chmod(root, 0o755)
    try:
        t0 = time.monotonic()
        port = build(root, bin_dir, args.size_mb)
        size = int(psql(bin_dir, port, "select pg_database_size('bench')"))
        print(
            f"cluster: {size / 2**20:.0f} MiB in database bench (built in {time.monotonic() - t0:.0f} s)"
        )
        ours, bare, verify = [], [], []
        for i in range(args.rounds):
            b, v, nbytes = runbook_backup(port, root / f"runbook-{i}")
            ours.append(b)
            verify.append(v)
            shutil.rmtree(root / f"runbook-{i}")
            bare.append(bare_backup(bin_dir, port, root / f"bare-{i}"))
            shutil.rmtree(root / f"bare-{i}")
            print(f"round {i + 1}: runbook {b:.2f} s (+ pg_verifybackup {v:.2f} s), bare {bare[-1]:.2f} s, "
                  f"backup {nbytes / 2**20:.0f} MiB")  # fmt: skip
        m_ours, m_bare = statistics.median(ours), statistics.median(bare)
        ratio = m_ours / m_bare
        print(f"runbook base backup (median): {m_ours:.2f} s")
        print(f"bare pg_basebackup  (median): {m_bare:.2f} s")
        print(f"ratio: {ratio:.3f}x (floor {FLOOR}x, goal {GOAL}x)")
        print(f"pg_verifybackup after the runbook's backup (median): {statistics.median(verify):.2f} s "
              "(not in the ratio: bare pg_basebackup verifies nothing)")  # fmt: skip
        return 0 if ratio <= FLOOR else 1
    finally:
        subprocess.run([f"{bin_dir}/pg_ctl", "-D", str(root / "data"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, **({"user": user()} if os.geteuid() == 0 else {}))  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
