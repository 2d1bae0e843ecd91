"""What an alert source turns a webhook into, and the registry of sources.

Each source (Alertmanager, SNS, PagerDuty) is one module that registers a parser with
:func:`register_source`; the receiver looks the parser up by the URL's last segment
(``POST /alerts/<source>``), so a new source is a new module plus one registration. A parser
verifies the sender (token, signature, HMAC) and decodes the body; it never runs anything.
A rejection is a :class:`Rejected` carrying the HTTP status and the reason the sender sees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AlertState(StrEnum):
    """Where the alert is in its life: only firing alerts (and resolved ones, per route) run."""

    FIRING = "firing"
    RESOLVED = "resolved"
    OTHER = "other"  # acknowledged, annotated, INSUFFICIENT_DATA...: recorded, never run


@dataclass(frozen=True)
class Alert:
    """One alert as the router sees it, whichever system sent it.

    ``context`` is the document route JMESPath expressions read (``commonLabels.namespace``,
    ``Trigger.Dimensions[?name=='LoadBalancer'].value | [0]``); ``fields`` holds the values
    routes match on besides labels (``alarm_name``, ``service``, ``event_type``); ``dedup_key``
    makes a burst of the same notification one run.
    """

    source: str
    dedup_key: str
    state: AlertState
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    ids: Mapping[str, str] = field(default_factory=dict)

    def trigger(self) -> dict[str, Any]:
        """The alert as the evidence records it (the raw payload is redacted by the caller)."""
        return {
            "source": self.source,
            "name": self.name,
            "state": self.state.value,
            "ids": dict(self.ids),
            "labels": dict(self.labels),
            "fields": dict(self.fields),
        }


@dataclass(frozen=True)
class Intake:
    """What one webhook delivered: alerts to route, or a reply that needs no run."""

    alerts: tuple[Alert, ...] = ()
    note: str = ""  # e.g. "subscription confirmed": shown in the 2xx answer


class Rejected(Exception):
    """Raised when a webhook must be refused (bad JSON, wrong signature): nothing runs.

    ``status`` is the HTTP status (400, 401, 403, 413, 422) and the message is the reason the
    sender sees in the answer, so whoever configured the sender can fix it.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """One HTTP request as a source parser sees it: raw bytes (signatures cover them) and headers."""

    body: bytes
    headers: Mapping[str, str]  # lower-cased names


@dataclass(frozen=True)
class SourceConfig:
    """How the receiver authenticates senders; secrets come from the environment, never a file.

    ``alertmanager_tokens``: bearer tokens Alertmanager sends (``http_config.authorization``);
    empty accepts any sender (a receiver on loopback or behind a mesh). ``pagerduty_secrets``:
    the webhook subscription's signing secrets (several while one is rotated).
    ``sns_regions``/``sns_endpoint``: where SNS signing certificates and SubscribeURLs may be
    fetched from. ``sns_topics``: topic ARNs accepted (empty: any).
    """

    alertmanager_tokens: tuple[str, ...] = ()
    pagerduty_secrets: tuple[str, ...] = ()
    sns_regions: tuple[str, ...] = ()
    sns_endpoint: str = ""
    sns_topics: tuple[str, ...] = ()
    fetch_timeout_s: float = 5.0
    verify: bool = True  # False only for ``--check-routes`` on a saved payload: nothing runs


Parser = Callable[[Delivery, SourceConfig], Intake]
_SOURCES: dict[str, Parser] = {}
_FIELDS: dict[str, tuple[str, ...]] = {}


def register_source(name: str, *, fields: tuple[str, ...]) -> Callable[[Parser], Parser]:
    """Register the parser of ``POST /alerts/<name>`` and the fields routes may match on.

    A name registered twice is a bug, raised at import time.
    """

    def deco(fn: Parser) -> Parser:
        if name in _SOURCES:
            raise RuntimeError(f"alert source {name!r} registered twice")
        _SOURCES[name] = fn
        _FIELDS[name] = tuple(fields)
        return fn

    return deco


def get_source(name: str) -> Parser | None:
    return _SOURCES.get(name)


def source_fields(name: str) -> tuple[str, ...]:
    """Besides ``labels``, what a route for this source may match on."""
    return _FIELDS.get(name, ())


def source_names() -> tuple[str, ...]:
    return tuple(sorted(_SOURCES))


def load_json(body: bytes) -> Any:
    """The body as JSON, or a 400 naming the problem."""
    import json

    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected(400, f"body is not JSON: {exc}") from exc


def require_object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Rejected(422, f"{what} must be a JSON object")
    return value


def str_map(value: Any) -> dict[str, str]:
    """Labels as str -> str (Alertmanager guarantees it; other senders get coerced)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}
