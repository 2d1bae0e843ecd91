"""``POST /alerts/alertmanager``: the Alertmanager webhook (payload version 4).

One webhook carries a group (``groupKey``, ``commonLabels``) of alerts, each with its own
``status``, ``labels``, ``annotations``, ``startsAt`` and ``fingerprint``. Alertmanager resends
the whole group on every change and every ``repeat_interval``, so each alert is keyed on
``groupKey`` + ``fingerprint`` + ``startsAt`` (+ its status, so the resolution of an alert is
not taken for a repeat of its firing): a resend makes no second run.

The sender is authenticated by the bearer token of the receiver's ``http_config``
(``authorization: {type: Bearer, credentials_file: ...}``) when tokens are configured.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

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
    str_map,
)

SOURCE = "alertmanager"


def check_token(delivery: Delivery, config: SourceConfig) -> None:
    """401 unless the bearer token is one of the configured ones (none configured: open)."""
    if not config.alertmanager_tokens or not config.verify:
        return
    header = delivery.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Rejected(401, "missing bearer token (set http_config.authorization in the receiver)")
    if not any(hmac.compare_digest(token.strip(), t) for t in config.alertmanager_tokens):
        raise Rejected(401, "bearer token does not match any configured token")


def _fingerprint(alert: dict[str, Any]) -> str:
    fp = alert.get("fingerprint")
    if fp:
        return str(fp)
    labels = json.dumps(str_map(alert.get("labels")), sort_keys=True)
    return hashlib.sha256(labels.encode()).hexdigest()[:16]


@register_source(SOURCE, fields=("alertname", "receiver", "service"))
def parse(delivery: Delivery, config: SourceConfig) -> Intake:
    """Every alert of the group, each with the whole webhook plus itself as JMESPath context.

    The context is the webhook body with ``alert``, ``labels`` and ``annotations`` of this one
    alert added, so a route can read ``commonLabels.namespace`` or ``labels.instance``.
    """
    check_token(delivery, config)
    body = require_object(load_json(delivery.body), "the Alertmanager webhook")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise Rejected(422, "not an Alertmanager webhook: 'alerts' must be a list")
    group_key = str(body.get("groupKey", ""))
    out = []
    for raw in alerts:
        alert = dict(require_object(raw, "each of 'alerts'"))
        labels = str_map(alert.get("labels"))
        status = str(alert.get("status") or body.get("status") or "firing")
        state = {"firing": AlertState.FIRING, "resolved": AlertState.RESOLVED}.get(
            status, AlertState.OTHER
        )
        fingerprint = _fingerprint(alert)
        starts = str(alert.get("startsAt", ""))
        context = {
            **body,
            "alert": alert,
            "labels": labels,
            "annotations": str_map(alert.get("annotations")),
        }
        out.append(
            Alert(
                source=SOURCE,
                dedup_key=f"{SOURCE}|{group_key}|{fingerprint}|{starts}|{state.value}",
                state=state,
                name=labels.get("alertname", ""),
                labels=labels,
                fields={
                    "alertname": labels.get("alertname", ""),
                    "receiver": str(body.get("receiver", "")),
                    "service": labels.get("service", labels.get("job", "")),
                },
                context=context,
                ids={
                    "groupKey": group_key,
                    "fingerprint": fingerprint,
                    "startsAt": starts,
                    "truncatedAlerts": str(body.get("truncatedAlerts", 0)),
                },
            )
        )
    return Intake(alerts=tuple(out))
