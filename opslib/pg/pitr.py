"""Self-hosted PostgreSQL point-in-time recovery: base backup + archived WAL -> a NEW data dir.

The restore never touches the source: it copies the base backup into a data directory that
must not exist yet, writes the recovery settings (``recovery.signal``, ``restore_command``
reading the WAL archive, ``recovery_target_time``, ``recovery_target_action = 'promote'``),
starts a server on its own port and waits, bounded, until recovery has ended and the server
is promoted. Archiving is switched OFF in the restored server, because the base backup
carries the source's ``archive_command`` and a promoted copy must never write into the
source's archive (it would mix a new timeline into the production WAL history).

PostgreSQL refuses to run as root; when opslib runs as root, the restored server runs as the
OS user that owns the base backup (that user can read it, and the copy is given to it).

Each step is a :class:`~opslib.core.plans.Change` so the gate shows, approves and records them
one by one; the module registers the handler of each step (and of the drill cleanup) in
:mod:`opslib.core.executors`, bound to a :class:`PgRestoreSpec` as ``pg_spec``. :func:`restore`
runs the same steps in one call (library path for scripts and tests).
"""

from __future__ import annotations

import datetime as _dt
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from opslib.core import executors
from opslib.core.errors import (
    BadInputError,
    NotFoundError,
    OpslibError,
    PitrRecoveryError,
    PreflightError,
)
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.progress import ProgressFactory, default_progress, no_progress
from opslib.core.waits import poll_until
from opslib.pg import basebackup, binaries

if TYPE_CHECKING:
    import psycopg

#: the settings file the restore writes; ALTER SYSTEM owns postgresql.auto.conf, so we append
#: to it rather than editing postgresql.conf (the last occurrence of a setting wins).
AUTO_CONF = "postgresql.auto.conf"
LOG_NAME = "opslib-restore.log"
POLL_SECONDS = 0.1

ACTION_COPY = "pg:copy-base-backup"
ACTION_CONFIGURE = "pg:write-recovery-settings"
ACTION_START = "pg:ctl-start"
ACTION_PROMOTE = "pg:wait-for-promotion"
ACTION_DELETE = "pg:stop-and-delete"

#: the actions of a restore and of its drill cleanup
RESTORE_ACTIONS = frozenset(
    {ACTION_COPY, ACTION_CONFIGURE, ACTION_START, ACTION_PROMOTE, ACTION_DELETE}
)
DEFAULT_TIMEOUT_SECONDS = 3600.0
#: validation counts every user table unless there are more than this (then validation_sql)
MAX_TABLES = 500

_WAL_SEGMENT = re.compile(r"^[0-9A-F]{24}$")


@dataclass(frozen=True)
class BaseBackupInfo:
    """What a base backup directory holds: who owns it, which version, when it was taken."""

    path: str
    owner: str
    pg_major: str
    start_time: _dt.datetime | None  # backup_label START TIME (UTC)
    stop_time: _dt.datetime | None  # the archive's .backup history file STOP TIME, when found
    start_wal: str
    size_bytes: int

    @property
    def consistent_from(self) -> _dt.datetime | None:
        """The earliest time a restore can target: the end of the backup (else its start)."""
        return self.stop_time or self.start_time


@dataclass(frozen=True)
class WalArchiveInfo:
    """The archived WAL segments a recovery can replay."""

    path: str
    segments: int
    total_bytes: int
    newest_segment: str
    newest_archived_at: _dt.datetime | None  # mtime of the newest segment (UTC)


@dataclass(frozen=True)
class PgRestoreSpec:
    """Everything a PostgreSQL PITR needs; built by :func:`spec` from the runbook parameters."""

    base_backup: str
    wal_archive: str
    target_dir: str
    port: int
    restore_time: _dt.datetime | None  # None: replay all archived WAL, then promote
    os_user: str
    bin_dir: str

    @property
    def log_path(self) -> str:
        return str(Path(self.target_dir) / LOG_NAME)


@dataclass(frozen=True)
class PgRestoreResult:
    """A promoted restored server: where it lives and how to reach it."""

    target_dir: str
    port: int
    pid: int
    os_user: str
    log_path: str
    promoted: bool
    seconds: float


def find_bin_dir() -> str:
    """PostgreSQL server binaries: ``pg_config --bindir``, else PATH, else /usr/lib/postgresql/*/bin."""
    return str(binaries.find_bin_dir())


