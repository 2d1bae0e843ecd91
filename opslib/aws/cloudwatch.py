"""CloudWatch metrics in as few GetMetricData calls as the API allows, as one pandas frame.

Runbooks ask for many series at once (ALB p50/p90/p99, 5xx, request count, RDS CPU, cache
evictions, ...). ``GetMetricData`` takes up to 500 queries per call, so :func:`get_metrics`
batches them, follows ``NextToken`` and returns one :class:`MetricSeries`: a DataFrame with a UTC
timestamp index and one column per query id, plus each query's status and messages.

Some endpoints (the local AWS API server among them) reject percentile statistics (``p99``).
Then the percentile queries are fetched again with ``Maximum``, an upper bound that still
shows a latency breach, and the series says so (``fallbacks`` and the query's messages), so a
finding can be honest about what it measured.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opslib.core.errors import BadInputError

#: GetMetricData accepts at most this many queries per call.
MAX_QUERIES_PER_CALL = 500

#: The statistic used when an endpoint rejects a percentile: an upper bound on any percentile.
FALLBACK_STAT = "Maximum"

_ID = re.compile(r"^[a-z][a-zA-Z0-9_]{0,254}$")
# pNN, pNN.N and the other extended statistics (trimmed mean, winsorized mean, ...)
_PERCENTILE = re.compile(r"^(p|tm|wm|tc|ts)\d{1,2}(\.\d+)?$|^(TM|WM|PR|TC|TS)\(", re.IGNORECASE)

# Endpoints seen rejecting percentiles in this process: skip the failing call next time.
_PERCENTILE_REJECTED: set[str] = set()
_PERCENTILE_OK: set[str] = set()


def is_percentile(stat: str) -> bool:
    """True for percentile-style extended statistics (p99, p99.9, tm90, ...)."""
    return bool(_PERCENTILE.match(stat))


@dataclass(frozen=True)
class MetricQuery:
    """One metric series to fetch: namespace, metric name, dimensions, statistic and period."""

    id: str  # GetMetricData query id: starts with a lowercase letter, then [a-zA-Z0-9_]
    namespace: str  # e.g. "AWS/ApplicationELB"
    metric: str  # e.g. "TargetResponseTime"
    dimensions: Mapping[str, str] = field(default_factory=dict, hash=False)
    stat: str = "Average"  # Average, Sum, Maximum, Minimum, SampleCount, p99, ...
    period: int = 60  # seconds
    label: str = ""

    def __post_init__(self) -> None:
        if not _ID.match(self.id or ""):
            raise BadInputError(
                f"MetricQuery id {self.id!r} is invalid: use a lowercase letter followed by "
                "letters, digits or '_' (GetMetricData rule), e.g. 'p99' or 'alb_5xx'."
            )
        if (
            self.period <= 0
            or (self.period >= 60 and self.period % 60)
            or (self.period < 60 and self.period not in (1, 5, 10, 20, 30))
        ):
            raise BadInputError(
                f"MetricQuery {self.id}: period {self.period} is invalid; use 1, 5, 10, 20, 30 "
                "or a multiple of 60 seconds."
            )

    def to_api(self, stat: str | None = None) -> dict[str, Any]:
        """The ``MetricDataQueries`` entry for this query (optionally with another statistic)."""
        q: dict[str, Any] = {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
                },
                "Period": int(self.period),
                "Stat": stat or self.stat,
            },
            "ReturnData": True,
        }
        if self.label:
            q["Label"] = self.label
        return q


@dataclass(frozen=True)
class MetricSeries:
    """The fetched series: ``frame`` (UTC index, one column per query id) plus per-query status."""

    frame: Any  # pandas.DataFrame
    queries: tuple[MetricQuery, ...]
    status: Mapping[str, str]  # query id -> Complete | PartialData | InternalError | Forbidden
    messages: Mapping[str, tuple[str, ...]]  # query id -> messages from the API and from opslib
    stats: Mapping[str, str]  # query id -> the statistic actually used (after any fallback)
    fallbacks: tuple[str, ...] = ()  # query ids whose percentile fell back to Maximum
    calls: int = 0  # GetMetricData calls made (pages included)
    start: _dt.datetime | None = None
    end: _dt.datetime | None = None

    def to_frame(self):
        """The series as a DataFrame (a copy): UTC timestamp index, one column per query id."""
        return self.frame.copy()

    def series(self, query_id: str):
        """One query's values as a pandas Series without gaps (NaN dropped)."""
        return self.frame[query_id].dropna()

    def has_data(self, query_id: str) -> bool:
        return query_id in self.frame and bool(self.frame[query_id].notna().any())

    def note(self, query_id: str) -> str:
        """Status and messages of one query as one line, for a finding's evidence."""
        parts = [
            f"status {self.status.get(query_id, 'unknown')}",
            f"stat {self.stats.get(query_id, '?')}",
        ]
        parts += list(self.messages.get(query_id, ()))
        return "; ".join(parts)

    def status_frame(self):
        """Per-query status as a DataFrame (id, metric, stat used, status, points, messages)."""
        import pandas as pd

        rows = [
            {
                "id": q.id,
                "metric": f"{q.namespace}/{q.metric}",
                "stat": self.stats.get(q.id, q.stat),
                "status": self.status.get(q.id, ""),
                "points": int(self.frame[q.id].notna().sum()) if q.id in self.frame else 0,
                "messages": " | ".join(self.messages.get(q.id, ())),
            }
            for q in self.queries
        ]
        return pd.DataFrame(rows, columns=["id", "metric", "stat", "status", "points", "messages"])


