"""Benchmark: PostgreSQL PITR through the runbook's library path vs the same recovery by hand.

Builds its own throwaway cluster (never the shared sandbox) with WAL archiving, takes a base
backup, then writes at least 256 MB of WAL, records a time, commits once more, and switches
WAL so the archive holds everything. Then, alternating, it restores to that time:

- runbook: the pitr-restore flow as its notebook runs it (``pitr_restore.inputs``,
  ``preflight``, ``plan``, then every change through ``pitr_restore.executor``, which dispatches
  to the handlers :mod:`opslib.pg.pitr` registered), without the gate's approval step;
- raw: ``cp -a`` the backup, append the same recovery settings, touch recovery.signal,
  ``pg_ctl start``, poll ``psql -c 'select pg_is_in_recovery()'`` until false.

Each restore is checked (row count at the restore point) and removed. Prints both medians,
the ratio, and FAILS (exit 1) when the runbook path is slower than 1.3x the raw recovery.

    .venv/bin/python bench/pitr_postgres.py [--wal-mb 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opslib.core.plans import ChangeStatus
from opslib.core.progress import no_progress
from opslib.pg import pitr
from opslib.runbooks import pitr_restore
from opslib.runbooks.pitr_restore.engines.postgres import source_of

FLOOR = 1.3


def user() -> str:
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def as_user(argv: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    if os.geteuid() == 0:
        kw["user"] = user()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return subprocess.run(argv, env=env, cwd="/", **kw)


def psql(bin_dir: str, port: int, sql: str, db: str = "bench") -> str:
    return as_user(
        [
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
    ).stdout.strip()


def build_source(root: Path, bin_dir: str, wal_mb: int) -> dict:
    """initdb + archive, base backup, >= wal_mb of WAL after it, the restore time, a switch."""
    data, archive, base = root / "data", root / "archive", root / "base"
    archive.mkdir()
    base.mkdir(mode=0o700)
    if os.geteuid() == 0:
        for p in (root, archive, base):
            shutil.chown(p, user())
    as_user(
        [
            f"{bin_dir}/initdb",
            "-D",
            str(data),
            "-U",
            "bench",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]
    )
    port = pitr.free_port()
    with open(data / "postgresql.conf", "a") as fh:
        fh.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "wal_level = replica\narchive_mode = on\n"
            f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'\n"
            "fsync = off\nsynchronous_commit = off\nmax_wal_size = '1GB'\nfull_page_writes = on\n"
        )
    as_user(
        [
            f"{bin_dir}/pg_ctl",
            "-D",
            str(data),
            "-l",
            str(root / "source.log"),
            "-w",
            "-t",
            "30",
            "start",
        ]
    )
    psql(bin_dir, port, "create database bench", db="postgres")
    as_user(
        [
            f"{bin_dir}/pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "bench",
            "-D",
            str(base),
            "-Fp",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ]
    )
    start_lsn = psql(bin_dir, port, "select pg_current_wal_lsn()")
    psql(
        bin_dir,
        port,
        "create table ledger (id bigint primary key, account int, amount bigint, memo text)",
    )
    batch, n = 500_000, 0
    while True:
        psql(
            bin_dir,
            port,
            f"insert into ledger select g, g % 1000, g * 7, md5(g::text) || md5((g+1)::text) "
            f"from generate_series({n + 1}, {n + batch}) g",
        )
        n += batch
        wal = int(
            float(
                psql(bin_dir, port, f"select pg_wal_lsn_diff(pg_current_wal_lsn(), '{start_lsn}')")
            )
        )
        if wal >= wal_mb * 1024 * 1024:
            break
    time.sleep(1.0)
    target = dt.datetime.fromisoformat(
        psql(
            bin_dir,
            port,
            "select to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')",
        )
    ).replace(tzinfo=dt.UTC)
    time.sleep(1.0)
    psql(bin_dir, port, "insert into ledger values (-1, 0, 0, 'after the restore point')")
    seg = psql(bin_dir, port, "select pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + 120
    while not (archive / seg).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"segment {seg} not archived in 120 s")
        time.sleep(0.2)
    return {
        "data": data,
        "archive": archive,
        "base": base,
        "port": port,
        "rows": n,
        "wal": wal,
        "target": target,
    }


def library(src: dict, target_dir: Path) -> tuple[float, int]:
    """The runbook's path: inputs, preflight, plan, and each change through its executor."""
    t0 = time.monotonic()
    req = pitr_restore.inputs(
        engine="postgres",
        restore_time=src["target"].isoformat(),
        pg_base_backup=str(src["base"]),
        pg_wal_archive=str(src["archive"]),
        pg_target_dir=str(target_dir),
        wait_timeout_minutes=15,
    )
    clients = pitr_restore.RestoreClients()  # no source conninfo: nothing to validate against
    pre = pitr_restore.preflight(req, clients=clients)
    execute = pitr_restore.executor(pre, clients=clients, progress=no_progress)
    for change in pitr_restore.plan(pre).changes:
        out = execute(change)
        if out.status is not ChangeStatus.APPLIED:
            raise SystemExit(f"{change.action} failed: {out.detail}")
    return time.monotonic() - t0, source_of(pre).spec.port


