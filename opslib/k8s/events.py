"""Recent Kubernetes Warning events (the quick health check: ``kubectl get events --sort-by=.lastTimestamp``).

Events explain what the pod table only hints at: BackOff, OOMKilling, failed probes, failed
scheduling. Only ``type=Warning`` within the window is kept, newest first.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from opslib.core.findings import Finding, Severity

SOURCE = "k8s"


@dataclass(frozen=True)
class K8sEvent:
    """One Warning event about an object."""

    namespace: str
    kind: str
    name: str
    reason: str
    message: str
    count: int
    last_seen: str  # ISO UTC

    def to_dict(self) -> dict:
        return {
            "last_seen": self.last_seen,
            "object": f"{self.kind}/{self.name}",
            "reason": self.reason,
            "count": self.count,
            "message": self.message,
        }


def _when(e) -> _dt.datetime | None:
    for ts in (
        e.last_timestamp,
        getattr(e, "event_time", None),
        e.first_timestamp,
        e.metadata.creation_timestamp if e.metadata else None,
    ):
        if ts:
            if isinstance(ts, str):
                ts = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
            return ts if ts.tzinfo else ts.replace(tzinfo=_dt.UTC)
    return None


def warning_events(
    *,
    api,
    namespace: str,
    since_minutes: int = 60,
    names: tuple[str, ...] | None = None,
    limit: int = 50,
) -> tuple[K8sEvent, ...]:
    """Warning events in ``namespace`` seen in the last ``since_minutes``; only about ``names`` if given."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    items = core.list_namespaced_event(
        namespace, field_selector="type=Warning", _request_timeout=15
    ).items
    cutoff = _dt.datetime.now(_dt.UTC) - _dt.timedelta(minutes=since_minutes)
    out = []
    for e in items:
        if (e.type or "") != "Warning":
            continue
        when = _when(e)
        if when is not None and when < cutoff:
            continue
        obj = e.involved_object
        if names is not None and (obj.name if obj else "") not in names:
            continue
        out.append(
            (
                when,
                K8sEvent(
                    namespace=namespace,
                    kind=obj.kind if obj else "",
                    name=obj.name if obj else "",
                    reason=e.reason or "",
                    message=(e.message or "")[:300],
                    count=int(e.count or 1),
                    last_seen=when.isoformat().replace("+00:00", "Z") if when else "",
                ),
            )
        )
    out.sort(key=lambda t: t[0] or cutoff, reverse=True)
    return tuple(ev for _, ev in out[:limit])


def events_frame(events: tuple[K8sEvent, ...]):
    import pandas as pd

    return pd.DataFrame(
        [e.to_dict() for e in events], columns=["last_seen", "object", "reason", "count", "message"]
    )


def findings(events: tuple[K8sEvent, ...], *, namespace: str) -> list[Finding]:
    """One finding summarising the Warning events by reason."""
    if not events:
        return []
    reasons: dict[str, int] = {}
    for e in events:
        reasons[e.reason] = reasons.get(e.reason, 0) + e.count
    top = ", ".join(f"{r} x{n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:4])
    return [
        Finding(
            Severity.WARNING,
            f"Kubernetes {namespace}: {len(events)} recent Warning event(s)",
            SOURCE,
            f"{top}; latest: {events[0].kind}/{events[0].name} {events[0].reason}: {events[0].message[:120]}",
            "Read the events with the pod table; OOMKilling/BackOff point at memory limits.",
            {"reasons": reasons},
        )
    ]