def _utc(t: _dt.datetime) -> _dt.datetime:
    return t.replace(tzinfo=_dt.UTC) if t.tzinfo is None else t.astimezone(_dt.UTC)


def _endpoint(cloudwatch) -> str:
    return str(getattr(getattr(cloudwatch, "meta", None), "endpoint_url", "") or "")


def _batches(items: Sequence[MetricQuery], size: int) -> Iterable[Sequence[MetricQuery]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _fetch(cloudwatch, batch: Sequence[MetricQuery], stats: Mapping[str, str], start, end):
    """One batch through every NextToken page: ({id: [(ts, value)]}, {id: status}, {id: [msg]}, calls)."""
    points: dict[str, list[tuple[Any, float]]] = {q.id: [] for q in batch}
    status: dict[str, str] = {}
    messages: dict[str, list[str]] = {q.id: [] for q in batch}
    # identical series (e.g. p50/p90/p99 after a fallback to Maximum) are asked for once
    same: dict[tuple, str] = {}
    alias: dict[str, list[str]] = {}
    sent: list[MetricQuery] = []
    for q in batch:
        key = (q.namespace, q.metric, tuple(sorted(q.dimensions.items())), stats[q.id], q.period)
        if key in same:
            alias[same[key]].append(q.id)
        else:
            same[key] = q.id
            alias[q.id] = [q.id]
            sent.append(q)
    kwargs: dict[str, Any] = {
        "MetricDataQueries": [q.to_api(stats[q.id]) for q in sent],
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    calls = 0
    while True:
        resp = cloudwatch.get_metric_data(**kwargs)
        calls += 1
        for r in resp.get("MetricDataResults", []):
            pts = list(zip(r.get("Timestamps", []), r.get("Values", []), strict=False))
            msgs = [
                f"{m.get('Code', '')}: {m.get('Value', '')}".strip(": ")
                for m in r.get("Messages", []) or []
            ]
            for qid in alias.get(r["Id"], [r["Id"]]):
                points.setdefault(qid, []).extend(pts)
                status[qid] = r.get("StatusCode", "Complete")
                messages.setdefault(qid, []).extend(msgs)
        for m in resp.get("Messages", []) or []:  # call-level messages apply to the whole batch
            for q in batch:
                messages[q.id].append(f"{m.get('Code', '')}: {m.get('Value', '')}".strip(": "))
        token = resp.get("NextToken")
        if not token:
            return points, status, messages, calls
        kwargs["NextToken"] = token


class _ProbeRejected(Exception):
    """Raised inside the probe's retry hook: an error answer to the probe is final, not retried."""


def _probe_rejects(cloudwatch, query: MetricQuery, start: _dt.datetime, end: _dt.datetime) -> bool:
    """Ask for ONE datapoint of one percentile over the whole window: does the endpoint take them?

    Cheaper than failing the whole batch, which an endpoint may compute several times (the
    client retries server errors with backoff) before it answers with an error. For the probe
    only, a hook on the client's own ``needs-retry`` event makes an error answer final, so a
    rejecting endpoint costs one round trip. Any error answer counts as a rejection; if the
    cause was something else (access denied), the real call raises it.
    """
    import botocore.exceptions

    seconds = max(int((end - start).total_seconds()), 60)
    period = -(-seconds // 60) * 60  # whole window in one period (a multiple of 60 s)
    q = replace(query, period=period).to_api()

    def no_retry_on_error(response=None, **_):
        if response is not None and response[0].status_code >= 400:
            raise _ProbeRejected(response[0].status_code)

    event = "needs-retry.cloudwatch.GetMetricData"
    uid = f"opslib-percentile-probe-{id(q)}"
    cloudwatch.meta.events.register_first(event, no_retry_on_error, unique_id=uid)
    try:
        cloudwatch.get_metric_data(
            MetricDataQueries=[q], StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        )
    except (_ProbeRejected, botocore.exceptions.ClientError):
        return True
    finally:
        cloudwatch.meta.events.unregister(event, unique_id=uid)
    return False


def get_metrics(
    queries: Iterable[MetricQuery],
    *,
    cloudwatch,
    start: _dt.datetime,
    end: _dt.datetime,
) -> MetricSeries:
    """Fetch every query between ``start`` and ``end`` (UTC) in batches of up to 500 per call.

    Raises whatever the API raises when a batch fails for a reason other than a rejected
    percentile (unreachable endpoint, access denied): the caller turns it into a finding.
    """
    import botocore.exceptions
    import pandas as pd

    qs = tuple(queries)
    ids = [q.id for q in qs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise BadInputError(f"Duplicate MetricQuery ids {dupes}: give every query its own id.")
    start, end = _utc(start), _utc(end)
    # align to the period so datapoints land on whole minutes, as CloudWatch itself reports them
    step = min((q.period for q in qs), default=60)
    if step >= 60:
        start = start - _dt.timedelta(
            seconds=int(start.timestamp()) % step, microseconds=start.microsecond
        )
    if end <= start:
        raise BadInputError(f"end ({end.isoformat()}) must be after start ({start.isoformat()}).")

    endpoint = _endpoint(cloudwatch)
    stats = {q.id: q.stat for q in qs}
    messages: dict[str, list[str]] = {q.id: [] for q in qs}
    fallbacks: list[str] = []

    def fall_back(batch: Sequence[MetricQuery], why: str) -> None:
        for q in batch:
            if is_percentile(stats[q.id]):
                stats[q.id] = FALLBACK_STAT
                fallbacks.append(q.id)
                messages[q.id].append(
                    f"{q.stat} {why}; used {FALLBACK_STAT} instead (an upper bound)"
                )

    points: dict[str, list[tuple[Any, float]]] = {q.id: [] for q in qs}
    status: dict[str, str] = {}
    calls = 0
    for batch in _batches(qs, MAX_QUERIES_PER_CALL):
        pct = [q for q in batch if is_percentile(stats[q.id])]
        if pct and endpoint not in _PERCENTILE_REJECTED | _PERCENTILE_OK:
            calls += 1
            if _probe_rejects(cloudwatch, pct[0], start, end):
                _PERCENTILE_REJECTED.add(endpoint)
            else:
                _PERCENTILE_OK.add(endpoint)
        if endpoint in _PERCENTILE_REJECTED:
            fall_back(
                batch, f"is not supported by {endpoint or 'this endpoint'} (a probe was rejected)"
            )
        try:
            p, s, m, n = _fetch(cloudwatch, batch, stats, start, end)
        except botocore.exceptions.ClientError as exc:
            if not any(is_percentile(stats[q.id]) for q in batch):
                raise
            calls += 1
            code = exc.response.get("Error", {}).get("Code", "") or str(
                exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            )
            fall_back(batch, f"was rejected by the endpoint (error {code})")
            p, s, m, n = _fetch(
                cloudwatch, batch, stats, start, end
            )  # raises the real cause, if any
            _PERCENTILE_REJECTED.add(endpoint)
        calls += n
        # an endpoint may also refuse a percentile per query instead of failing the call
        refused = [
            q
            for q in batch
            if is_percentile(stats[q.id])
            and s.get(q.id) in ("InternalError", "Forbidden")
            and not p.get(q.id)
        ]
        if refused:
            fall_back(refused, f"returned status {s[refused[0].id]}")
            p2, s2, m2, n2 = _fetch(cloudwatch, refused, stats, start, end)
            p.update(p2)
            s.update(s2)
            for k, v in m2.items():
                m[k] = m.get(k, []) + v
            calls += n2
        for k, v in p.items():
            points.setdefault(k, []).extend(v)
        status.update(s)
        for k, v in m.items():
            messages.setdefault(k, []).extend(v)

    columns = {}
    for q in qs:
        pts = points.get(q.id, [])
        if pts:
            ts = pd.to_datetime([t for t, _ in pts], utc=True)
            col = pd.Series([float(v) for _, v in pts], index=ts, dtype="float64")
            col = col[~col.index.duplicated(keep="last")]
        else:
            col = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype="float64")
        columns[q.id] = col
    frame = pd.DataFrame(columns, columns=[q.id for q in qs]).sort_index()
    if not isinstance(frame.index, pd.DatetimeIndex):
        frame.index = pd.DatetimeIndex([], tz="UTC")
    frame.index.name = "timestamp"
    for q in qs:
        status.setdefault(q.id, "Complete")
        if not columns[q.id].size:
            messages[q.id].append("no datapoints in the window")
    return MetricSeries(
        frame=frame,
        queries=qs,
        status=dict(status),
        messages={k: tuple(v) for k, v in messages.items()},
        stats=dict(stats),
        fallbacks=tuple(fallbacks),
        calls=calls,
        start=start,
        end=end,
    )


def with_stat(query: MetricQuery, stat: str, *, id: str | None = None) -> MetricQuery:
    """A copy of ``query`` with another statistic (and id): p50/p90/p99 of one metric."""
    return replace(query, stat=stat, id=id or query.id)
