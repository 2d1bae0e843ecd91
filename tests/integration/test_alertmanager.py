"""The real Alertmanager (Debian's ``prometheus-alertmanager``) notifies the real ``opslib
serve``, which runs latency-triage, dry, on the sandbox with parameters from the alert's labels.

One Alertmanager and one receiver port for the whole story, as in production: the receiver
is first started accept-only and killed right after it has persisted the alert (a crash
between the 202 and the run); restarted, it runs the alert once. Alertmanager's own repeats
(``repeat_interval``) are deduplicated; a receiver configured with the wrong bearer token is
refused (401, no run); the resolution is recorded and, per the route, not run.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from opslib.cli import main as opslib_main
from opslib.evidence.record import RunRecord
from tests.unit.serve_support import Receiver, free_port, wait_for

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
TOKEN = "alertmanager-bearer-for-tests-42"
pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not Path(ALERTMANAGER).exists(), reason="prometheus-alertmanager not installed"
    ),
]

ROUTES = """\
routes:
  - name: high-latency
    source: alertmanager
    match:
      labels: {alertname: HighLatency, severity: {regex: "critical|page"}}
    runbook: latency-triage
    parameters:
      k8s_namespace: labels.namespace
      k8s_selector: "join('', ['app=', labels.app])"
      threshold_ms: labels.threshold_ms
    constants: {window_minutes: 60}
    on_resolved: ignore
  - name: wrong-token
    source: alertmanager
    match: {labels: {alertname: WrongToken}}
    runbook: latency-triage
"""


def am_config(serve_port: int, token_file: Path) -> str:
    url = f"http://127.0.0.1:{serve_port}/alerts/alertmanager"
    return f"""\
route:
  receiver: opslib
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4s
  routes:
    - matchers: ['alertname="WrongToken"']
      receiver: wrong-token
receivers:
  - name: opslib
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials_file: {token_file}}}
  - name: wrong-token
    webhook_configs:
      - url: {url}
        send_resolved: false
        http_config:
          authorization: {{type: Bearer, credentials: not-the-token}}
"""


@pytest.fixture
def alertmanager(tmp_path):
    serve_port, am_port = free_port(), free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(am_config(serve_port, token_file))
    log = (tmp_path / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={cfg}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{am_port}/api/v2"

    def ready():
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "alertmanager.log").read_text())
        try:
            return httpx.get(f"{api}/status", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=30, what="Alertmanager to listen", poll=0.2)
        yield {"api": api, "serve_port": serve_port}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def fire(
    api: str, labels: dict[str, str], *, ends: dt.datetime | None = None, starts: dt.datetime
) -> None:
    alert = {
        "labels": labels,
        "annotations": {"summary": "ALB p99 over 500 ms"},
        "startsAt": starts.isoformat(),
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    r = httpx.post(f"{api}/alerts", json=[alert], timeout=10)
    assert r.status_code == 200, r.text


@pytest.fixture
def incident(sandbox):
    from opslib import sandbox as sb

    errors = sb.seed(["latency"])
    assert errors.get("latency") == "", errors
    yield
    sb.seed(["latency"])


def test_alertmanager_alert_runs_latency_triage_once_dry(alertmanager, incident, tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    evidence = tmp_path / "evidence"
    env = {**os.environ, "OPSLIB_SERVE_ALERTMANAGER_TOKENS": TOKEN}
    base = ["--routes", str(routes), "--state-dir", str(tmp_path / "state"), "--sandbox"]
    base += ["--evidence-dir", str(evidence)]
    log = tmp_path / "serve.log"
    port = alertmanager["serve_port"]
    labels = {
        "alertname": "HighLatency",
        "severity": "critical",
        "namespace": "fintech-banking",
        "app": "auth-service",
        "threshold_ms": "500",
    }
    starts = dt.datetime.now(dt.UTC).replace(microsecond=0)

    # 1. accept-only receiver; killed right after it persisted the alert
    first = Receiver([*base, "--max-concurrent", "0"], env=env, log=log).start(port=port)
    try:
        fire(alertmanager["api"], labels, starts=starts)
        queued = wait_for(first.runs, timeout=60, what="Alertmanager's webhook to be accepted")
        assert queued[0]["state"] == "queued" and queued[0]["runbook"] == "latency-triage"
    finally:
        first.kill()

    # 2. restarted: the persisted alert runs, once
    r = Receiver([*base, "--max-concurrent", "1"], env=env, log=log).start(port=port)
    try:
        done = wait_for(
            lambda: [x for x in r.runs() if x["state"] == "done"],
            timeout=300,
            what="the latency-triage run",
            poll=1,
        )
        (run,) = done
        assert run["status"] == "succeeded", run
        # Alertmanager repeats the group every 4 s: deduplicated, no second run
        wait_for(
            lambda: r.health()["duplicates"] >= 1, timeout=60, what="a repeat from Alertmanager"
        )

        # 3. a sender with the wrong bearer token is refused, nothing runs
        fire(
            alertmanager["api"], {"alertname": "WrongToken", "severity": "critical"}, starts=starts
        )
        wait_for(lambda: r.health()["rejected"].get("401", 0) >= 1, timeout=60, what="a 401")

        # 4. the resolution arrives; the route ignores resolved alerts
        fire(alertmanager["api"], labels, starts=starts, ends=dt.datetime.now(dt.UTC))
        wait_for(
            lambda: [x for x in r.runs() if x["alert"]["state"] == "resolved"],
            timeout=60,
            what="the resolved notification",
        )
        rows = r.runs()
    finally:
        r.stop()
    assert [x["state"] for x in rows if x["alert"]["state"] == "resolved"] == ["ignored"]
    assert [x for x in rows if x["state"] == "done"] == [run]
    assert all(x["alert"]["name"] != "WrongToken" for x in rows)
    (bundle,) = list((evidence / "latency-triage").iterdir())
    assert str(bundle) == run["bundle"]
    rec = RunRecord.load(bundle)
    params = rec.parameters
    assert (
        params["k8s_namespace"] == "fintech-banking"
        and params["k8s_selector"] == "app=auth-service"
    )
    assert params["threshold_ms"] == 500.0 and params["window_minutes"] == 60
    assert params["dry_run"] is True and params["approved_by"] == ""
    assert rec["approvals"] == [] and rec["changes"] == []
    assert rec.results["verdict"].startswith("CRITICAL: PostgreSQL")
    assert sorted(rec.results["restarting_pods"]) == [
        "auth-service-7c9d8f-4xkqp",
        "auth-service-7c9d8f-9mzt2",
    ]
    assert run["alert"]["ids"]["fingerprint"] and run["alert"]["labels"]["app"] == "auth-service"
    assert opslib_main(["evidence", "verify", str(bundle)]) == 0
