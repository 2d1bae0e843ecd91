"""db-maintenance end to end: notebooks/db_maintenance.ipynb through opslib.run on the sandbox.

The seeded incident (database ``payments``): ``public.orders`` with 40 % dead tuples and
autovacuum off, one statement dominating pg_stat_statements, and a long-running query from
``reporting-export``. A dry run reports them and changes nothing; approved runs vacuum the
flagged table (n_dead_tup drops), terminate the long query (and nothing else), and turn
slow-statement logging on and back off within the run. Bad input is refused with exit 2.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import opslib
from opslib.clients import pg_connect
from opslib.core.errors import SecretInParameterError

pytestmark = pytest.mark.timeout(600)

LONG_SQL = (
    "SELECT pid, extract(epoch FROM now() - query_start) FROM pg_stat_activity "
    "WHERE datname = 'payments' AND application_name = 'reporting-export' AND state = 'active'"
)


@pytest.fixture
def incident(sandbox):
    from opslib import sandbox as sb

    errors = sb.seed(["health"])
    assert errors.get("health") == "", errors
    yield sb.presets("db-maintenance")


def _db(incident, sql, *args):
    with pg_connect(incident["pg_dsn"], runbook="test") as conn:
        return conn.execute(sql, args or None).fetchall()


def _dead(incident) -> int:
    return _db(incident, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'orders'")[0][
        0
    ]


def _long_query(incident, older_than: float = 0.0) -> int:
    end = time.monotonic() + 20
    while time.monotonic() < end:
        rows = _db(incident, LONG_SQL)
        if rows and rows[0][1] > older_than:
            return int(rows[0][0])
        time.sleep(0.3)
    raise AssertionError(f"no long query older than {older_than}s")


def test_dry_run_reports_the_incident_and_changes_nothing(incident, evidence_dir):
    dead = _dead(incident)
    pid = _long_query(incident, older_than=7)
    r = opslib.run("db-maintenance", {"action": "vacuum"}, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["action"] == "vacuum" and res["flagged_tables"] == ["public.orders"]
    assert res["dead_tuples_before"] == {"public.orders": dead} == res["dead_tuples_after"]
    assert dead >= 3900
    top = res["top_statements"][0]
    assert top["calls"] >= 150 and set(top) >= {"queryid", "calls", "mean_ms"}
    titles = [f["title"] for f in res["findings"]]
    assert any("public.orders has 40% dead tuples" in t for t in titles)
    assert any("one statement takes" in t for t in titles)
    assert any("running longer than 6s" in t for t in titles)
    assert r.record["approvals"] == [] and r.record["changes"] == []
    assert _dead(incident) == dead and _long_query(incident) == pid
    nb = (Path(r.bundle) / "db-maintenance.ipynb").read_text()
    assert "VACUUM (VERBOSE, ANALYZE)" in nb and "LIKE $1" in nb and "order 1%" not in nb


def test_terminate_long_then_vacuum_lowers_dead_tuples(incident, evidence_dir):
    """The long query's snapshot keeps the dead tuples visible: the report says so, the long
    query goes first (and nothing else), then VACUUM removes them."""
    pid = _long_query(incident, older_than=7)
    before = _dead(incident)
    r = opslib.run(
        "db-maintenance",
        {"action": "terminate-long", "dry_run": False, "approved_by": "e2e"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    assert r.record["results"]["terminated_pids"] == [pid]
    assert [c["status"] for c in r.record["changes"]] == ["applied"]
    assert _db(incident, LONG_SQL) == []
    others = _db(incident, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'accounts'")
    assert others[0][0] >= 4  # the other scenario's sessions in another database are untouched

    r = opslib.run(
        "db-maintenance",
        {"action": "vacuum", "dry_run": False, "approved_by": "e2e", "change_ticket": "CHG-15"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["flagged_tables"] == ["public.orders"]
    assert res["dead_tuples_before"]["public.orders"] == before >= 3900
    after = res["dead_tuples_after"]["public.orders"]
    changes = r.record["changes"]
    assert [(c["action"], c["status"]) for c in changes] == [
        ("pg:VACUUM (VERBOSE, ANALYZE)", "applied")
    ]
    assert r.record["approvals"][0]["change_ticket"] == "CHG-15"
    verbose = (Path(r.bundle) / "attachments" / "vacuum-public.orders.txt").read_text()
    assert 'vacuuming "payments.public.orders"' in verbose
    # the latency scenario keeps an older transaction open in another database: it held this
    # database back only through the long query's snapshot, which is gone now
    assert after == 0, changes[0]["detail"]
    assert _dead(incident) == 0


def test_log_slow_is_reverted_by_the_run(incident, evidence_dir):
    r = opslib.run(
        "db-maintenance",
        {
            "action": "log-slow",
            "log_min_duration_ms": 200,
            "log_revert_minutes": 0.05,
            "dry_run": False,
            "approved_by": "e2e",
        },
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    assert [(c["action"], c["status"]) for c in r.record["changes"]] == [
        ("pg:ALTER SYSTEM SET log_min_duration_statement", "applied"),
        ("pg:ALTER SYSTEM RESET log_min_duration_statement", "applied"),
    ]
    log = r.record["results"]["log_slow"]
    assert log["reverted"] is True and log["set_by_alter_system"] is False
    assert _db(
        incident, "SELECT sourcefile FROM pg_settings WHERE name = 'log_min_duration_statement'"
    )[0][0] != ("postgresql.auto.conf")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"action": "drop-everything"}, "action='drop-everything'"),
        (
            {"action": "vacuum", "tables": "public.nope", "dry_run": False, "approved_by": "e2e"},
            "public.nope",
        ),
        ({"action": "vacuum", "tables": "orders"}, "schema-qualified"),
    ],
)
def test_bad_input_is_refused_with_exit_2_and_nothing_changes(
    incident, evidence_dir, params, message
):
    before = _dead(incident)
    r = opslib.run("db-maintenance", params, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("refused", 2)
    assert message in r.record["error"]["evalue"]
    assert r.record["changes"] == [] and Path(r.bundle).exists()
    assert _dead(incident) == before


def test_password_in_conninfo_is_refused_before_the_run(incident, evidence_dir):
    with pytest.raises(SecretInParameterError, match="PGPASSWORD"):
        opslib.run(
            "db-maintenance",
            {"pg_dsn": "host=127.0.0.1 dbname=payments password=hunter2"},
            sandbox=True,
            evidence_dir=evidence_dir,
        )
