"""cert-expiry end to end: notebooks/cert_expiry.ipynb through opslib.run on the sandbox.

The scenario seeds ACM certificates expiring in 5, 20 and 200 days (the last with an alarm),
a Kubernetes TLS secret expiring in 25 days, and two real TLS endpoints on 127.0.0.1: one
expiring in 3 days and one whose certificate names another host. It is reseeded around each test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import opslib

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def certs(sandbox):
    from opslib import sandbox as sb

    errors = sb.seed(["certs"])
    assert errors.get("certs") == "", errors
    yield sb.presets("cert-expiry")
    sb.seed(["certs"])


def _by_source(res):
    out = {}
    for c in res["certificates"]:
        out.setdefault(c["source"], []).append(round(c["days_left"]))
    return out


def test_dry_run_lists_every_certificate_soonest_first(certs, evidence_dir):
    r = opslib.run("cert-expiry", {"create_alarms": True}, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    days = [c["days_left"] for c in res["certificates"]]
    assert days == sorted(days)
    by = _by_source(res)
    assert sorted(by["acm"])[:3] == [5, 20, 200] or {5, 20, 200} <= set(by["acm"])
    assert by["k8s"] == [25] and sorted(by["endpoint"]) == [3, 90]
    assert round(res["soonest_days"]) == 3
    titles = [(f["severity"], f["title"]) for f in res["findings"]]
    port_mismatch = certs["endpoints"].split(",")[1]
    assert ("critical", f"{port_mismatch}: certificate does not name localhost") in titles
    assert any(
        s == "critical" and "payments.fintech.example: expires in 5.0" in t for s, t in titles
    )
    assert any(s == "critical" and "expires in 3.0 days" in t for s, t in titles)
    assert any(s == "warning" and "api.fintech.example: expires in 20.0" in t for s, t in titles)
    assert any(s == "warning" and "account-service-tls: expires in 25.0" in t for s, t in titles)
    assert not any("www.fintech.example" in t for _, t in titles)  # 200 days: fine
    assert res["findings"][0]["severity"] == "critical"
    assert res["alarms_created"] == [] and r.record["changes"] == []
    nb = json.loads((Path(r.bundle) / "cert-expiry.ipynb").read_text())
    text = json.dumps(nb)
    assert "HOSTNAME MISMATCH for localhost" in text and "served chain of 2" in text
    assert "PRIVATE KEY" not in text  # tls.key is never read


def test_approved_run_creates_the_missing_alarms(certs, evidence_dir):
    from opslib.clients import aws_client

    r = opslib.run(
        "cert-expiry",
        {"create_alarms": True, "dry_run": False, "approved_by": "e2e", "change_ticket": "CHG-9"},
        sandbox=True,
        evidence_dir=evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    created = r.record["results"]["alarms_created"]
    assert len(created) == 2 and all(n.startswith("acm-days-to-expiry-") for n in created)
    assert {c["target"] for c in r.record["changes"]} == {
        "payments.fintech.example",
        "api.fintech.example",
    }
    assert r.record["approvals"][0]["change_ticket"] == "CHG-9"
    alarms = aws_client("cloudwatch").describe_alarms(AlarmNames=created)["MetricAlarms"]
    assert {a["Threshold"] for a in alarms} == {30.0} and {a["MetricName"] for a in alarms} == {
        "DaysToExpiry"
    }
    again = opslib.run(
        "cert-expiry", {"create_alarms": True}, sandbox=True, evidence_dir=evidence_dir
    )
    assert (
        "(0 change(s)" in json.dumps(again.record)
        or again.record["results"]["alarms_created"] == []
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"endpoints": "localhost"}, "host:port"),
        ({"warn_days": 3, "critical_days": 7}, "warn_days=3 must be >= critical_days=7"),
        ({"acm": False, "create_alarms": True}, "create_alarms needs acm=True"),
    ],
)
def test_bad_input_is_refused_with_a_bundle(certs, evidence_dir, params, message):
    r = opslib.run("cert-expiry", params, sandbox=True, evidence_dir=evidence_dir)
    assert (r.status, r.exit_code) == ("refused", 2)
    assert message in r.record["error"]["evalue"]
    assert r.record["changes"] == []
