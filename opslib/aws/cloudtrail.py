"""CloudTrail event history for a leaked credential: what the key or principal did, unusual first.

``LookupEvents`` (the 90-day management-event history, no trail needed) takes one lookup
attribute per call: ``AccessKeyId`` for a key, ``Username`` for a user, ``ResourceName`` with a
role's ARN for the ``AssumeRole`` calls that issued its sessions. Events are grouped by (event
source, event name) with their regions, source IPs and error codes, and each group is marked
unusual when it ran in a region outside the expected ones (a new region is the classic sign of
a key used by someone else), touched IAM/STS (persistence: new keys, users, roles), read data
(secrets, parameters, objects, decrypts) or was denied (someone probing what the key may do).

The API allows 2 calls per second per account and region, so pages are bounded
(:data:`MAX_EVENTS`) and throttling backs off through the client's adaptive retries. A denied,
throttled or missing API is a finding, never a traceback; an endpoint that does not implement
it (the sandbox's moto 5.2.5 answers HTTP 500 "The lookup_events action has not been
implemented") is named as such.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from opslib.aws.iam import mask_key
from opslib.clients import AwsErrorKind, aws_error_code, aws_error_kind, translate_aws_error
from opslib.core.findings import Finding, Severity

MAX_EVENTS = 1000  # one run reads at most this many events (20 pages of 50)
IAM_SOURCES = frozenset({"iam.amazonaws.com", "sts.amazonaws.com", "sso.amazonaws.com"})
#: (event source, event-name prefix) pairs that read data a leaked key would be after
DATA_ACCESS = (
    ("secretsmanager.amazonaws.com", "GetSecretValue"),
    ("secretsmanager.amazonaws.com", "BatchGetSecretValue"),
    ("ssm.amazonaws.com", "GetParameter"),
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("kms.amazonaws.com", "Decrypt"),
    ("dynamodb.amazonaws.com", "Scan"),
    ("dynamodb.amazonaws.com", "GetItem"),
    ("rds.amazonaws.com", "CopyDBSnapshot"),
    ("rds.amazonaws.com", "ModifyDBSnapshotAttribute"),
)
_WEIGHTS = {"new": 3, "IAM/STS": 2, "data": 2, "denied/failed:": 1}
MOTO_NOTE = (
    "the sandbox's AWS server (moto 5.2.5) does not implement CloudTrail LookupEvents (it answers "
    "HTTP 500 'The lookup_events action has not been implemented'), so no event can be shown here; "
    "on AWS this step lists every call of the key in the window"
)


@dataclass(frozen=True)
class TrailEvent:
    """One CloudTrail management event, reduced to what an investigation reads."""

    time: _dt.datetime
    name: str
    source: str
    region: str
    source_ip: str
    user_agent: str = ""
    error: str = ""
    principal: str = ""  # userIdentity.arn
    access_key: str = ""  # masked
    read_only: bool | None = None
    event_id: str = ""

    def to_row(self) -> dict[str, Any]:
        return {
            "time": self.time.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "event": self.name,
            "source": self.source.replace(".amazonaws.com", ""),
            "region": self.region,
            "source IP": self.source_ip,
            "error": self.error,
            "principal": self.principal,
            "key": self.access_key,
        }


def parse_event(raw: dict[str, Any]) -> TrailEvent:
    """A LookupEvents entry (its ``CloudTrailEvent`` JSON) as a :class:`TrailEvent`."""
    try:
        body = json.loads(raw.get("CloudTrailEvent") or "{}")
    except ValueError:
        body = {}
    ident = body.get("userIdentity") or {}
    t = raw.get("EventTime")
    if isinstance(t, _dt.datetime):
        when = t if t.tzinfo else t.replace(tzinfo=_dt.UTC)
    else:
        text = str(body.get("eventTime") or "1970-01-01T00:00:00Z").replace("Z", "+00:00")
        when = _dt.datetime.fromisoformat(text)
    ro = body.get("readOnly")
    key = ident.get("accessKeyId") or ""
    return TrailEvent(
        time=when.astimezone(_dt.UTC),
        name=raw.get("EventName") or body.get("eventName", ""),
        source=raw.get("EventSource") or body.get("eventSource", ""),
        region=body.get("awsRegion", ""),
        source_ip=body.get("sourceIPAddress", ""),
        user_agent=body.get("userAgent", ""),
        error=body.get("errorCode", ""),
        principal=ident.get("arn", ""),
        access_key=mask_key(key) if key else "",
        read_only=ro if isinstance(ro, bool) else (str(ro).lower() == "true" if ro else None),
        event_id=raw.get("EventId") or body.get("eventID", ""),
    )


@dataclass(frozen=True)
class EventLookup:
    """The events found for one lookup attribute, and what stopped the lookup if anything did."""

    attribute: str
    events: tuple[TrailEvent, ...] = ()
    truncated: bool = False
    findings: tuple[Finding, ...] = ()
    available: bool = True


def _unavailable(exc: ClientError, what: str, endpoint: str) -> Finding:
    code = aws_error_code(exc)
    kind = aws_error_kind(exc)
    text = str(exc)
    loopback = any(h in endpoint for h in ("127.0.0.1", "localhost", "[::1]"))
    if kind is AwsErrorKind.DENIED:
        return Finding(
            Severity.ERROR,
            "CloudTrail event history not readable: access denied",
            "cloudtrail",
            f"{what}: {code}",
            "Grant cloudtrail:LookupEvents to the investigating role (or read the trail's S3 logs / "
            "CloudTrail Lake); until then the key's activity is unknown, so contain first.",
        )
    not_implemented = "not been implemented" in text or (
        code == "500" and "Internal Server Error" in text
    )
    if kind is AwsErrorKind.UNSUPPORTED or not_implemented:
        note = MOTO_NOTE if loopback else f"the endpoint {endpoint} does not offer LookupEvents"
        return Finding(
            Severity.WARNING,
            "CloudTrail event history unavailable on this endpoint",
            "cloudtrail",
            f"{what}: {code or 'error'}: {note}",
            "Review the key's activity in the CloudTrail console (Event history, filter Access key) "
            "or the trail's S3 logs with Athena before you close the incident.",
        )
    err = translate_aws_error(exc, what)
    return Finding(
        Severity.ERROR,
        f"CloudTrail lookup failed: {code or type(exc).__name__}",
        "cloudtrail",
        str(err)[:500],
        "Run again (LookupEvents allows 2 calls per second per region), or narrow lookback_hours.",
    )


def lookup_events(
    attribute: str,
    value: str,
    *,
    cloudtrail,
    start: _dt.datetime,
    end: _dt.datetime,
    label: str = "",
    max_events: int = MAX_EVENTS,
) -> EventLookup:
    """Events with ``attribute`` = ``value`` between ``start`` and ``end``, newest first (bounded).

    ``label`` is how the value is named in findings (pass the masked key id for a key).
    """
    what = f"cloudtrail:LookupEvents {attribute}={label or value}"
    events: list[TrailEvent] = []
    token = ""
    endpoint = str(getattr(getattr(cloudtrail, "meta", None), "endpoint_url", ""))
    while True:
        kw: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": value}],
            "StartTime": start,
            "EndTime": end,
            "MaxResults": 50,
        }
        if token:
            kw["NextToken"] = token
        try:
            page = cloudtrail.lookup_events(**kw)
        except ClientError as exc:
            return EventLookup(
                what,
                tuple(events),
                False,
                (_unavailable(exc, what, endpoint),),
                available=bool(events),
            )
        events += [parse_event(e) for e in page.get("Events", [])]
        token = page.get("NextToken", "")
        if not token:
            return EventLookup(what, tuple(events[:max_events]), len(events) > max_events)
        if len(events) >= max_events:
            note = Finding(
                Severity.WARNING,
                f"more than {max_events} events: only the newest {max_events} are shown",
                "cloudtrail",
                what,
                "Narrow lookback_hours, or query the trail's S3 logs with Athena for the full history.",
            )
            return EventLookup(what, tuple(events[:max_events]), True, (note,))


# -- grouping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventGroup:
    """All calls of one API by the principal in the window, with why they are unusual."""

    source: str
    name: str
    count: int
    regions: tuple[str, ...]
    source_ips: tuple[str, ...]
    errors: tuple[str, ...]
    first: _dt.datetime
    last: _dt.datetime
    unusual: tuple[str, ...] = field(default_factory=tuple)

    @property
    def score(self) -> int:
        """How alarming: a new region weighs most, then IAM/STS and data access, then denials."""
        return sum(_WEIGHTS.get(r.split(" ", 1)[0], 1) for r in self.unusual)

    def to_row(self) -> dict[str, Any]:
        return {
            "unusual": "; ".join(self.unusual),
            "event": f"{self.source.replace('.amazonaws.com', '')}:{self.name}",
            "count": self.count,
            "regions": ", ".join(self.regions),
            "source IPs": ", ".join(self.source_ips),
            "errors": ", ".join(self.errors),
            "first": self.first.strftime("%Y-%m-%d %H:%M UTC"),
            "last": self.last.strftime("%Y-%m-%d %H:%M UTC"),
        }


def _reasons(
    source: str, name: str, regions: set[str], errors: set[str], usual: set[str]
) -> list[str]:
    out = []
    # global services (IAM, STS's global endpoint) log in us-east-1 whatever the caller's region
    seen = regions - {"us-east-1"} if source in IAM_SOURCES else regions
    new = sorted(r for r in seen if r and usual and r not in usual)
    if new:
        out.append("new region " + ", ".join(new))
    if source in IAM_SOURCES:
        out.append("IAM/STS call")
    if any(source == s and name.startswith(p) for s, p in DATA_ACCESS):
        out.append("data access")
    if errors:
        out.append("denied/failed: " + ", ".join(sorted(errors)))
    return out


def group_events(events: list[TrailEvent], *, usual_regions: set[str]) -> list[EventGroup]:
    """Events grouped by API, the unusual ones first (highest :attr:`EventGroup.score`, then most calls)."""
    by: dict[tuple[str, str], list[TrailEvent]] = {}
    for e in events:
        by.setdefault((e.source, e.name), []).append(e)
    groups = []
    for (source, name), evs in by.items():
        regions = {e.region for e in evs}
        errors = {e.error for e in evs if e.error}
        ips = Counter(e.source_ip for e in evs if e.source_ip)
        groups.append(
            EventGroup(
                source,
                name,
                len(evs),
                tuple(sorted(r for r in regions if r)),
                tuple(ip for ip, _ in ips.most_common(5)),
                tuple(sorted(errors)),
                min(e.time for e in evs),
                max(e.time for e in evs),
                tuple(_reasons(source, name, regions, errors, usual_regions)),
            )
        )
    return sorted(groups, key=lambda g: (-g.score, -g.count, g.source, g.name))


def unusual_findings(groups: list[EventGroup], *, who: str) -> list[Finding]:
    """One finding per unusual group: what it is, the evidence, and what to check next."""
    out = []
    for g in groups:
        if not g.unusual:
            continue
        sev = (
            Severity.CRITICAL
            if any(r.startswith("new region") for r in g.unusual)
            else Severity.WARNING
        )
        out.append(
            Finding(
                sev,
                f"{who}: {g.source.replace('.amazonaws.com', '')}:{g.name} x{g.count} ({'; '.join(g.unusual)})",
                "cloudtrail",
                f"regions {', '.join(g.regions) or '?'}; source IPs {', '.join(g.source_ips) or '?'}; "
                f"{g.first:%Y-%m-%d %H:%M} .. {g.last:%Y-%m-%d %H:%M} UTC",
                _next(g),
                {"event": g.name, "count": g.count},
            )
        )
    return out


def _next(g: EventGroup) -> str:
    if g.source in IAM_SOURCES:
        return (
            "Look for persistence: new users, access keys, roles or policy changes made by this call "
            "(its requestParameters in CloudTrail), and remove what you did not create."
        )
    if any(r == "data access" for r in g.unusual):
        return "Treat what it read as exposed: rotate those secrets/keys and check the objects' access logs."
    return "Confirm with the key's owner whether this was them; if not, contain (contain=True)."