def raw(src: dict, target_dir: Path, bin_dir: str) -> tuple[float, int]:
    """The same recovery with the commands an operator would type."""
    t0 = time.monotonic()
    port = pitr.free_port()
    subprocess.run(["cp", "-a", "--", str(src["base"]), str(target_dir)], check=True)
    os.chmod(target_dir, 0o700)
    when = src["target"].strftime("%Y-%m-%d %H:%M:%S.%f+00")
    with open(target_dir / "postgresql.auto.conf", "a") as fh:
        fh.write(
            f"restore_command = 'cp {src['archive']}/%f %p'\nrecovery_target_time = '{when}'\n"
            "recovery_target_action = 'promote'\nrecovery_target_timeline = 'latest'\n"
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "archive_mode = off\n"
        )
    (target_dir / "recovery.signal").touch()
    if os.geteuid() == 0:
        for p in ("postgresql.auto.conf", "recovery.signal"):
            shutil.chown(target_dir / p, user())
    log = target_dir / "raw.log"
    log.touch()
    if os.geteuid() == 0:
        shutil.chown(log, user())
    as_user([f"{bin_dir}/pg_ctl", "-D", str(target_dir), "-l", str(log), "-W", "start"])
    deadline = time.monotonic() + 900
    while True:
        r = as_user(
            [
                f"{bin_dir}/psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "bench",
                "-d",
                "bench",
                "-Atqc",
                "select pg_is_in_recovery()",
            ],
            check=False,
        )
        if r.returncode == 0 and r.stdout.strip() == "f":
            break
        if time.monotonic() > deadline:
            raise SystemExit("raw recovery did not finish in 900 s")
        time.sleep(pitr.POLL_SECONDS)
    return time.monotonic() - t0, port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--wal-mb", type=int, default=256, help="WAL to replay since the base backup (MB)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="restores per method (alternating)")
    args = ap.parse_args()
    bin_dir = pitr.find_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="opslib-bench-pitr-", dir="/tmp"))
    os.chmod(root, 0o755)
    src: dict = {}
    try:
        t0 = time.monotonic()
        src = build_source(root, bin_dir, args.wal_mb)
        print(
            f"source: {src['rows']} rows, {src['wal'] / 2**20:.0f} MB of WAL since the base backup "
            f"(built in {time.monotonic() - t0:.0f} s); restore to {src['target'].isoformat()}"
        )
        times: dict[str, list[float]] = {"library": [], "raw": []}
        for i in range(args.rounds):
            for method in ("library", "raw") if i % 2 == 0 else ("raw", "library"):
                tdir = root / f"restore-{method}-{i}"
                secs, port = library(src, tdir) if method == "library" else raw(src, tdir, bin_dir)
                rows = int(psql(bin_dir, port, "select count(*) from ledger"))
                assert rows == src["rows"], (
                    f"{method}: {rows} rows at the restore point, expected {src['rows']}"
                )
                pitr.remove_target(str(tdir), bin_dir=bin_dir)
                times[method].append(secs)
                print(
                    f"  round {i + 1} {method:8s} {secs:7.2f} s ({rows} rows at the restore point)"
                )
        lib, base = statistics.median(times["library"]), statistics.median(times["raw"])
        ratio = lib / base
        print(
            f"library (runbook path): {lib:.2f} s median | raw commands: {base:.2f} s median | "
            f"ratio {ratio:.2f}x (floor <= {FLOOR}x)"
        )
        return 0 if ratio <= FLOOR else 1
    finally:
        for d in sorted(root.glob("restore-*")):
            pitr.remove_target(str(d), bin_dir=bin_dir)
        if (root / "data" / "postmaster.pid").exists():
            pitr.stop_server(str(root / "data"), bin_dir=bin_dir)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
