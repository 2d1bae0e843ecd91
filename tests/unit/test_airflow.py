"""The Airflow operator under real Airflow: ``airflow dags test`` of the example DAG runs
latency-triage on the sandbox through ``opslib run``, and the bundle verifies.

Airflow lives in its own virtualenv (its pins conflict with the dev environment's):
``$OPSLIB_AIRFLOW_VENV`` (default ``.venv-airflow`` in the repository), which
``scripts/bootstrap.sh`` makes for ``make test`` (``OPSLIB_WITH_TEST_TOOLS=1``). A plain
``pytest`` without it skips these two tests and says how to get it; CI always has it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opslib.cli import main as opslib_main

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("OPSLIB_AIRFLOW_VENV", str(ROOT / ".venv-airflow")))
AIRFLOW = VENV / "bin" / "airflow"
pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not AIRFLOW.exists(),
        reason=f"no Airflow virtualenv at {VENV}: OPSLIB_WITH_TEST_TOOLS=1 scripts/bootstrap.sh",
    ),
]


def airflow(env, *args, timeout=400):
    return subprocess.run(
        [str(AIRFLOW), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture
def airflow_env(sandbox, tmp_path):
    from opslib import sandbox as sb

    assert sb.seed(["latency"]).get("latency") == ""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "examples" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "PYTHONPATH": str(ROOT),  # opslib.airflow imports with Airflow's own packages only
        "OPSLIB_COMMAND": f"{sys.executable} -m opslib.cli",
        "OPSLIB_EXAMPLE_SANDBOX": "1",
        "OPSLIB_EVIDENCE_DIR": str(tmp_path / "evidence"),
    }
    out = airflow(env, "db", "migrate")
    assert out.returncode == 0, out.stderr[-3000:]
    yield env
    sb.seed(["latency"])


def test_dags_test_runs_the_runbook_and_the_bundle_verifies(airflow_env, tmp_path):
    out = airflow(airflow_env, "dags", "test", "opslib_daily_checks", "2024-05-01")
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    (bundle,) = list((tmp_path / "evidence" / "latency-triage").iterdir())
    rec = json.loads((bundle / "record.json").read_text())
    assert rec["status"] == "succeeded" and rec["parameters"]["change_ticket"] == "daily-2024-05-01"
    assert rec["parameters"]["dry_run"] is True
    assert opslib_main(["evidence", "verify", str(bundle)]) == 0
    assert "state=success" in log.replace(" ", "").lower() or "success" in log.lower()


def test_red_findings_fail_the_task_without_retry(airflow_env, tmp_path):
    env = {**airflow_env, "OPSLIB_EXAMPLE_FAIL_ON": "critical"}
    out = airflow(env, "dags", "test", "opslib_daily_checks", "2024-05-02")
    log = out.stdout + out.stderr
    assert "AirflowFailException" in log and "exited 3" in log, log[-5000:]
    assert "latency-triage" in log and str(tmp_path / "evidence") in log  # the bundle is named
