"""The evidence for (and after) a change: utilisation, throttles and evictions per target kind,
and the watch after an apply (ALB p99 and 5xx, throttles) for ``watch_minutes``.

Reads only. A metric read that is denied, throttled or unsupported is a finding and the run
goes on (the numbers are context for the decision, not needed to change capacity).
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from opslib.aws import capacity_metrics as cm
from opslib.aws import elbv2
from opslib.aws.dynamodb_capacity import THROTTLE_METRICS
from opslib.clients import optional_read_finding
from opslib.core.findings import Finding, Severity
from opslib.runbooks.scale.kinds import Connections
from opslib.runbooks.scale.model import Current, Inputs, TargetKind

__all__ = ["Evidence", "WINDOW_MINUTES", "evidence", "throttle_total", "watch"]

WINDOW_MINUTES = 60
SOURCE = "scale"


def _cpu(label_ns: str, dims: dict[str, str]) -> cm.MetricSpec:
    return cm.MetricSpec(
        "CPU %",
        label_ns,
        "CPUUtilization",
        dims,
        "Average",
        "max",
        cm.CPU_WARN_PCT,
        cm.CPU_CRITICAL_PCT,
    )


def specs(cur: Current, load_balancer_dim: str = "") -> list[cm.MetricSpec]:
    """The CloudWatch series that say whether ``cur`` needs more (or less) capacity."""
    out: list[cm.MetricSpec] = []
    if cur.kind in (TargetKind.ECS_SERVICE, TargetKind.ECS_AUTOSCALING):
        cluster, _, service = cur.target.partition("/")
        dims = {"ClusterName": cluster, "ServiceName": service}
        out += [
            _cpu("AWS/ECS", dims),
            cm.MetricSpec(
                "memory %",
                "AWS/ECS",
                "MemoryUtilization",
                dims,
                "Average",
                "max",
                cm.MEMORY_WARN_PCT,
                cm.MEMORY_CRITICAL_PCT,
            ),
        ]
    elif cur.kind is TargetKind.RDS_INSTANCE:
        dims = {"DBInstanceIdentifier": cur.target}
        out += [
            _cpu("AWS/RDS", dims),
            cm.MetricSpec("connections", "AWS/RDS", "DatabaseConnections", dims, "Maximum"),
        ]
    elif cur.kind is TargetKind.ELASTICACHE_CLUSTER:
        members = getattr(cur.state, "member_clusters", ()) or (cur.target,)
        dims = {"CacheClusterId": members[0]}
        out += [
            _cpu("AWS/ElastiCache", dims),
            cm.MetricSpec(
                "memory %",
                "AWS/ElastiCache",
                "DatabaseMemoryUsagePercentage",
                dims,
                "Maximum",
                "max",
                cm.MEMORY_WARN_PCT,
                cm.MEMORY_CRITICAL_PCT,
            ),
            cm.MetricSpec(
                "Evictions", "AWS/ElastiCache", "Evictions", dims, "Sum", "sum", 1.0, 1000.0
            ),
        ]
    elif cur.kind is TargetKind.DYNAMODB_TABLE:
        dims = {"TableName": cur.target}
        out += [
            cm.MetricSpec(m, "AWS/DynamoDB", m, dims, "Sum", "sum", 1.0, 100.0)
            for m in THROTTLE_METRICS
        ]
        out += [
            cm.MetricSpec(
                "consumed RCU/min (peak)", "AWS/DynamoDB", "ConsumedReadCapacityUnits", dims, "Sum"
            ),
            cm.MetricSpec(
                "consumed WCU/min (peak)", "AWS/DynamoDB", "ConsumedWriteCapacityUnits", dims, "Sum"
            ),
        ]
    if load_balancer_dim:
        dims = {"LoadBalancer": load_balancer_dim}
        out += [
            cm.MetricSpec(
                "ALB p99 s",
                "AWS/ApplicationELB",
                "TargetResponseTime",
                dims,
                "p99",
                "max",
                1.0,
                2.0,
            ),
            cm.MetricSpec(
                "ALB target 5xx",
                "AWS/ApplicationELB",
                "HTTPCode_Target_5XX_Count",
                dims,
                "Sum",
                "sum",
                1.0,
                50.0,
            ),
        ]
    return out


@dataclass(frozen=True)
class Evidence:
    """Readings over one window and the findings they make (thresholds crossed, reads failed)."""

    readings: cm.Readings | None
    findings: tuple[Finding, ...]
    hpa_note: str = ""  # Kubernetes: utilisation from the HPA status, not CloudWatch

    def to_frame(self):
        import pandas as pd

        if self.readings is None:
            return pd.DataFrame(columns=["metric", "value", "level", "warn at", "critical at"])
        return self.readings.to_frame()


def _lb_dimension(conns: Connections, name: str) -> tuple[str, list[Finding]]:
    if not name:
        return "", []
    if name.startswith("app/"):
        return name, []
    try:
        lbs = elbv2.load_balancers(elbv2=conns.elbv2, names=[name])
    except ClientError as exc:
        return "", [
            optional_read_finding(exc, f"elbv2:DescribeLoadBalancers {name}", source=SOURCE)
        ]
    if not lbs:
        return "", [
            Finding(Severity.WARNING, f"load balancer {name} not found: no ALB watch", SOURCE)
        ]
    return elbv2.lb_dimension(lbs[0]["LoadBalancerArn"]), []


def evidence(inp: Inputs, conns: Connections, cur: Current, *, start=None, end=None) -> Evidence:
    """Utilisation and throttles of ``cur`` over the last hour (or ``start``..``end``)."""
    end = end or _dt.datetime.now(_dt.UTC)
    start = start or end - _dt.timedelta(minutes=WINDOW_MINUTES)
    hpa_note = ""
    if cur.kind in (TargetKind.K8S_DEPLOYMENT, TargetKind.K8S_HPA):
        cpu = cur.facts.get("hpa cpu %", cur.facts.get("cpu %"))
        hpa_note = f"CPU from the HPA status: {cpu}%" if cpu is not None else "no HPA CPU reading"
    if conns.cloudwatch is None:
        return Evidence(None, (), hpa_note)
    lb_dim, found = _lb_dimension(conns, inp.load_balancer) if conns.elbv2 is not None else ("", [])
    todo = specs(cur, lb_dim)
    if not todo:
        return Evidence(None, tuple(found), hpa_note)
    try:
        readings = cm.read(todo, cloudwatch=conns.cloudwatch, start=start, end=end)
    except ClientError as exc:
        return Evidence(
            None,
            (*found, optional_read_finding(exc, "cloudwatch:GetMetricData", source=SOURCE)),
            hpa_note,
        )
    for r in readings.readings:
        if r.level in ("warning", "critical"):
            found.append(
                Finding(
                    Severity.CRITICAL if r.level == "critical" else Severity.WARNING,
                    f"{cur.target}: {r.label} {r.value:g} ({r.level}: warn at {r.warn:g}, critical at {r.critical:g})",
                    SOURCE,
                    f"{start:%H:%M}-{end:%H:%M} UTC",
                )
            )
    return Evidence(readings, tuple(found), hpa_note)


def throttle_total(ev: Evidence) -> int | None:
    """Throttled requests over the window: ``ThrottledRequests``, else read + write throttle
    events (None without a reading). Not their sum: one throttled request is also an event."""
    if ev.readings is None or not any(r.label in THROTTLE_METRICS for r in ev.readings.readings):
        return None
    requests = ev.readings.value("ThrottledRequests")
    if requests is not None:
        return int(requests)
    events = [ev.readings.value(m) for m in THROTTLE_METRICS[1:]]
    return int(sum(v or 0 for v in events))


def watch(
    inp: Inputs,
    conns: Connections,
    cur: Current,
    *,
    since: _dt.datetime,
    poll_s: float = 60.0,
    duration_s: float | None = None,
) -> Evidence:
    """Watch for ``watch_minutes`` after the change (bounded), sampling every ``poll_s``.

    Each sample reads the window since the change and prints the readings (ALB p99 and 5xx,
    throttles, CPU) so the operator sees them move; the last one is returned for the record.
    The watch never stops the run or undoes the change: a reading past its critical threshold
    is a finding, and the decision to scale again or revert stays with the operator.
    """
    bound = inp.watch_minutes * 60.0 if duration_s is None else duration_s
    deadline = time.monotonic() + bound
    last = evidence(
        inp, conns, cur, start=since, end=_dt.datetime.now(_dt.UTC) + _dt.timedelta(minutes=1)
    )
    while time.monotonic() < deadline:
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        last = evidence(
            inp, conns, cur, start=since, end=_dt.datetime.now(_dt.UTC) + _dt.timedelta(minutes=1)
        )
        left = max(0, int(deadline - time.monotonic()))
        shown = ", ".join(
            f"{r.label} {r.value:g}"
            for r in (last.readings.readings if last.readings else ())
            if r.value is not None
        )
        print(
            f"watching {cur.target} ({left} s left): {shown or 'no datapoints since the change yet'}"
        )
    return last