def _utc(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC)


def _parse_label_time(value: str) -> _dt.datetime | None:
    # "2026-11-23 15:00:01 UTC" (PostgreSQL prints log_timezone; the sandbox and RDS use UTC)
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\s+(\S+))?", value.strip())
    if not m:
        return None
    t = _dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
    tz = (m.group(2) or "UTC").upper()
    if tz in ("UTC", "GMT", "Z", "+00", "+0000", "+00:00"):
        return t.replace(tzinfo=_dt.UTC)
    try:
        return t.replace(tzinfo=ZoneInfo(m.group(2))).astimezone(_dt.UTC)
    except Exception:  # noqa: BLE001 - an unknown zone name: say "unknown" rather than guess
        return None


def _label_fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip().upper()] = value.strip()
    return out


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue  # a file vanished while walking: the size is an estimate anyway
    return total


def inspect_base_backup(path: str, *, wal_archive: str = "") -> BaseBackupInfo:
    """Read a base backup directory (plain, or tar from the backup runbook) without changing it.

    Raises NotFoundError when the directory is missing or is not a base backup.
    """
    p = Path(path)
    if not p.is_dir():
        raise NotFoundError(
            f"Base backup directory {path!r} does not exist. Give pg_base_backup = the directory "
            "written by `pg_basebackup -D DIR -Fp -X stream`."
        )
    label = p / "backup_label"
    version = p / "PG_VERSION"
    if basebackup.is_tar_backup(p):  # made by the backup runbook: pg_basebackup -Ft -X stream
        label_text, pg_major = basebackup.read_label(str(p))
    elif not version.exists() or not label.exists():
        raise NotFoundError(
            f"{path!r} is not a plain-format base backup (no PG_VERSION/backup_label) nor a tar one "
            "(no base.tar). Take one with the backup runbook or `pg_basebackup -D DIR -Fp -X stream`."
        )
    else:
        label_text, pg_major = label.read_text(errors="replace"), version.read_text().strip()
    fields = _label_fields(label_text)
    start_wal = fields.get("START WAL LOCATION", "")
    start_time = _parse_label_time(fields.get("START TIME", ""))
    stop_time = None
    if wal_archive and start_wal:
        # "0/2000028 (file 000000010000000000000002)" -> 000000010000000000000002.00000028.backup
        m = re.match(r"([0-9A-F]+)/([0-9A-F]+)\s+\(file\s+([0-9A-F]{24})\)", start_wal)
        if m:
            offset = int(m.group(2), 16) % (16 * 1024 * 1024)
            hist = Path(wal_archive) / f"{m.group(3)}.{offset:08X}.backup"
            if hist.exists():
                stop_time = _parse_label_time(
                    _label_fields(hist.read_text(errors="replace")).get("STOP TIME", "")
                )
    st = p.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    return BaseBackupInfo(
        path=str(p),
        owner=owner,
        pg_major=pg_major,
        start_time=start_time,
        stop_time=stop_time,
        start_wal=start_wal,
        size_bytes=_dir_size(p),
    )


