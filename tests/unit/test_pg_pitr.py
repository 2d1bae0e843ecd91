"""Real PostgreSQL PITR against the sandbox cluster: base backup + archived WAL -> a new data dir."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import psycopg
import pytest

from opslib.core.errors import NotFoundError, PitrRecoveryError, PreflightError, RunbookTimeoutError
from opslib.core.progress import no_progress
from opslib.pg import pitr

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def scenario(sandbox):
    """The seeded lost-payments incident (base backup, archive, time just before the DELETE)."""
    from opslib import sandbox as sb

    p = sb.presets("pitr-restore")
    assert p, f"pitr scenario not seeded: {sandbox.scenario_errors}"
    return p


@pytest.fixture
def target_dir(scenario):
    """A fresh, non-existing data dir next to the scenario's; any server there is stopped after."""
    parent = Path(scenario["pg_target_dir"]).parent
    path = parent / f"unit-{os.getpid()}-{dt.datetime.now(dt.UTC).strftime('%H%M%S%f')}"
    yield str(path)
    pitr.remove_target(str(path))


def source_counts(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        return {
            t: conn.execute(f"select count(*) from {t}").fetchone()[0]  # noqa: S608 - fixed names
            for t in ("payments", "accounts")
        }


def restore_time(scenario) -> dt.datetime:
    return dt.datetime.fromisoformat(scenario["restore_time"].replace("Z", "+00:00"))


def test_inspect_backup_and_archive(scenario):
    b = pitr.inspect_base_backup(scenario["pg_base_backup"], wal_archive=scenario["pg_wal_archive"])
    a = pitr.inspect_wal_archive(scenario["pg_wal_archive"])
    assert b.pg_major == "15" and b.owner == "postgres" and b.size_bytes > 1_000_000
    assert b.start_time is not None and b.stop_time is not None
    assert b.consistent_from <= restore_time(scenario) <= a.newest_archived_at
    assert a.segments >= 2 and a.newest_segment


def test_restore_to_just_before_delete_brings_rows_back(scenario, target_dir):
    before = source_counts(scenario["source"])
    assert before["payments"] == 0  # the accident happened
    s = pitr.spec(
        base_backup=scenario["pg_base_backup"],
        wal_archive=scenario["pg_wal_archive"],
        target_dir=target_dir,
        restore_time=restore_time(scenario),
    )
    assert s.os_user == ("postgres" if os.geteuid() == 0 else s.os_user)
    settings = pitr.recovery_settings(s)
    assert settings["archive_mode"] == "off" and settings["recovery_target_action"] == "promote"
    r = pitr.restore(s, timeout_s=120)
    assert r.promoted and r.port == s.port
    assert (
        Path(target_dir, "postgresql.auto.conf").read_text().count("recovery_target_time = ") == 1
    )
    assert not Path(target_dir, "recovery.signal").exists()
    conninfo = f"host=127.0.0.1 port={s.port} user=opslib dbname=payments_db"
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone()[0] is False
        assert conn.execute("select count(*) from payments").fetchone()[0] == 500
        assert conn.execute("select count(*) from accounts").fetchone()[0] == 20
    assert os.stat(target_dir).st_uid == os.stat(scenario["pg_base_backup"]).st_uid
    assert source_counts(scenario["source"]) == before  # the source is untouched
    assert pitr.stop_server(target_dir)
    assert not pitr._alive(r.pid)


def test_refuses_existing_target_and_missing_backup(scenario, tmp_path):
    existing = Path(scenario["pg_target_dir"]).parent
    with pytest.raises(PreflightError, match="already exists"):
        pitr.spec(
            base_backup=scenario["pg_base_backup"],
            wal_archive=scenario["pg_wal_archive"],
            target_dir=str(existing),
        )
    with pytest.raises(NotFoundError, match="does not exist"):
        pitr.spec(
            base_backup=str(tmp_path / "nope"),
            wal_archive=scenario["pg_wal_archive"],
            target_dir=str(existing / "new"),
        )
    with pytest.raises(NotFoundError, match="not a plain-format base backup"):
        pitr.inspect_base_backup(str(tmp_path))
    with pytest.raises(PreflightError, match="absolute"):
        pitr.check_target("relative/dir", "postgres")


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership rules apply when opslib runs as root")
def test_refuses_root_owned_backup(tmp_path):
    (tmp_path / "PG_VERSION").write_text("15\n")
    (tmp_path / "backup_label").write_text("START TIME: 2026-01-01 00:00:00 UTC\n")
    info = pitr.inspect_base_backup(str(tmp_path))
    with pytest.raises(PreflightError, match="owned by root"):
        pitr.run_as_user(info.owner)


def broken_archive(scenario, path: Path) -> Path:
    """An archive that lost every segment after the base backup started (copies get a new mtime)."""
    start = (
        pitr.inspect_base_backup(scenario["pg_base_backup"])
        .start_wal.split("file ")[-1]
        .rstrip(")")
    )
    path.mkdir()
    for seg in Path(scenario["pg_wal_archive"]).iterdir():
        if pitr._WAL_SEGMENT.match(seg.name) and seg.name < start:
            shutil.copy(seg, path / seg.name)
    os.chmod(path, 0o755)
    if os.geteuid() == 0:
        for p in [path, *path.iterdir()]:
            shutil.chown(p, "postgres")
    return path


def test_missing_wal_segment_fails_with_log_and_leaves_no_server(scenario, target_dir):
    archive = broken_archive(scenario, Path(target_dir).parent / f"{Path(target_dir).name}-archive")
    try:
        s = pitr.spec(
            base_backup=scenario["pg_base_backup"],
            wal_archive=str(archive),
            target_dir=target_dir,
            restore_time=restore_time(scenario),
        )
        with pytest.raises(PitrRecoveryError) as err:
            pitr.restore(s, timeout_s=60)
        msg = str(err.value)
        assert "stopped during recovery" in msg and target_dir in msg
        assert "recovery target" in msg  # the server's own FATAL line, from its log
        assert not pitr._alive(pitr.postmaster_pid(target_dir))
    finally:
        shutil.rmtree(archive, ignore_errors=True)


def test_timeout_says_what_exists_and_how_to_resume(scenario, target_dir):
    s = pitr.spec(
        base_backup=scenario["pg_base_backup"],
        wal_archive=scenario["pg_wal_archive"],
        target_dir=target_dir,
        restore_time=restore_time(scenario),
    )
    pitr.copy_base_backup(s)
    pitr.write_recovery_settings(s)
    # Slow WAL fetches (a later setting wins) so recovery cannot finish before the first check:
    # without this, a fast recovery makes the zero timeout race the promotion.
    with open(Path(target_dir) / "postgresql.auto.conf", "a") as fh:
        fh.write(f"restore_command = 'sleep 1 && cp {s.wal_archive}/%f %p'\n")
    pid = pitr.start_server(s)
    with pytest.raises(RunbookTimeoutError) as err:
        pitr.wait_for_promotion(s, timeout_s=0.0, progress=no_progress)
    msg = str(err.value)
    assert (
        target_dir in msg
        and str(s.port) in msg
        and "pg_ctl" in msg
        and "wait_timeout_minutes" in msg
    )
    # resuming = waiting longer: the same server finishes recovery
    pitr.wait_for_promotion(s, timeout_s=60, progress=no_progress)
    assert pitr.postmaster_pid(target_dir) == pid


def test_restored_conninfo_points_at_the_target_port():
    info = pitr.restored_conninfo("host=db.internal hostaddr=10.0.0.5 user=app dbname=pay", 6543)
    assert "host=127.0.0.1" in info and "port=6543" in info and "dbname=pay" in info
    assert "hostaddr" not in info
    assert pitr.restored_conninfo("", 5) == "host=127.0.0.1 port=5"


def test_drill_cleanup_plan_names_only_the_target_dir():
    plan = pitr.plan_delete("/var/tmp/restore-x")
    assert [(c.action, c.target) for c in plan.changes] == [
        (pitr.ACTION_DELETE, "/var/tmp/restore-x")
    ]
