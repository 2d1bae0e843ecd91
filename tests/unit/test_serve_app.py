"""``opslib serve`` end to end over HTTP: a real uvicorn subprocess on loopback, real kernels.

Checked: an accepted alert runs once, dry, with parameters from its payload, and its bundle is
listed in ``/runs``; a burst of the same alert is one run; every bad delivery is a 4xx with a
reason and stores nothing; a receiver killed after the 202 runs the alert after its restart,
once; never more than ``--max-concurrent`` runs at once; the finished run is announced to a
webhook taken from the environment; PagerDuty deliveries are HMAC-checked.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from pathlib import Path

import pytest

from opslib.evidence.record import RunRecord
from opslib.serve.pagerduty import sign
from tests.unit.serve_support import am_webhook, finished, receiver, wait_for, write_triage_notebook

pytestmark = pytest.mark.timeout(300)
TOKEN = "am-token-for-tests-0123456789"
PD_SECRET = "pd-secret-for-tests-abcdef"

ROUTES = """\
routes:
  - name: latency
    source: alertmanager
    match:
      labels: {alertname: HighLatency}
    runbook: triage
    parameters:
      service: labels.service
      sleep_s: labels.sleep_s
      marker_dir: commonAnnotations.marker_dir
    constants: {severity: critical}
  - name: incidents
    source: pagerduty
    match: {event_type: incident.triggered, service: {regex: "checkout.*"}}
    runbook: triage
    parameters:
      service: data.service.summary
