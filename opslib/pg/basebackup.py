"""Self-hosted PostgreSQL base backups: ``pg_basebackup -Ft -X stream`` checked by ``pg_verifybackup``.

Why tar format with streamed WAL: the backup is then two files (``base.tar``, ``pg_wal.tar``)
plus the server's ``backup_manifest``, self-contained (the WAL needed to make it consistent is
inside), easy to ship off the host, and the manifest's checksums let ``pg_verifybackup`` prove
every byte before anyone relies on it. PostgreSQL before 18 verifies only plain-format
directories, so a tar backup is unpacked into a scratch directory beside it and verified
there (the documented way); PostgreSQL 18+ verifies the tar files directly.

:func:`extract` is what a restore uses: ``base.tar`` into the new data directory and
``pg_wal.tar`` into its ``pg_wal``. The backup is one :class:`~opslib.core.plans.Change`
(:data:`ACTION_BASEBACKUP`) whose handler is registered here; it refuses a backup directory
that is not empty (a backup never lands on top of another one).
"""

from __future__ import annotations

import datetime as _dt
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError, OpslibError, PreflightError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus
from opslib.pg import binaries

if TYPE_CHECKING:
    import psycopg

ACTION_BASEBACKUP = "pg:basebackup"
BASE_TAR = "base.tar"
WAL_TAR = "pg_wal.tar"
MANIFEST = "backup_manifest"
DEFAULT_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class BaseBackup:
    """A finished base backup: where, how big, when, and the WAL it starts at."""

    path: str
    size_bytes: int
    start_time: _dt.datetime | None
    start_wal: str
    seconds: float
    files: tuple[str, ...]


@dataclass(frozen=True)
class Verification:
    """What ``pg_verifybackup`` said about a backup."""

    path: str
    ok: bool
    output: str
    seconds: float
    method: str  # "direct" or "unpacked into a scratch dir"


@dataclass(frozen=True)
class ArchiverStatus:
    """WAL archiving of a running server (the PITR half of a self-hosted backup)."""

    archive_mode: str
    last_archived_time: _dt.datetime | None
    last_failed_time: _dt.datetime | None
    failed_count: int
    archived_count: int
    archive_timeout_s: int = 0

    @property
    def archiving(self) -> bool:
        """Archiving is on and its last attempt did not fail."""
        if self.archive_mode not in ("on", "always"):
            return False
        if self.last_failed_time and (
            not self.last_archived_time or self.last_failed_time > self.last_archived_time
        ):
            return False
        return True


def bin_path(name: str) -> str:
    """A client binary of the same PostgreSQL installation as the server binaries."""
    path = binaries.find_bin_dir() / name
    if not path.exists():
        raise OpslibError(
            f"{name} not found in {path.parent}. Install the PostgreSQL client tools."
        )
    return str(path)


def is_tar_backup(path: str | Path) -> bool:
    """The directory holds a tar-format base backup (``base.tar``)."""
    return (Path(path) / BASE_TAR).is_file()


def check_backup_dir(path: str) -> Path:
    """Refuse (PreflightError) a backup directory that exists and is not empty; never overwrite."""
    p = Path(path)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise PreflightError(
            f"pg_backup_dir {path!r} exists and is not empty: a base backup never lands on top of "
            "another. Give a new (or empty) directory, e.g. /backups/<cluster>-<label>-<YYYYmmddHHMM>."
        )
    if not p.parent.is_dir():
        raise BadInputError(
            f"The parent of pg_backup_dir {path!r} does not exist; create it first."
        )
    return p


