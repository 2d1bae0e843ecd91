"""Example DAG: the daily latency check, run by Airflow through opslib's RunbookOperator.

Copy into your DAGs folder. ``OPSLIB_COMMAND`` points at opslib in its own environment (e.g.
``/opt/opslib/bin/opslib``) when Airflow's and opslib's dependencies differ. Red findings fail
the task without retries (exit 3); infrastructure errors (exit 4) are retried. The bundle
path is in XCom (``bundle``) for the next task (attach it to a ticket, post it to a channel).

``OPSLIB_EXAMPLE_SANDBOX=1`` runs it against the local sandbox (what the test does).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG

from opslib.airflow import RunbookOperator

with DAG(
    dag_id="opslib_daily_checks",
    schedule="0 7 * * *",
    start_date=dt.datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["opslib", "sre"],
) as dag:
    latency = RunbookOperator(
        task_id="latency_triage",
        runbook="latency-triage",
        parameters={"window_minutes": 60, "change_ticket": "daily-{{ ds }}"},
        evidence_dir=os.environ.get("OPSLIB_EVIDENCE_DIR", "s3://evidence-bucket/opslib"),
        fail_on=os.environ.get("OPSLIB_EXAMPLE_FAIL_ON", ""),
        timeout_s=1800,
        sandbox=os.environ.get("OPSLIB_EXAMPLE_SANDBOX") == "1",
    )
