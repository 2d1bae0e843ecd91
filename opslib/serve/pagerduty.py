"""``POST /alerts/pagerduty``: PagerDuty v3 webhooks (incident events).

PagerDuty signs the raw body with each of the subscription's secrets:
``X-PagerDuty-Signature: v1=<hex HMAC-SHA256>[,v1=...]``; the receiver accepts the delivery
when any signature matches any configured secret (several secrets while one is rotated).
``X-Webhook-Id`` identifies a delivery, so a retried delivery makes no second run.
"""

from __future__ import annotations

import hashlib
import hmac

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

SOURCE = "pagerduty"
_STATES = {
    "incident.triggered": AlertState.FIRING,
    "incident.reopened": AlertState.FIRING,
    "incident.resolved": AlertState.RESOLVED,
}


def sign(body: bytes, secret: str) -> str:
    """The ``v1=`` signature PagerDuty computes (used by tests and by senders we stand in for)."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(delivery: Delivery, config: SourceConfig) -> None:
    if not config.pagerduty_secrets:
        raise Rejected(
            401, "no PagerDuty signing secret configured (OPSLIB_SERVE_PAGERDUTY_SECRETS)"
        )
    given = [
        s.strip()
        for s in delivery.headers.get("x-pagerduty-signature", "").split(",")
        if s.strip().startswith("v1=")
    ]
    if not given:
        raise Rejected(401, "missing X-PagerDuty-Signature")
    want = [sign(delivery.body, s) for s in config.pagerduty_secrets]
    if not any(hmac.compare_digest(g, w) for g in given for w in want):
        raise Rejected(401, "X-PagerDuty-Signature does not match the configured secret(s)")


@register_source(SOURCE, fields=("service", "event_type", "title"))
def parse(delivery: Delivery, config: SourceConfig) -> Intake:
    """One alert per incident event; the body (plus ``data`` at the top) is the JMESPath context."""
    if config.verify:
        check_signature(delivery, config)
    body = dict(require_object(load_json(delivery.body), "the PagerDuty webhook"))
    event = require_object(body.get("event"), "'event'")
    event_type = str(event.get("event_type", ""))
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    service = data.get("service") if isinstance(data.get("service"), dict) else {}
    webhook_id = delivery.headers.get("x-webhook-id", "") or str(event.get("id", ""))
    return Intake(
        alerts=(
            Alert(
                source=SOURCE,
                dedup_key=f"{SOURCE}|{webhook_id}",
                state=_STATES.get(event_type, AlertState.OTHER),
                name=str(data.get("title", "")),
                labels={
                    "priority": str((data.get("priority") or {}).get("summary", ""))
                    if isinstance(data.get("priority"), dict)
                    else "",
                    "urgency": str(data.get("urgency", "")),
                },
                fields={
                    "service": str(service.get("summary", "")),
                    "event_type": event_type,
                    "title": str(data.get("title", "")),
                },
                context={**body, "data": data},
                ids={
                    "webhook_id": webhook_id,
                    "event_id": str(event.get("id", "")),
                    "incident_id": str(data.get("id", "")),
                },
            ),
        )
    )
