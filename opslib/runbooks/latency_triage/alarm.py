"""Alarm semantics: a breach is sustained, as CloudWatch evaluates an alarm, or it is a spike.

The alarm is "p99 > 500 ms for 5 minutes": CloudWatch raises it only when M of the last N
datapoints breach (here M = N = ``alarm_minutes`` / period, consecutive periods). One bad minute
is a spike: worth showing, not the alarm. These helpers find the runs of breaching periods on
a regular time grid (a period with no datapoint breaks a run, like ``treatMissingData =
notBreaching``), split them into alarms and spikes, and compute an error rate over a sliding
window of the same length with a minimum request count, so a 1-request minute with a 500 is
not a 100 % error rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Run:
    """One run of consecutive breaching periods: first and last timestamp, and its length."""

    start: Any  # pandas.Timestamp
    end: Any
    periods: int
    minutes: int


def grid(series, period_s: int):
    """The series on a regular grid of ``period_s`` from its first to its last timestamp (gaps NaN)."""
    import pandas as pd

    s = series.dropna()
    if not len(s):
        return s
    idx = pd.date_range(s.index.min(), s.index.max(), freq=pd.Timedelta(seconds=period_s))
    return s.reindex(idx)


def runs(mask, period_s: int) -> list[Run]:
    """Runs of consecutive True values of a boolean series on a regular grid (NaN is False)."""
    out: list[Run] = []
    start = prev = None
    n = 0
    for ts, hot in mask.fillna(False).astype(bool).items():
        if hot:
            if start is None:
                start, n = ts, 0
            n += 1
        elif start is not None:
            out.append(Run(start, prev, n, n * period_s // 60))
            start = None
        prev = ts
    if start is not None:
        out.append(Run(start, prev, n, n * period_s // 60))
    return out


def datapoints_to_alarm(alarm_minutes: int, period_s: int) -> int:
    """How many consecutive periods make ``alarm_minutes`` (at least one)."""
    return max(1, -(-alarm_minutes * 60 // period_s))


def split_runs(
    series, threshold: float, *, alarm_minutes: int, period_s: int
) -> tuple[list[Run], list[Run]]:
    """(sustained runs, spikes): runs above ``threshold`` at least ``alarm_minutes`` long, and the rest."""
    g = grid(series, period_s)
    if not len(g):
        return [], []
    need = datapoints_to_alarm(alarm_minutes, period_s)
    all_runs = runs(g > threshold, period_s)
    return [r for r in all_runs if r.periods >= need], [r for r in all_runs if r.periods < need]


def sustained_min(series, run: Run) -> float:
    """The lowest value over a run: what the whole run stayed above."""
    return float(series.loc[run.start : run.end].min())


@dataclass(frozen=True)
class ErrorRate:
    """The worst error rate over any window of ``alarm_minutes`` with at least ``min_requests``."""

    rate_pct: float | None  # None: no window had enough requests
    window_end: Any  # pandas.Timestamp of the worst window's last period
    errors: float
    requests: float
    windows: int  # windows that had enough requests
    peak_minute_pct: float  # the single worst period (for the evidence, not the finding)


def sustained_error_rate(
    errors, requests, *, alarm_minutes: int, period_s: int, min_requests: int
) -> ErrorRate:
    """Sliding-window error rate (sum of errors / sum of requests) over ``alarm_minutes``."""
    req = grid(requests, period_s).fillna(0)
    if not len(req):
        return ErrorRate(None, None, 0.0, 0.0, 0, 0.0)
    err = errors.reindex(req.index).fillna(0)
    need = datapoints_to_alarm(alarm_minutes, period_s)
    win_req = req.rolling(need, min_periods=need).sum()
    win_err = err.rolling(need, min_periods=need).sum()
    ok = win_req >= max(1, min_requests)
    per_min = (err / req.where(req > 0) * 100).dropna()
    peak_minute = float(per_min.max()) if len(per_min) else 0.0
    if not ok.any():
        return ErrorRate(None, None, float(err.sum()), float(req.sum()), 0, peak_minute)
    rate = (win_err[ok] / win_req[ok] * 100).round(2)
    worst = rate.idxmax()
    return ErrorRate(
        float(rate.max()),
        worst,
        float(win_err[worst]),
        float(win_req[worst]),
        int(ok.sum()),
        round(peak_minute, 2),
    )
