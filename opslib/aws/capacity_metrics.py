"""CloudWatch readings for capacity decisions: utilisation against the scaling thresholds.

The scaling procedures decide on CPU and memory utilisation (warn at 70 % CPU, critical from
80 %; memory warn at 75 %, critical at 90 %), on throttles, evictions, and during the watch on
the ALB's p99 response time and 5xx. One GetMetricData call (through
:func:`opslib.aws.cloudwatch.get_metrics`) reads every series a decision needs; each reading
carries its thresholds so the table and the chart say why a number is red.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opslib.aws.cloudwatch import MetricQuery, get_metrics

__all__ = [
    "CPU_CRITICAL_PCT",
    "CPU_WARN_PCT",
    "MEMORY_CRITICAL_PCT",
    "MEMORY_WARN_PCT",
    "MetricSpec",
    "Reading",
    "Readings",
    "read",
]

CPU_WARN_PCT = 70.0
CPU_CRITICAL_PCT = 80.0
MEMORY_WARN_PCT = 75.0
MEMORY_CRITICAL_PCT = 90.0


@dataclass(frozen=True)
class MetricSpec:
    """One series to read: what to call it, where it is, how to sum it, and its thresholds."""

    label: str  # "CPU %", "ThrottledRequests"
    namespace: str
    metric: str
    dimensions: Mapping[str, str] = field(default_factory=dict, hash=False)
    stat: str = "Average"
    reduce: str = "max"  # how the window becomes one number: max, sum, last
    warn: float | None = None
    critical: float | None = None


@dataclass(frozen=True)
class Reading:
    """One number over the window and how it compares with its thresholds."""

    label: str
    value: float | None
    level: str  # ok, warning, critical, no data
    warn: float | None
    critical: float | None


@dataclass(frozen=True)
class Readings:
    """Every reading of one window, with the series behind them (for the chart)."""

    start: _dt.datetime
    end: _dt.datetime
    readings: tuple[Reading, ...]
    frame: object  # pandas.DataFrame: UTC index, one column per label

    def value(self, label: str) -> float | None:
        return next((r.value for r in self.readings if r.label == label), None)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [(r.label, r.value, r.level, r.warn, r.critical) for r in self.readings],
            columns=["metric", "value", "level", "warn at", "critical at"],
        )


def _level(value: float | None, warn: float | None, critical: float | None) -> str:
    if value is None:
        return "no data"
    if critical is not None and value >= critical:
        return "critical"
    if warn is not None and value >= warn:
        return "warning"
    return "ok"


def read(
    specs: Sequence[MetricSpec],
    *,
    cloudwatch,
    start: _dt.datetime,
    end: _dt.datetime,
    period: int = 60,
) -> Readings:
    """Read every spec in one batch; raises what the API raises (the caller makes it a finding)."""
    import pandas as pd

    if not specs:
        return Readings(start, end, (), pd.DataFrame())
    qs = [
        MetricQuery(f"m{i}", s.namespace, s.metric, dict(s.dimensions), s.stat, period, s.label)
        for i, s in enumerate(specs)
    ]
    series = get_metrics(qs, cloudwatch=cloudwatch, start=start, end=end)
    frame = series.to_frame()
    out = []
    for i, s in enumerate(specs):
        qid = f"m{i}"
        value = None
        if series.has_data(qid):
            col = frame[qid].dropna()
            value = float({"sum": col.sum(), "last": col.iloc[-1]}.get(s.reduce, col.max()))
        out.append(Reading(s.label, value, _level(value, s.warn, s.critical), s.warn, s.critical))
    named = frame.rename(columns={f"m{i}": s.label for i, s in enumerate(specs)})
    return Readings(start, end, tuple(out), named)