"""


@pytest.fixture
def setup(tmp_path):
    books = tmp_path / "notebooks"
    write_triage_notebook(books)
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    env = {
        **os.environ,
        "OPSLIB_NOTEBOOKS": str(books),
        "OPSLIB_SERVE_ALERTMANAGER_TOKENS": TOKEN,
        "OPSLIB_SERVE_PAGERDUTY_SECRETS": f"old-secret-xyz-123456,{PD_SECRET}",
    }
    env.pop("OPSLIB_SERVE_NOTIFY_URL", None)
    return {"tmp": tmp_path, "env": env, "routes": routes, "evidence": tmp_path / "evidence"}


def args(setup, *extra: str) -> list[str]:
    return [
        "--routes",
        str(setup["routes"]),
        "--state-dir",
        str(setup["tmp"] / "state"),
        "--evidence-dir",
        str(setup["evidence"]),
        *extra,
    ]


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_alert_runs_once_dry_with_payload_parameters(setup):
    with receiver(args(setup), env=setup["env"], log=setup["tmp"] / "serve.log") as r:
        body = am_webhook(service="auth-service")
        first = r.post("alertmanager", body, AUTH)
        assert first.status_code == 202, first.text
        assert [a["runbook"] for a in first.json()["accepted"]] == ["triage"]
        for _ in range(5):  # Alertmanager resends the group: no second run
            again = r.post("alertmanager", body, AUTH)
            assert again.status_code == 202 and again.json()["accepted"] == []
            assert again.json()["duplicates"][0]["id"] == first.json()["accepted"][0]["id"]
        (run,) = wait_for(lambda: finished(r, 1), timeout=120, what="the run to finish")
        assert run["status"] == "succeeded" and run["exit_code"] == 0, run
        assert run["alert"]["labels"]["service"] == "auth-service"
        assert len(r.runs()) == 1
    rec = RunRecord.load(run["bundle"])
    assert rec["parameters"]["service"] == "auth-service"
    assert rec["parameters"]["severity"] == "critical"  # a route constant
    assert rec["parameters"]["dry_run"] is True and rec["parameters"]["approved_by"] == ""
    assert rec.results["dry_run_seen"] is True and rec.results["approved_by_seen"] == ""
    assert Path(run["bundle"]).parent.parent == setup["evidence"]


def test_bad_deliveries_are_refused_and_store_nothing(setup):
    with receiver(
        args(setup, "--max-body", "4096"), env=setup["env"], log=setup["tmp"] / "s.log"
    ) as r:
        cases = [
            (r.post("alertmanager", b"{not json", AUTH), 400, "not JSON"),
            (r.post("alertmanager", am_webhook()), 401, "bearer token"),
            (
                r.post("alertmanager", am_webhook(), {"Authorization": "Bearer wrong"}),
                401,
                "does not match",
            ),
            (
                r.post("alertmanager", am_webhook(alertname="DiskFull"), AUTH),
                422,
                "no route matches",
            ),
            (r.post("alertmanager", {"alerts": "x"}, AUTH), 422, "must be a list"),
            (r.post("nagios", am_webhook(), AUTH), 404, "unknown alert source"),
            (r.post("alertmanager", b"{" + b" " * 5000 + b"}", AUTH), 413, "body over 4096"),
            (
                r.post("pagerduty", {"event": {}}, {"X-PagerDuty-Signature": "v1=00"}),
                401,
                "does not match",
            ),
        ]
        for resp, status, reason in cases:
            assert resp.status_code == status, (status, resp.text)
            assert reason in resp.json()["error"]
        assert r.runs() == []
        assert sum(r.health()["rejected"].values()) == len(cases)


def test_restart_between_accept_and_run_runs_it_once(setup):
    log = setup["tmp"] / "serve.log"
    # --max-concurrent 0: accept and persist only, so the alert is certainly not started yet
    with receiver(args(setup, "--max-concurrent", "0"), env=setup["env"], log=log) as r:
        resp = r.post("alertmanager", am_webhook(service="ledger"), AUTH)
        assert resp.status_code == 202, resp.text
        r.kill()  # a crash right after the 202
    with receiver(args(setup, "--max-concurrent", "1"), env=setup["env"], log=log) as r:
        assert len(r.runs()) == 1  # the alert accepted before the crash is still there, once
        (run,) = wait_for(lambda: finished(r, 1), timeout=120, what="the replayed run")
        assert run["status"] == "succeeded" and run["parameters"]["service"] == "ledger"
        # the same delivery again after the restart is still a duplicate
        again = r.post("alertmanager", am_webhook(service="ledger"), AUTH)
        assert again.json()["accepted"] == [] and len(again.json()["duplicates"]) == 1
    bundles = list((setup["evidence"] / "triage").iterdir())
    assert len(bundles) == 1


def test_never_more_than_max_concurrent_runs(setup):
    markers = setup["tmp"] / "markers"
    markers.mkdir()
    peak = {"n": 0}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak["n"] = max(peak["n"], len(list(markers.glob("*.running"))))
            time.sleep(0.05)

    with receiver(
        args(setup, "--max-concurrent", "2"), env=setup["env"], log=setup["tmp"] / "s.log"
    ) as r:
        t = threading.Thread(target=watch, daemon=True)
        t.start()
        for i in range(4):
            body = am_webhook(
                service=f"svc-{i}", fingerprint=f"fp{i}", extra_labels={"sleep_s": "4"}
            )
            body["commonAnnotations"] = {"marker_dir": str(markers)}
            assert r.post("alertmanager", body, AUTH).status_code == 202
        wait_for(lambda: finished(r, 4), timeout=240, what="four runs")
        stop.set()
        t.join(timeout=5)
    assert len(list(markers.glob("*.done"))) == 4
    assert peak["n"] == 2  # two at once, never three


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802  http.server's name
        n = int(self.headers["Content-Length"])
        _Hook.received.append(json.loads(self.rfile.read(n)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_pagerduty_signed_incident_runs_and_is_announced(setup):
    hook = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    env = {**setup["env"], "OPSLIB_SERVE_NOTIFY_URL": f"http://127.0.0.1:{hook.server_port}/hook"}
    body = json.dumps(
        {
            "event": {
                "id": "01DEV",
                "event_type": "incident.triggered",
                "resource_type": "incident",
                "occurred_at": "2024-05-01T10:00:00Z",
                "data": {
                    "id": "PINC1",
                    "type": "incident",
                    "title": "checkout p99 high",
                    "service": {
                        "id": "PSVC",
                        "summary": "checkout-api",
                        "type": "service_reference",
                    },
                    "urgency": "high",
                },
            }
        }
    ).encode()
    try:
        with receiver(args(setup), env=env, log=setup["tmp"] / "s.log") as r:
            hdr = {
                "X-PagerDuty-Signature": f"v1=deadbeef,{sign(body, PD_SECRET)}",
                "X-Webhook-Id": "wh-1",
            }
            assert r.post("pagerduty", body, hdr).status_code == 202
            assert r.post("pagerduty", body, hdr).json()["duplicates"]  # a retried delivery
            tampered = body.replace(b"checkout-api", b"checkout-apx")
            assert r.post("pagerduty", tampered, {**hdr, "X-Webhook-Id": "wh-2"}).status_code == 401
            (run,) = wait_for(lambda: finished(r, 1), timeout=120, what="the PagerDuty run")
            assert run["parameters"]["service"] == "checkout-api" and run["status"] == "succeeded"
            wait_for(lambda: _Hook.received, timeout=30, what="the notification")
    finally:
        hook.shutdown()
    text = _Hook.received[-1]["text"]
    assert "triage (dry run)" in text and "WARNING: checkout-api checked" in text
    assert run["bundle"] in text
