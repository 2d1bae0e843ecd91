"""``POST /alerts/sns``: Amazon SNS HTTP(S) deliveries of CloudWatch alarms.

Every message is verified before anything else: SNS signs the canonical string of the
message's fields with the key of the certificate at ``SigningCertURL`` (SHA1withRSA for
``SignatureVersion`` 1, SHA256withRSA for 2). The certificate, and a subscription's
``SubscribeURL``, are fetched only from an SNS endpoint of an allowed region
(``https://sns.<region>.amazonaws.com/...``) or from the configured endpoint (an SNS stand-in
on a private network): an attacker cannot make the receiver fetch an arbitrary URL or sign
with their own certificate. A ``Notification`` whose ``Message`` is a CloudWatch alarm becomes
one alert, keyed on ``MessageId`` (SNS redelivers on timeouts).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import re
import threading
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from opslib.serve.alerts import (
    Alert,
    AlertState,
    Delivery,
    Intake,
    Rejected,
    SourceConfig,
    load_json,
    register_source,
    require_object,
)

SOURCE = "sns"
_SNS_HOST = re.compile(r"^sns\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_FIELDS["UnsubscribeConfirmation"] = _FIELDS["SubscriptionConfirmation"]
_CERTS: dict[str, Any] = {}
_CERTS_LOCK = threading.Lock()
_MAX_CERTS = 16


def allowed_url(url: str, config: SourceConfig) -> bool:
    """Whether the receiver may fetch ``url``: an allowed region's SNS host, or the endpoint."""
    if config.sns_endpoint:
        want, got = urlsplit(config.sns_endpoint), urlsplit(url)
        if (got.scheme, got.netloc) == (want.scheme, want.netloc):
            return True
    parts = urlsplit(url)
    m = _SNS_HOST.match(parts.hostname or "")
    return bool(parts.scheme == "https" and m and m.group(1) in config.sns_regions)


def canonical(message: dict[str, Any]) -> bytes:
    """The string SNS signs: ``Key\\nValue\\n`` for the type's fields present, in order."""
    kind = message.get("Type", "")
    out = []
    for key in _FIELDS.get(kind, ()):
        if key in message and message[key] is not None:
            out.append(f"{key}\n{message[key]}\n")
    return "".join(out).encode("utf-8")


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310  host checked by caller
        return resp.read(256 * 1024)


def _certificate(url: str, config: SourceConfig):
    from cryptography import x509

    with _CERTS_LOCK:
        cert = _CERTS.get(url)
    if cert is None:
        try:
            cert = x509.load_pem_x509_certificate(_fetch(url, config.fetch_timeout_s))
        except (OSError, ValueError) as exc:
            raise Rejected(401, f"cannot load the SNS signing certificate: {exc}") from exc
        with _CERTS_LOCK:
            if len(_CERTS) >= _MAX_CERTS:
                _CERTS.pop(next(iter(_CERTS)))
            _CERTS[url] = cert
    now = _dt.datetime.now(_dt.UTC)
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise Rejected(401, "the SNS signing certificate is not valid now")
    return cert


def verify(message: dict[str, Any], config: SourceConfig) -> None:
    """401 unless the message carries a valid SNS signature from an allowed certificate."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    version = str(message.get("SignatureVersion", ""))
    algo = {"1": hashes.SHA1, "2": hashes.SHA256}.get(version)  # noqa: S303  SNS v1 is SHA1
    if algo is None:
        raise Rejected(401, f"unsupported SignatureVersion {version!r} (1 or 2)")
    url = str(message.get("SigningCertURL") or message.get("SigningCertUrl") or "")
    if not allowed_url(url, config):
        raise Rejected(
            401, "SigningCertURL is not an SNS endpoint of an allowed region nor the endpoint"
        )
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except ValueError as exc:
        raise Rejected(401, "Signature is not base64") from exc
    cert = _certificate(url, config)
    try:
        cert.public_key().verify(signature, canonical(message), padding.PKCS1v15(), algo())
    except (InvalidSignature, TypeError, ValueError) as exc:
        raise Rejected(401, "SNS signature does not verify") from exc


def _state(value: str) -> AlertState:
    return {"ALARM": AlertState.FIRING, "OK": AlertState.RESOLVED}.get(value, AlertState.OTHER)


@register_source(SOURCE, fields=("alarm_name", "region", "namespace", "metric"))
def parse(delivery: Delivery, config: SourceConfig) -> Intake:
    """Verify, confirm subscriptions, and turn a CloudWatch alarm notification into an alert.

    The alarm JSON itself is the JMESPath context (``AlarmName``,
    ``Trigger.Dimensions[?name=='LoadBalancer'].value | [0]``, ``Region``).
    """
    message = dict(require_object(load_json(delivery.body), "the SNS message"))
    if not config.verify and "AlarmName" in message:  # --check-routes on a bare alarm
        message = {"Type": "Notification", "MessageId": "check", "Message": json.dumps(message)}
    kind = message.get("Type")
    if kind not in _FIELDS:
        raise Rejected(422, f"not an SNS HTTP delivery: Type {kind!r}")
    if not config.verify:
        if kind != "Notification":
            return Intake(note=f"{kind}: nothing to route")
    else:
        verify(message, config)
    topic = str(message.get("TopicArn", ""))
    if config.sns_topics and topic not in config.sns_topics:
        raise Rejected(403, f"topic {topic} is not one this receiver accepts")
    if kind == "UnsubscribeConfirmation":
        return Intake(note="unsubscribe confirmation noted; nothing to do")
    if kind == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL", ""))
        if not allowed_url(url, config):
            raise Rejected(403, "SubscribeURL is not an SNS endpoint of an allowed region")
        try:
            _fetch(url, config.fetch_timeout_s)
        except OSError as exc:
            raise Rejected(502, f"could not confirm the subscription: {exc}") from exc
        return Intake(note=f"subscription to {topic} confirmed")
    try:
        alarm = json.loads(str(message.get("Message", "")))
    except ValueError as exc:
        raise Rejected(422, "the SNS Message is not a CloudWatch alarm (not JSON)") from exc
    if not isinstance(alarm, dict) or "AlarmName" not in alarm:
        raise Rejected(422, "the SNS Message is not a CloudWatch alarm (no AlarmName)")
    trigger = alarm.get("Trigger") if isinstance(alarm.get("Trigger"), dict) else {}
    dims = {
        str(d.get("name", "")): str(d.get("value", ""))
        for d in trigger.get("Dimensions") or []
        if isinstance(d, dict)
    }
    name = str(alarm["AlarmName"])
    message_id = str(message.get("MessageId", ""))
    return Intake(
        alerts=(
            Alert(
                source=SOURCE,
                dedup_key=f"{SOURCE}|{message_id}",
                state=_state(str(alarm.get("NewStateValue", ""))),
                name=name,
                labels=dims,
                fields={
                    "alarm_name": name,
                    "region": str(alarm.get("Region", "")),
                    "namespace": str(trigger.get("Namespace", "")),
                    "metric": str(trigger.get("MetricName", "")),
                },
                context=alarm,
                ids={"MessageId": message_id, "TopicArn": topic},
            ),
        )
    )