def run_as(path: Path) -> str:
    """The OS user that writes the backup: ourselves, or (as root) the owner of the directory or
    its parent, so the PostgreSQL OS user can restore from it later (it refuses root-owned data)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    probe = path if path.exists() else path.parent
    return pwd.getpwuid(probe.stat().st_uid).pw_name


def _user_kw(user: str) -> dict[str, Any]:
    if os.geteuid() != 0 or user == "root":
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": os.getgrouplist(user, pw.pw_gid)}


def plan_base_backup(dsn: str, backup_dir: str, *, label: str, resource: str = "") -> Change:
    """The base backup as one planned change (read only: checks the directory, creates nothing)."""
    check_backup_dir(backup_dir)
    return Change(
        ACTION_BASEBACKUP,
        backup_dir,
        f"pg_basebackup of {resource or 'the server'} -Ft -X stream -c fast (tar + WAL + "
        "manifest) into this directory, then pg_verifybackup",
        {"dsn": dsn, "backup_dir": backup_dir, "label": label, "resource": resource},
    )


def take(
    dsn: str, backup_dir: str, *, label: str = "opslib", timeout_s: float = DEFAULT_TIMEOUT_SECONDS
) -> BaseBackup:
    """Run pg_basebackup in tar format with streamed WAL into a new or empty ``backup_dir``."""
    p = check_backup_dir(backup_dir)
    user = run_as(p)
    if not p.exists():
        p.mkdir(mode=0o700)
        if os.geteuid() == 0 and user != "root":
            pw = pwd.getpwnam(user)
            os.chown(p, pw.pw_uid, pw.pw_gid)
    argv = [
        bin_path("pg_basebackup"), "-d", dsn, "-D", str(p), "-Ft", "-X", "stream", "-c", "fast",
        "-l", label[:60] or "opslib",
    ]  # fmt: skip
    t0 = time.monotonic()
    try:
        res = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, cwd="/", **_user_kw(user)
        )
    except subprocess.TimeoutExpired as exc:
        raise OpslibError(
            f"pg_basebackup did not finish within {timeout_s:.0f} s; {backup_dir} holds a partial "
            "backup: delete it and run again with a larger wait_timeout_minutes."
        ) from exc
    if res.returncode != 0:
        raise OpslibError(
            f"pg_basebackup failed (exit {res.returncode}): {res.stderr.strip()[-800:]}. "
            f"{backup_dir} may hold a partial backup: delete it before retrying."
        )
    label_text, _ = read_label(str(p))
    fields = _fields(label_text)
    files = tuple(sorted(f.name for f in p.iterdir()))
    return BaseBackup(
        path=str(p),
        size_bytes=sum((p / f).stat().st_size for f in files),
        start_time=_label_time(fields.get("START TIME", "")),
        start_wal=fields.get("START WAL LOCATION", ""),
        seconds=round(time.monotonic() - t0, 3),
        files=files,
    )


def _fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip().upper()] = v.strip()
    return out


def _label_time(value: str) -> _dt.datetime | None:
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s*(\S*)", value.strip())
    if not m:
        return None
    t = _dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
    return t.replace(tzinfo=_dt.UTC) if m.group(2).upper() in ("", "UTC", "GMT") else None


def read_label(path: str) -> tuple[str, str]:
    """(backup_label, PG_VERSION) of a tar-format backup, read without unpacking it."""
    base = Path(path) / BASE_TAR
    if not base.is_file():
        raise NotFoundError(f"{path!r} holds no {BASE_TAR}: not a tar-format base backup.")
    found: dict[str, str] = {}
    try:
        with tarfile.open(base, "r:") as tar:
            for m in tar:
                if m.name in ("backup_label", "PG_VERSION", "./backup_label", "./PG_VERSION"):
                    fh = tar.extractfile(m)
                    found[m.name.removeprefix("./")] = (
                        fh.read().decode(errors="replace") if fh else ""
                    )
                    if len(found) == 2:
                        break
    except (tarfile.TarError, OSError) as exc:
        raise PreflightError(
            f"{base} is not a readable tar file ({exc}): the backup is damaged."
        ) from exc
    if "backup_label" not in found:
        raise PreflightError(f"{base} holds no backup_label: not a base backup, or a damaged one.")
    return found["backup_label"], found.get("PG_VERSION", "").strip()


def extract(
    backup_dir: str, target_dir: str, *, timeout_s: float = DEFAULT_TIMEOUT_SECONDS
) -> None:
    """Unpack a tar-format backup into ``target_dir`` (which must not exist): base.tar, then
    pg_wal.tar into its pg_wal. Tablespace tars (``<oid>.tar``) are refused: they need a
    tablespace map the operator chooses."""
    src, tgt = Path(backup_dir), Path(target_dir)
    extra = sorted(f.name for f in src.glob("*.tar") if f.name not in (BASE_TAR, WAL_TAR))
    if extra:
        raise PreflightError(
            f"{backup_dir} holds tablespace archives {extra}: unpack them by hand with a tablespace "
            "map (pg_basebackup --tablespace-mapping) and restore from the plain directory."
        )
    if tgt.exists():
        raise PreflightError(f"{target_dir!r} exists; a restore never unpacks over a directory.")
    tgt.mkdir(mode=0o700)
    _untar(src / BASE_TAR, tgt, timeout_s)
    if (src / WAL_TAR).is_file():
        (tgt / "pg_wal").mkdir(mode=0o700, exist_ok=True)
        _untar(src / WAL_TAR, tgt / "pg_wal", timeout_s)


def _untar(archive: Path, into: Path, timeout_s: float) -> None:
    # GNU tar: fast, keeps modes; as root it keeps the archive's owners (the restore re-owns)
    res = subprocess.run(
        ["tar", "-xf", str(archive), "-C", str(into)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if res.returncode != 0:
        raise PreflightError(
            f"Unpacking {archive} failed: {res.stderr.strip()[-500:]}: the backup is damaged."
        )


def _major(bin_name: str) -> int:
    out = subprocess.run([bin_name, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"(\d+)", out)
    return int(m.group(1)) if m else 0


def verify(path: str, *, timeout_s: float = DEFAULT_TIMEOUT_SECONDS) -> Verification:
    """``pg_verifybackup`` over the backup: every file against the manifest's checksums, and the
    WAL it needs. A tar backup is unpacked into a scratch dir beside it first (PostgreSQL < 18)."""
    tool = bin_path("pg_verifybackup")
    p = Path(path)
    if not (p / MANIFEST).is_file():
        return Verification(path, False, f"no {MANIFEST} in {path}: cannot verify", 0.0, "none")
    t0 = time.monotonic()
    scratch = ""
    method = "direct"
    try:
        if is_tar_backup(p) and _major(tool) < 18:
            method = "unpacked into a scratch dir"
            scratch = tempfile.mkdtemp(prefix=".verify-", dir=str(p.parent))
            os.rmdir(scratch)  # extract() creates it
            extract(str(p), scratch, timeout_s=timeout_s)
            argv = [tool, "-m", str(p / MANIFEST), scratch]
        else:
            argv = [tool, str(p)]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, cwd="/")
        ok, out = res.returncode == 0, (res.stdout + res.stderr).strip()
    except PreflightError as exc:  # the tar itself is damaged: that is a failed verification
        ok, out = False, str(exc)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return Verification(path, ok, out[-2000:], round(time.monotonic() - t0, 3), method)


def archiver_status(conn: psycopg.Connection) -> ArchiverStatus:
    """archive_mode and pg_stat_archiver of the connected server (read only)."""
    mode, timeout = conn.execute(
        "select current_setting('archive_mode'), "
        "extract(epoch from current_setting('archive_timeout')::interval)::int"
    ).fetchone()
    row = conn.execute(
        "select last_archived_time, last_failed_time, failed_count, archived_count from pg_stat_archiver"
    ).fetchone()
    return ArchiverStatus(
        str(mode), row[0], row[1], int(row[2] or 0), int(row[3] or 0), int(timeout or 0)
    )


def newest_backup_time(path: str) -> _dt.datetime | None:
    """When the base backup in ``path`` finished (its manifest's mtime), None without one."""
    m = Path(path) / MANIFEST
    return _dt.datetime.fromtimestamp(m.stat().st_mtime, _dt.UTC) if m.is_file() else None


@executors.register(ACTION_BASEBACKUP)
def base_backup_step(
    change: Change, *, timeout_s: float = DEFAULT_TIMEOUT_SECONDS
) -> ChangeOutcome:
    """Take the base backup, then verify it; a backup that fails verification fails the change."""
    p = change.params
    b = take(p["dsn"], p["backup_dir"], label=p.get("label", "opslib"), timeout_s=timeout_s)
    v = verify(b.path, timeout_s=timeout_s)
    data = {
        "resource": p.get("resource") or change.target,
        "kind": "postgres",
        "snapshot_id": b.path,
        "arn": "",
        "status": "verified" if v.ok else "verification failed",
        "size_bytes": b.size_bytes,
        "created_at": b.start_time.isoformat().replace("+00:00", "Z") if b.start_time else "",
        "start_wal": b.start_wal,
        "files": list(b.files),
        "backup_seconds": b.seconds,
        "verify_seconds": v.seconds,
        "seconds": round(b.seconds + v.seconds, 3),
    }
    if not v.ok:
        raise OpslibError(f"pg_verifybackup failed on {b.path}: {v.output[-500:]}")
    detail = (
        f"{b.size_bytes / 1e6:.0f} MB in {b.seconds:.1f} s; pg_verifybackup ok ({v.seconds:.1f} s)"
    )
    return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, detail, data)
