"""The alert sources: SNS signatures (v1 SHA1, v2 SHA256) against a certificate served on
loopback, the allow-list of hosts the receiver may fetch from, subscription confirmation,
PagerDuty's HMAC over the raw body, Alertmanager's bearer token and alert keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from opslib.serve import alertmanager, pagerduty, sns
from opslib.serve.alerts import AlertState, Delivery, Rejected, SourceConfig


def _cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


class _Handler(http.server.BaseHTTPRequestHandler):
    pem = b""
    gets: list[str] = []

    def do_GET(self):  # noqa: N802
        _Handler.gets.append(self.path)
        body = _Handler.pem if self.path.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def endpoint():
    key, pem = _cert()
    _Handler.pem = pem
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


ALARM = {
    "AlarmName": "HighLatency-auth",
    "NewStateValue": "ALARM",
    "Region": "EU (Frankfurt)",
    "Trigger": {
        "MetricName": "TargetResponseTime",
        "Namespace": "AWS/ApplicationELB",
        "Dimensions": [{"name": "LoadBalancer", "value": "app/fintech-alb/50dc6c495c0c9188"}],
    },
}


def signed(key, base: str, message: dict, version: str = "1") -> bytes:
    message = {
        **message,
        "SignatureVersion": version,
        "SigningCertURL": f"{base}/SimpleNotificationService-test.pem",
    }
    algo = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
    sig = key.sign(sns.canonical(message), padding.PKCS1v15(), algo)
    message["Signature"] = base64.b64encode(sig).decode()
    return json.dumps(message).encode()


def notification(**over) -> dict:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-central-1:123456789012:alarms",
        "Subject": "ALARM: HighLatency-auth",
        "Message": json.dumps(ALARM),
        "Timestamp": "2024-05-01T10:00:00.000Z",
        **over,
    }


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_signature_versions_verify_and_give_the_alarm(endpoint, version):
    key, base = endpoint
    config = SourceConfig(sns_endpoint=base)
    (alert,) = sns.parse(Delivery(signed(key, base, notification(), version), {}), config).alerts
    assert alert.state is AlertState.FIRING and alert.name == "HighLatency-auth"
    assert alert.dedup_key == "sns|22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    assert alert.labels == {"LoadBalancer": "app/fintech-alb/50dc6c495c0c9188"}
    import jmespath

    expr = "Trigger.Dimensions[?name=='LoadBalancer'].value | [0]"
    assert jmespath.search(expr, alert.context) == "app/fintech-alb/50dc6c495c0c9188"


def test_sns_tampered_message_or_foreign_certificate_is_refused(endpoint):
    key, base = endpoint
    config = SourceConfig(sns_endpoint=base)
    body = json.loads(signed(key, base, notification()))
    body["Message"] = body["Message"].replace("ALARM", "OK")
    with pytest.raises(Rejected) as exc:
        sns.parse(Delivery(json.dumps(body).encode(), {}), config)
    assert exc.value.status == 401 and "does not verify" in exc.value.reason
    # a certificate on a host that is not SNS nor the configured endpoint is never fetched
    fetched = len(_Handler.gets)
    other = base.replace("127.0.0.1", "localhost")
    with pytest.raises(Rejected) as exc:
        sns.parse(Delivery(signed(key, other, notification()), {}), config)
    assert exc.value.status == 401 and "allowed region" in exc.value.reason
    assert len(_Handler.gets) == fetched


def test_sns_allowed_hosts():
    config = SourceConfig(sns_regions=("eu-central-1",))
    assert sns.allowed_url("https://sns.eu-central-1.amazonaws.com/x.pem", config)
    assert not sns.allowed_url("https://sns.us-east-1.amazonaws.com/x.pem", config)
    assert not sns.allowed_url("http://sns.eu-central-1.amazonaws.com/x.pem", config)
    assert not sns.allowed_url("https://sns.eu-central-1.amazonaws.com.evil.io/x.pem", config)
    assert not sns.allowed_url("https://evil.io/sns.eu-central-1.amazonaws.com/x.pem", config)


def test_sns_subscription_is_confirmed_only_at_an_allowed_host(endpoint):
    key, base = endpoint
    config = SourceConfig(sns_endpoint=base)
    sub = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "m-1",
        "Token": "2336412f37",
        "TopicArn": "arn:aws:sns:eu-central-1:123456789012:alarms",
        "Message": "You have chosen to subscribe",
        "SubscribeURL": f"{base}/?Action=ConfirmSubscription&Token=2336412f37",
        "Timestamp": "2024-05-01T10:00:00.000Z",
    }
    intake = sns.parse(Delivery(signed(key, base, sub), {}), config)
    assert intake.alerts == () and "confirmed" in intake.note
    assert _Handler.gets[-1].startswith("/?Action=ConfirmSubscription")
    evil = {**sub, "SubscribeURL": "http://localhost:9/?Action=ConfirmSubscription"}
    with pytest.raises(Rejected) as exc:
        sns.parse(Delivery(signed(key, base, evil), {}), config)
    assert exc.value.status == 403


def test_sns_ok_state_is_resolved_and_topic_filter(endpoint):
    key, base = endpoint
    msg = notification(MessageId="m-ok", Message=json.dumps({**ALARM, "NewStateValue": "OK"}))
    (alert,) = sns.parse(
        Delivery(signed(key, base, msg), {}), SourceConfig(sns_endpoint=base)
    ).alerts
    assert alert.state is AlertState.RESOLVED
    with pytest.raises(Rejected) as exc:
        sns.parse(
            Delivery(signed(key, base, msg), {}),
            SourceConfig(sns_endpoint=base, sns_topics=("arn:aws:sns:eu-central-1:1:other",)),
        )
    assert exc.value.status == 403


def test_pagerduty_hmac_over_raw_body():
    body = json.dumps(
        {"event": {"event_type": "incident.resolved", "data": {"title": "t"}}}
    ).encode()
    config = SourceConfig(pagerduty_secrets=("s-old-000000", "s-new-111111"))
    ok = Delivery(
        body, {"x-pagerduty-signature": pagerduty.sign(body, "s-new-111111"), "x-webhook-id": "w"}
    )
    (alert,) = pagerduty.parse(ok, config).alerts
    assert alert.state is AlertState.RESOLVED and alert.dedup_key == "pagerduty|w"
    bad = Delivery(body + b" ", dict(ok.headers))
    with pytest.raises(Rejected):
        pagerduty.parse(bad, config)
    with pytest.raises(Rejected):  # no secret configured: refuse rather than trust anyone
        pagerduty.parse(ok, SourceConfig())


def test_alertmanager_keys_each_alert_and_checks_the_token():
    from tests.unit.serve_support import am_webhook

    body = am_webhook()
    body["alerts"].append({**body["alerts"][0], "fingerprint": "other", "status": "resolved"})
    raw = json.dumps(body).encode()
    config = SourceConfig(alertmanager_tokens=("t-123456789",))
    a, b = alertmanager.parse(Delivery(raw, {"authorization": "Bearer t-123456789"}), config).alerts
    assert a.state is AlertState.FIRING and b.state is AlertState.RESOLVED
    assert a.dedup_key != b.dedup_key and a.ids["fingerprint"] == "f00d"
    assert (
        a.context["commonLabels"]["service"] == "auth-service" and a.context["labels"]["alertname"]
    )
    with pytest.raises(Rejected) as exc:
        alertmanager.parse(Delivery(raw, {"authorization": "Bearer nope"}), config)
    assert exc.value.status == 401
