"""CloudWatch alarms in ALARM: name, reason, since when (the morning check's second item).

One paginated DescribeAlarms (100 alarms a page, the API's maximum) reads every metric and
composite alarm once: the count of alarms checked and those in ALARM come from the same pages,
so a region with 100 alarms costs one or two calls, not one per alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

from opslib.core.findings import Finding, Severity

SOURCE = "alarms"


@dataclass(frozen=True)
class Alarm:
    """An alarm currently in ALARM."""

    name: str
    kind: str  # metric or composite
    reason: str
    since: str  # StateUpdatedTimestamp, ISO UTC
    metric: str  # namespace/metric for a metric alarm


PAGE_SIZE = 100


def census(*, cloudwatch, prefix: str = "") -> tuple[int, list[Alarm]]:
    """(how many alarms exist, those in ALARM oldest first), from one paginated read."""
    kw: dict = {
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "PaginationConfig": {"PageSize": PAGE_SIZE},
    }
    if prefix:
        kw["AlarmNamePrefix"] = prefix
    total = 0
    out = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(**kw):
        metric = page.get("MetricAlarms", [])
        composite = page.get("CompositeAlarms", [])
        total += len(metric) + len(composite)
        for a in metric:
            if a.get("StateValue") != "ALARM":
                continue
            out.append(
                Alarm(
                    a["AlarmName"],
                    "metric",
                    a.get("StateReason", ""),
                    _iso(a.get("StateUpdatedTimestamp")),
                    f"{a.get('Namespace', '')}/{a.get('MetricName', '')}",
                )
            )
        for a in composite:
            if a.get("StateValue") != "ALARM":
                continue
            out.append(
                Alarm(
                    a["AlarmName"],
                    "composite",
                    a.get("StateReason", ""),
                    _iso(a.get("StateUpdatedTimestamp")),
                    "",
                )
            )
    return total, sorted(out, key=lambda a: a.since)


def in_alarm(*, cloudwatch, prefix: str = "") -> list[Alarm]:
    """Every alarm in ALARM (optionally by name prefix), oldest first."""
    return census(cloudwatch=cloudwatch, prefix=prefix)[1]


def _iso(ts) -> str:
    return ts.isoformat(timespec="seconds") if ts is not None else ""


def findings(alarms: list[Alarm]) -> list[Finding]:
    """One red item per alarm in ALARM: it is already an alert somebody defined."""
    return [
        Finding(
            Severity.CRITICAL,
            f"CloudWatch alarm {a.name} in ALARM",
            SOURCE,
            f"since {a.since}: {a.reason[:200]}",
            "Open the alarm's runbook (latency-triage for latency/5xx alarms, db-maintenance for "
            "database ones); acknowledge it in the incident channel.",
            {"alarm": a.name},
        )
        for a in alarms
    ]
