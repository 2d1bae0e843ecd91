"""The sandbox's PostgreSQL cluster: initdb + pg_ctl, as an unprivileged OS user.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to the
``postgres`` OS user (subprocess ``user=``). WAL archiving is on from the start so the PITR
runbook can show a base backup plus archived WAL; ``pg_stat_statements`` is preloaded when
the contrib module is installed so the latency runbook can rank statements.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from opslib.core.errors import SandboxError
from opslib.pg.binaries import find_bin_dir
from opslib.sandbox import procs

SUPERUSER = "opslib"
DATABASE = "opslib"
START_TIMEOUT = 30


def os_user() -> str:
    """The OS user the cluster runs as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise SandboxError(
            "Running as root, but there is no unprivileged 'postgres' OS user for the PostgreSQL "
            "server (it refuses to run as root). Create one: useradd --system postgres."
        ) from exc
    return "postgres"


def chown(path: Path | str, user: str) -> None:
    """Give ``path`` (recursively) to ``user``; a no-op unless we are root."""
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    os.lchown(path, pw.pw_uid, pw.pw_gid)
    for root, dirs, files in os.walk(path):
        for n in [
            root,
            *(os.path.join(root, d) for d in dirs),
            *(os.path.join(root, f) for f in files),
        ]:
            os.lchown(n, pw.pw_uid, pw.pw_gid)


def _run(argv: list[str], *, user: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    kw: dict = {}
    if os.geteuid() == 0 and user != "root":
        pw = pwd.getpwnam(user)
        kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kw
    )


class Cluster:
    """Paths and lifecycle of the sandbox cluster rooted at ``root`` (``<data_root>/pg``)."""

    def __init__(self, root: Path, *, bin_dir: Path | None = None, user: str | None = None) -> None:
        self.root = root
        self.bin_dir = bin_dir or find_bin_dir()
        self.user = user or os_user()
        self.data = root / "data"
        self.archive = root / "wal_archive"
        self.socket_dir = root / "run"
        self.log = root / "postgres.log"

    def bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    @property
    def has_pg_stat_statements(self) -> bool:
        return (self.bin_dir.parent / "lib" / "pg_stat_statements.so").exists()

    def init(self) -> None:
        """initdb (trust auth for the ``opslib`` superuser) and the sandbox settings, once."""
        if (self.data / "PG_VERSION").exists():
            return
        for d in (self.root, self.archive, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        chown(self.root, self.user)
        res = _run(
            [
                self.bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            user=self.user,
            cwd=self.root,
            timeout=120,
        )
        if res.returncode != 0:
            raise SandboxError(
                f"initdb failed in {self.data} (exit {res.returncode}):\n"
                f"{res.stderr.strip() or res.stdout.strip()}"
            )
        preload = "pg_stat_statements" if self.has_pg_stat_statements else ""
        archive_cmd = f"test ! -f {self.archive}/%f && cp %p {self.archive}/%f"
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.socket_dir),
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": archive_cmd,
            "archive_timeout": "60",
            "max_wal_senders": "5",
            "shared_preload_libraries": preload,
            "track_io_timing": "on",
            # a throwaway cluster: durability is not worth the fsync cost on a shared laptop/CI box
            "fsync": "off",
            "synchronous_commit": "off",
            "max_connections": "100",
            "log_line_prefix": "%m [%p] %u@%d ",
        }
        conf = "\n# opslib sandbox\n" + "".join(f"{k} = '{v}'\n" for k, v in settings.items())
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(conf)

    def postmaster_pid(self) -> int:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def running(self) -> bool:
        """A live postmaster for this data dir (its cwd is the data dir, so a recycled pid
        from a stale postmaster.pid does not count)."""
        pid = self.postmaster_pid()
        if not pid or not procs.start_time(pid):
            return False
        try:
            return os.path.realpath(f"/proc/{pid}/cwd") == os.path.realpath(self.data)
        except OSError:
            return False

    def start(self, port: int) -> dict:
        """pg_ctl start on ``port``, waiting (bounded) until it accepts connections."""
        self.log.touch()
        chown(self.log, self.user)
        res = _run(
            [
                self.bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                str(START_TIMEOUT),
                "-o",
                f"-p {port}",
                "start",
            ],
            user=self.user,
            cwd=self.root,
            timeout=START_TIMEOUT + 10,
        )
        if res.returncode != 0:
            raise SandboxError(
                f"PostgreSQL did not start within {START_TIMEOUT}s on 127.0.0.1:{port} "
                f"(pg_ctl exit {res.returncode}: {res.stderr.strip() or res.stdout.strip()}). "
                f"Log: {self.log}\n{procs.tail(self.log)}"
            )
        pid = self.postmaster_pid()
        return {"pid": pid, "start": procs.start_time(pid), "port": port, "log": str(self.log)}

    def adopt(self) -> dict:
        """The process record of an already running postmaster (port from postmaster.pid)."""
        lines = (self.data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        return {"pid": pid, "start": procs.start_time(pid), "port": port, "log": str(self.log)}

    def stop(self) -> bool:
        """pg_ctl stop -m fast; if that fails, SIGQUIT/SIGKILL the postmaster by its pid."""
        if not self.running():
            return False
        res = _run(
            [self.bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"],
            user=self.user,
            cwd=self.root,
            timeout=45,
        )
        if res.returncode != 0 and self.running():
            pid = self.postmaster_pid()
            procs.stop({"pid": pid, "start": procs.start_time(pid)}, grace=5)
        return True

    def bootstrap(self, port: int) -> None:
        """Create the ``opslib`` database (and pg_stat_statements in it) if missing."""
        import psycopg

        base = f"host=127.0.0.1 port={port} user={SUPERUSER} connect_timeout=5"
        with psycopg.connect(base + " dbname=postgres", autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'create database "{DATABASE}"')
        if self.has_pg_stat_statements:
            with psycopg.connect(base + f" dbname={DATABASE}", autocommit=True) as conn:
                conn.execute("create extension if not exists pg_stat_statements")


def clusters_under(root: Path) -> list[Path]:
    """Data dirs under ``root`` whose postmaster still runs (``postmaster.pid`` whose pid is
    alive with its cwd in that dir: a postmaster chdirs into its data dir, so a recycled
    pid cannot match)."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        if "PG_VERSION" in filenames:
            dirnames[
                :
            ] = []  # a data dir (or base backup): never descend into its thousands of files
        if "postmaster.pid" in filenames:
            data = Path(dirpath)
            try:
                pid = int((data / "postmaster.pid").read_text().splitlines()[0])
                if os.path.realpath(f"/proc/{pid}/cwd") == os.path.realpath(data):
                    found.append(data)
            except (OSError, ValueError, IndexError):
                continue  # stale or unreadable pid file: nothing runs there
    return found


def stop_cluster(data: Path, *, bin_dir: Path) -> None:
    """Stop the postmaster of ``data`` as the dir's owner (pg_ctl -m fast, then by pid)."""
    owner = pwd.getpwuid(data.stat().st_uid).pw_name
    cluster = Cluster(data.parent, bin_dir=bin_dir, user=owner)
    cluster.data = data
    cluster.stop()