def inspect_wal_archive(path: str) -> WalArchiveInfo:
    """Count the archived WAL segments and when the newest one arrived (the window's end)."""
    p = Path(path)
    if not p.is_dir():
        raise NotFoundError(
            f"WAL archive directory {path!r} does not exist. Give pg_wal_archive = the directory "
            "the source's archive_command copies WAL segments into."
        )
    segs = []
    total = 0
    for entry in os.scandir(p):
        if _WAL_SEGMENT.match(entry.name):
            st = entry.stat()
            segs.append((entry.name, st.st_mtime))
            total += st.st_size
    segs.sort()
    newest = max(segs, key=lambda s: s[1]) if segs else None
    return WalArchiveInfo(
        path=str(p),
        segments=len(segs),
        total_bytes=total,
        newest_segment=segs[-1][0] if segs else "",
        newest_archived_at=_utc(newest[1]) if newest else None,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_as_user(backup_owner: str) -> str:
    """The OS user the restored server runs as: ourselves, or the backup's owner when we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    if backup_owner in ("root", "0"):
        raise PreflightError(
            "The base backup is owned by root, and PostgreSQL refuses to run as root. chown it to "
            "the database OS user (e.g. `chown -R postgres: BACKUP_DIR`) and run again."
        )
    return backup_owner


def _traversable_by(path: Path, user: str) -> bool:
    return binaries.traversable_by(path, user)


def check_target(target_dir: str, os_user: str) -> None:
    """Refuse (PreflightError) a target dir that exists or that the server's OS user cannot reach."""
    t = Path(target_dir)
    if not t.is_absolute():
        raise PreflightError(f"pg_target_dir {target_dir!r} must be an absolute path.")
    if t.exists() or t.is_symlink():
        raise PreflightError(
            f"pg_target_dir {target_dir!r} already exists. A restore never overwrites: choose a new "
            "directory (it is created by the restore)."
        )
    parent = t.parent
    if not parent.is_dir():
        raise PreflightError(
            f"The parent of pg_target_dir ({parent}) does not exist; create it first."
        )
    if os.geteuid() == 0 and not _traversable_by(parent, os_user):
        raise PreflightError(
            f"OS user {os_user!r} (who will run the restored server) cannot reach {parent}; choose a "
            "pg_target_dir under a directory it can traverse (e.g. under /var/tmp or the sandbox dir)."
        )


def spec(
    *,
    base_backup: str,
    wal_archive: str,
    target_dir: str,
    port: int = 0,
    restore_time: _dt.datetime | None = None,
    bin_dir: str = "",
) -> PgRestoreSpec:
    """Validate the inputs (read only) and fix the port and OS user; refuses before anything exists."""
    info = inspect_base_backup(base_backup, wal_archive=wal_archive)
    inspect_wal_archive(wal_archive)
    user = run_as_user(info.owner)
    check_target(target_dir, user)
    if port and port_in_use(port):
        raise PreflightError(
            f"pg_target_port {port} is in use on 127.0.0.1; choose another or 0 for a free one."
        )
    return PgRestoreSpec(
        base_backup=str(Path(base_backup).resolve()),
        wal_archive=str(Path(wal_archive).resolve()),
        target_dir=str(Path(target_dir)),
        port=port or free_port(),
        restore_time=restore_time,
        os_user=user,
        bin_dir=bin_dir or find_bin_dir(),
    )


def _target_literal(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def recovery_settings(s: PgRestoreSpec) -> dict[str, str]:
    """The settings appended to the restored data dir's postgresql.auto.conf."""
    settings = {
        "restore_command": f"cp '{s.wal_archive}/%f' '%p'",
        "recovery_target_timeline": "latest",
        "recovery_target_action": "promote",
        "port": str(s.port),
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": "",  # TCP only: no clash with the source's socket dir
        # never archive into the source's archive: the base backup carries its archive_command
        "archive_mode": "off",
        "archive_command": "",
        "logging_collector": "off",
        "cluster_name": "opslib-pitr-restore",
    }
    if s.restore_time is not None:
        settings["recovery_target_time"] = _target_literal(s.restore_time)
    return settings


def plan_restore(s: PgRestoreSpec) -> Plan:
    """The four steps of a PostgreSQL PITR as changes (read only: nothing is created here)."""
    when = _target_literal(s.restore_time) if s.restore_time else "the end of the archived WAL"
    changes = (
        Change(
            ACTION_COPY,
            s.target_dir,
            f"copy the base backup {s.base_backup} into the new data dir (owner {s.os_user})",
            {"base_backup": s.base_backup, "target_dir": s.target_dir, "os_user": s.os_user},
        ),
        Change(
            ACTION_CONFIGURE,
            s.target_dir,
            f"recovery.signal + restore_command from {s.wal_archive}, recovery_target_time "
            f"{when}, promote; archiving off",
            recovery_settings(s),
        ),
        Change(
            ACTION_START,
            f"127.0.0.1:{s.port}",
            f"start the restored server as {s.os_user} on port {s.port} (log {s.log_path})",
            {"target_dir": s.target_dir, "port": s.port, "bin_dir": s.bin_dir},
        ),
        Change(
            ACTION_PROMOTE,
            f"127.0.0.1:{s.port}",
            f"replay WAL until {when}, then promote (bounded wait)",
            {"target_dir": s.target_dir},
        ),
    )
    return Plan(
        title=f"PostgreSQL PITR into {s.target_dir}",
        changes=changes,
        warnings=(
            "The source is not touched: validation connects to it read-only.",
            f"The restored server keeps running on port {s.port} until you stop it "
            f"(pg_ctl -D {s.target_dir} stop -m fast).",
        ),
    )


def _user_kw(user: str) -> dict:
    if os.geteuid() != 0 or user == "root":
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": os.getgrouplist(user, pw.pw_gid)}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _run(
    argv: list[str], *, user: str, timeout: float, cwd: str = "/"
) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, **_user_kw(user)
    )


