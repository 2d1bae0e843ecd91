"""ElastiCache (Redis) hit rate and evictions for the morning check.

Clusters from the DescribeCacheClusters paginator; CacheHits, CacheMisses and Evictions of
all of them from ONE GetMetricData call. A hit rate under 70 % is the alert table's threshold.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from opslib.aws.cloudwatch import MetricQuery, get_metrics
from opslib.core.findings import Finding, Severity

SOURCE = "elasticache"
HIT_RATE_AMBER_PCT = 70.0
HIT_RATE_RED_PCT = 50.0


@dataclass(frozen=True)
class CacheHealth:
    cluster: str
    engine: str
    status: str
    hit_rate_pct: float | None
    evictions: float | None


def caches(
    *, elasticache, cloudwatch, names: list[str] | None = None, minutes: int = 60
) -> tuple[list[CacheHealth], int]:
    raw = [
        c
        for page in elasticache.get_paginator("describe_cache_clusters").paginate()
        for c in page["CacheClusters"]
    ]
    if names:
        raw = [c for c in raw if c["CacheClusterId"] in names]
    qs = []
    for n, c in enumerate(raw):
        dim = {"CacheClusterId": c["CacheClusterId"]}
        period = max(60, minutes * 60)
        qs += [
            MetricQuery(f"hit{n}", "AWS/ElastiCache", "CacheHits", dim, "Sum", period),
            MetricQuery(f"miss{n}", "AWS/ElastiCache", "CacheMisses", dim, "Sum", period),
            MetricQuery(f"ev{n}", "AWS/ElastiCache", "Evictions", dim, "Sum", period),
        ]
    series, calls = None, 0
    if qs:
        end = _dt.datetime.now(_dt.UTC)
        series = get_metrics(
            qs, cloudwatch=cloudwatch, start=end - _dt.timedelta(minutes=minutes), end=end
        )
        calls = series.calls

    def total(qid: str) -> float | None:
        return (
            float(series.frame[qid].sum()) if series is not None and series.has_data(qid) else None
        )

    out = []
    for n, c in enumerate(raw):
        hits, misses = total(f"hit{n}"), total(f"miss{n}")
        rate = (
            None
            if hits is None or misses is None or hits + misses == 0
            else round(100.0 * hits / (hits + misses), 1)
        )
        out.append(
            CacheHealth(
                c["CacheClusterId"],
                c.get("Engine", ""),
                c.get("CacheClusterStatus", ""),
                rate,
                total(f"ev{n}"),
            )
        )
    return out, calls


def findings(items: list[CacheHealth]) -> list[Finding]:
    out = []
    for c in items:
        if c.hit_rate_pct is not None and c.hit_rate_pct < HIT_RATE_AMBER_PCT:
            out.append(
                Finding(
                    Severity.CRITICAL if c.hit_rate_pct < HIT_RATE_RED_PCT else Severity.WARNING,
                    f"ElastiCache {c.cluster}: hit rate {c.hit_rate_pct:.0f}%",
                    SOURCE,
                    f"evictions {c.evictions or 0:.0f} in the window; threshold {HIT_RATE_AMBER_PCT:g}%",
                    "Check the keys' TTLs and the memory: evictions mean the cache is too small (scale up the node type).",
                )
            )
        if c.status and c.status != "available":
            out.append(
                Finding(Severity.WARNING, f"ElastiCache {c.cluster}: status {c.status}", SOURCE)
            )
    return out
