"""Real PostgreSQL: a tar base backup with WAL, pg_verifybackup, and a PITR from it.

The backup is taken from the sandbox cluster (WAL archiving on); the restore goes through the
pitr-restore flow into a new data directory and a new server, which is stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from opslib.core.errors import PreflightError
from opslib.pg import basebackup, pitr
from opslib.runbooks import pitr_restore
from opslib.runbooks.pitr_restore import RestoreStatus
from opslib.safety import gate

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def work(sandbox):
    """A database with a table, and a fresh directory the PostgreSQL OS user owns."""
    from opslib.sandbox.context import ScenarioContext

    ctx = ScenarioContext(sandbox)
    uid = uuid.uuid4().hex[:6]
    root = ctx.scenario_dir("backup") / f"unit-{uid}"
    root.mkdir(mode=0o755)
    ctx.chown_to_pg(root)
    db = f"bb_{uid}"
    with ctx.pg_connect() as conn:
        conn.execute(f"create database {db}")
    with ctx.pg_connect(db) as conn:
        conn.execute("create table t (id int primary key, note text not null)")
        conn.execute("insert into t select g, 'before the backup' from generate_series(1, 3) g")
    yield ctx, root, db
    for d in root.glob("restored*"):
        pitr.remove_target(str(d))
    shutil.rmtree(root, ignore_errors=True)
    with ctx.pg_connect() as conn:
        conn.execute(f"drop database if exists {db} with (force)")


def archive_now(ctx, db: str) -> None:
    """Switch WAL and wait (bounded) until the segment is in the archive."""
    with ctx.pg_connect(db) as conn:
        seg = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()[0]
    deadline = time.monotonic() + 30
    while not (Path(ctx.info.pg_wal_archive) / seg).exists():
        assert time.monotonic() < deadline, f"{seg} not archived within 30 s"
        time.sleep(0.2)


def test_tar_backup_is_verified_and_restores_to_a_time_between_two_inserts(work):
    ctx, root, db = work
    b = basebackup.take(ctx.pg_conninfo(db), str(root / "base"), label="unit")
    assert set(b.files) == {"backup_manifest", "base.tar", "pg_wal.tar"}
    assert b.size_bytes > 1_000_000 and b.start_time is not None
    if os.geteuid() == 0:  # written as the PostgreSQL OS user, so that user can restore it
        assert Path(b.path, "base.tar").owner() == ctx.pg_os_user
    v = basebackup.verify(b.path)
    assert v.ok, v.output
    assert "successfully verified" in v.output
    with ctx.pg_connect(db) as conn:
        conn.execute("insert into t values (4, 'first insert')")
        time.sleep(1.0)
        between = conn.execute("select now()").fetchone()[0]
        time.sleep(1.0)
        conn.execute("insert into t values (5, 'second insert')")
    archive_now(ctx, db)

    req = pitr_restore.inputs(
        engine="postgres",
        source=ctx.pg_conninfo(db),
        restore_time=between.isoformat(),
        pg_base_backup=b.path,
        pg_wal_archive=ctx.info.pg_wal_archive,
        pg_target_dir=str(root / "restored"),
    )
    cl = pitr_restore.connect(req)
    pre = pitr_restore.preflight(req, clients=cl)
    checks = {c.check: c for c in pre.checks}
    assert checks["pg_verifybackup"].result.value == "ok"
    plan = pitr_restore.plan(pre)
    ex = pitr_restore.executor(pre, clients=cl)
    result = gate(plan, dry_run=False, approved_by="tester", execute=ex)
    out = pitr_restore.outcome(pre, plan, result, executor=ex, dry_run=False)
    assert out.status is RestoreStatus.RESTORED
    val = pitr_restore.validate(pre, out, clients=cl)
    rows = {r.check: r for r in val.rows}
    assert (rows["public.t"].source, rows["public.t"].target) == (5, 4)
    with psycopg.connect(
        f"host=127.0.0.1 port={out.port} user={ctx.info.pg_user} dbname={db}"
    ) as c:
        got = c.execute("select id, note from t order by id").fetchall()
    assert got == [(1, "before the backup"), (2, "before the backup"), (3, "before the backup"),
                   (4, "first insert")]  # fmt: skip


def _corrupt_a_data_file(base_tar: Path) -> str:
    """Flip one byte inside a relation file's data (not a tar header): only checksums can tell."""
    with tarfile.open(base_tar) as tar:
        member = next(m for m in tar if m.isfile() and m.name.startswith("base/") and m.size > 8192)
    with open(base_tar, "r+b") as fh:
        fh.seek(member.offset_data + 4000)
        byte = fh.read(1)
        fh.seek(member.offset_data + 4000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    return member.name


def test_a_corrupted_backup_fails_verification_and_the_restore_refuses(work):
    ctx, root, db = work
    b = basebackup.take(ctx.pg_conninfo(db), str(root / "base"), label="unit")
    name = _corrupt_a_data_file(Path(b.path) / "base.tar")
    v = basebackup.verify(b.path)
    assert not v.ok and name in v.output and "checksum mismatch" in v.output
    assert not list(root.glob(".verify-*"))  # the scratch copy is gone
    archive_now(ctx, db)
    req = pitr_restore.inputs(
        engine="postgres",
        source=ctx.pg_conninfo(db),
        pg_base_backup=b.path,
        pg_wal_archive=ctx.info.pg_wal_archive,
        pg_target_dir=str(root / "restored"),
    )
    with pytest.raises(PreflightError, match="pg_verifybackup failed"):
        pitr_restore.preflight(req, clients=pitr_restore.connect(req))
    assert not (root / "restored").exists()


def test_a_backup_dir_that_is_not_empty_is_refused(work):
    ctx, root, db = work
    (root / "old").mkdir()
    (root / "old" / "base.tar").write_bytes(b"")
    with pytest.raises(PreflightError, match="not empty"):
        basebackup.take(ctx.pg_conninfo(db), str(root / "old"))
    assert (root / "old" / "base.tar").read_bytes() == b""