def copy_base_backup(s: PgRestoreSpec) -> None:
    """cp -a the backup (ownership and modes kept), then give it to the server's OS user, mode 0700."""
    if Path(s.target_dir).exists():
        raise PreflightError(
            f"pg_target_dir {s.target_dir!r} appeared after the preflight; not overwriting it."
        )
    if basebackup.is_tar_backup(s.base_backup):
        basebackup.extract(s.base_backup, s.target_dir)
    else:
        res = subprocess.run(
            ["cp", "-a", "--", s.base_backup, s.target_dir],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if res.returncode != 0:
            raise OpslibError(f"Copying the base backup failed: {res.stderr.strip()}")
    if os.geteuid() == 0:
        pw = pwd.getpwnam(s.os_user)
        if os.stat(s.target_dir).st_uid != pw.pw_uid:
            subprocess.run(
                ["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", s.target_dir], check=True, timeout=600
            )
    os.chmod(s.target_dir, 0o700)
    # files a running source leaves that must not be in a new cluster
    for stale in ("postmaster.pid", "postmaster.opts", "standby.signal"):
        try:
            os.unlink(Path(s.target_dir) / stale)
        except FileNotFoundError:
            continue


def _quote(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def write_recovery_settings(s: PgRestoreSpec) -> None:
    """Append the recovery settings and create recovery.signal (as the server's OS user)."""
    t = Path(s.target_dir)
    lines = "\n# opslib pitr-restore\n" + "".join(
        f"{k} = {_quote(v)}\n" for k, v in recovery_settings(s).items()
    )
    with open(t / AUTO_CONF, "a") as fh:
        fh.write(lines)
    (t / "recovery.signal").touch()
    (t / LOG_NAME).touch()
    if os.geteuid() == 0:
        pw = pwd.getpwnam(s.os_user)
        for name in (AUTO_CONF, "recovery.signal", LOG_NAME):
            os.chown(t / name, pw.pw_uid, pw.pw_gid)


def start_server(s: PgRestoreSpec) -> int:
    """pg_ctl start without waiting (recovery can take long; :func:`wait_for_promotion` bounds it)."""
    res = _run(
        [str(Path(s.bin_dir) / "pg_ctl"), "-D", s.target_dir, "-l", s.log_path, "-W", "start"],
        user=s.os_user,
        timeout=60,
    )
    if res.returncode != 0:
        raise PitrRecoveryError(
            f"pg_ctl start failed (exit {res.returncode}): {res.stderr.strip()}\n{log_tail(s.log_path)}"
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid = postmaster_pid(s.target_dir)
        if pid:
            return pid
        if _server_gave_up(s.log_path):  # it exited before we saw its pid (e.g. WAL missing)
            raise _stopped_error(s)
        time.sleep(POLL_SECONDS)
    raise PitrRecoveryError(
        f"The restored server did not write postmaster.pid within 30 s.\n{log_tail(s.log_path)}"
    )


def _server_gave_up(log_path: str) -> bool:
    tail = log_tail(log_path, 5)
    return "database system is shut down" in tail or "PANIC:" in tail


def _stopped_error(s: PgRestoreSpec) -> PitrRecoveryError:
    time.sleep(0.3)  # let the server finish writing its last log lines
    return PitrRecoveryError(
        f"The restored server in {s.target_dir} stopped during recovery (state: "
        f"{cluster_state(s)}). Its log ({s.log_path}) ends with:\n{log_tail(s.log_path)}\n"
        "Nothing else was changed; delete the target dir and retry after fixing the cause "
        "(e.g. a missing WAL segment, or a restore_time after the end of the archive)."
    )


def postmaster_pid(target_dir: str) -> int:
    try:
        return int((Path(target_dir) / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _alive(pid: int) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def log_tail(path: str, lines: int = 20) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def cluster_state(s: PgRestoreSpec) -> str:
    """'in production', 'in archive recovery', ... from pg_controldata (needs no login)."""
    res = _run(
        [str(Path(s.bin_dir) / "pg_controldata"), "-D", s.target_dir], user=s.os_user, timeout=30
    )
    for line in res.stdout.splitlines():
        if line.startswith("Database cluster state:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def postmaster_status(target_dir: str) -> str:
    """Line 8 of postmaster.pid: 'starting', 'standby' (hot standby, read-only), 'ready', 'stopping'."""
    try:
        lines = (Path(target_dir) / "postmaster.pid").read_text().splitlines()
    except OSError:
        return ""
    return lines[7].strip() if len(lines) > 7 else ""


def promoted(s: PgRestoreSpec) -> bool:
    """Recovery ended: the server is promoted and read-write.

    PostgreSQL removes recovery.signal near the end of archive recovery, and sets the control
    file to 'in production' together with leaving recovery (after the end-of-recovery
    checkpoint). pg_controldata alone cannot tell (a copied base backup already says 'in
    production' before startup rewrites it), so both must hold; the postmaster must say 'ready'.
    """
    if (Path(s.target_dir) / "recovery.signal").exists():
        return False
    return postmaster_status(s.target_dir) == "ready" and cluster_state(s) == "in production"


def wait_for_promotion(
    s: PgRestoreSpec, *, timeout_s: float, progress: ProgressFactory = default_progress
) -> float:
    """Wait until recovery has ended and the server accepts connections; returns seconds waited.

    Bounded by ``timeout_s``: on timeout, RunbookTimeoutError says what exists and how to resume;
    if the server exits (e.g. the archive lacks a segment), PitrRecoveryError carries its log.
    """

    def check() -> tuple[bool, int, str]:
        pid = postmaster_pid(s.target_dir)
        if not _alive(pid):
            raise _stopped_error(s)
        if promoted(s):
            return True, pid, "promoted"
        return False, pid, "recovering"

    def timeout_message(pid: int, _shown: str) -> str:
        state = cluster_state(s)
        return (
            f"Recovery did not finish within {timeout_s:.0f} s. What exists now: the data dir "
            f"{s.target_dir} and a server (pid {pid}, port {s.port}, state '{state}') still "
            f"replaying WAL as {s.os_user}; log {s.log_path}. To resume: watch the log until "
            "'archive recovery complete', then connect to port "
            f"{s.port}; or stop it (pg_ctl -D {s.target_dir} stop -m fast), delete the dir "
            "and run again with a larger wait_timeout_minutes."
        )

    t0 = time.monotonic()
    poll_until(
        check,
        timeout_s=timeout_s,
        poll_s=POLL_SECONDS,
        desc="recovery (s)",
        on_timeout=timeout_message,
        progress=progress,
    )
    return time.monotonic() - t0


# --- the handlers of the planned steps (opslib.core.executors) --------------------------------


def _applied(change: Change, t0: float, detail: str) -> ChangeOutcome:
    secs = round(time.monotonic() - t0, 3)
    return ChangeOutcome(
        change.action, change.target, ChangeStatus.APPLIED, detail, {"seconds": secs}
    )


@executors.register(ACTION_COPY)
def copy_step(change: Change, *, pg_spec: PgRestoreSpec) -> ChangeOutcome:
    """Copy the base backup into the new data dir."""
    t0 = time.monotonic()
    copy_base_backup(pg_spec)
    return _applied(change, t0, f"copied {pg_spec.base_backup} -> {pg_spec.target_dir}")


@executors.register(ACTION_CONFIGURE)
def configure_step(change: Change, *, pg_spec: PgRestoreSpec) -> ChangeOutcome:
    """Write recovery.signal and the recovery settings."""
    t0 = time.monotonic()
    write_recovery_settings(pg_spec)
    return _applied(change, t0, "recovery.signal and recovery settings written")


@executors.register(ACTION_START)
def start_step(change: Change, *, pg_spec: PgRestoreSpec) -> ChangeOutcome:
    """Start the restored server (it begins replaying WAL)."""
    t0 = time.monotonic()
    pid = start_server(pg_spec)
    return _applied(change, t0, f"server started, pid {pid}, port {pg_spec.port}")


@executors.register(ACTION_PROMOTE)
def promote_step(
    change: Change,
    *,
    pg_spec: PgRestoreSpec,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    progress: ProgressFactory = default_progress,
) -> ChangeOutcome:
    """Wait (bounded, with progress) until recovery has ended and the server is promoted."""
    t0 = time.monotonic()
    waited = wait_for_promotion(pg_spec, timeout_s=timeout_s, progress=progress)
    return _applied(change, t0, f"promoted after {waited:.1f} s of recovery")


@executors.register(ACTION_DELETE)
def delete_step(change: Change, *, pg_spec: PgRestoreSpec) -> ChangeOutcome:
    """Drill cleanup: stop the restored server and delete its data dir."""
    t0 = time.monotonic()
    remove_target(change.params["target_dir"], bin_dir=pg_spec.bin_dir)
    return _applied(change, t0, "server stopped, data dir deleted")


def plan_delete(target_dir: str) -> Plan:
    """Drill cleanup: stop the restored server and delete its data dir (never the source)."""
    return Plan(
        title=f"Drill cleanup: stop and delete {target_dir}",
        changes=(
            Change(
                ACTION_DELETE,
                target_dir,
                f"pg_ctl stop -m fast, then delete {target_dir}",
                {"target_dir": target_dir},
            ),
        ),
    )


def restore(
    s: PgRestoreSpec, *, timeout_s: float, progress: ProgressFactory = no_progress
) -> PgRestoreResult:
    """All steps in one call (library path without the gate, e.g. for benchmarks and scripts)."""
    t0 = time.monotonic()
    copy_base_backup(s)
    write_recovery_settings(s)
    pid = start_server(s)
    wait_for_promotion(s, timeout_s=timeout_s, progress=progress)
    return PgRestoreResult(
        target_dir=s.target_dir,
        port=s.port,
        pid=pid,
        os_user=s.os_user,
        log_path=s.log_path,
        promoted=True,
        seconds=time.monotonic() - t0,
    )


def stop_server(target_dir: str, *, bin_dir: str = "", timeout_s: float = 30) -> bool:
    """Stop a restored server (pg_ctl stop -m fast as its owner; SIGQUIT by pid as a last resort)."""
    pid = postmaster_pid(target_dir)
    if not _alive(pid):
        return False
    owner = pwd.getpwuid(os.stat(target_dir).st_uid).pw_name
    bin_dir = bin_dir or find_bin_dir()
    res = _run(
        [
            str(Path(bin_dir) / "pg_ctl"),
            "-D",
            target_dir,
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(timeout_s)),
            "stop",
        ],
        user=owner,
        timeout=timeout_s + 15,
    )
    if res.returncode != 0 and _alive(pid):
        os.kill(pid, signal.SIGQUIT)
    return True


def remove_target(target_dir: str, *, bin_dir: str = "") -> None:
    """Stop the restored server if it runs, then delete its data dir (drill cleanup, tests)."""
    if Path(target_dir).exists():
        stop_server(target_dir, bin_dir=bin_dir)
        shutil.rmtree(target_dir)


# --- validation reads (read-only transactions) ------------------------------------------------

USER_TABLES_SQL = """
select n.nspname, c.relname
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%%'
order by 1, 2
"""


def row_counts(conn: psycopg.Connection, *, max_tables: int = MAX_TABLES) -> dict[str, int]:
    """Exact ``count(*)`` of every user table (schema.table -> rows), in a read-only transaction."""
    out: dict[str, int] = {}
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        tables = conn.execute(USER_TABLES_SQL).fetchall()
        if len(tables) > max_tables:
            raise BadInputError(
                f"{len(tables)} user tables exceed max_tables={max_tables}; give validation_sql instead."
            )
        for schema, name in tables:
            q = sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
            out[f"{schema}.{name}"] = int(conn.execute(q).fetchone()[0])
    return out


def run_query(conn: psycopg.Connection, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The validation query in a read-only transaction: (columns, rows), capped at 1000 rows."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        cur = conn.execute(query)
        cols = [d.name for d in cur.description or []]
        rows = cur.fetchmany(1000)
    return cols, rows


def restored_conninfo(source_conninfo: str, port: int) -> str:
    """The restored server's conninfo: the source's, with host 127.0.0.1 and the target's port."""
    d = conninfo_to_dict(source_conninfo) if source_conninfo else {}
    d.update(host="127.0.0.1", port=str(port))
    d.pop("hostaddr", None)
    return make_conninfo(**{k: str(v) for k, v in d.items()})
