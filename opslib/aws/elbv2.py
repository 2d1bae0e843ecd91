"""ALB target health per target group, and the 5xx rate of each load balancer.

The morning check: every target group of every ALB should have all its targets healthy, and
the 5xx share of the requests should stay under the alert threshold (5 %). Load balancers and
target groups are listed with paginators; DescribeTargetHealth is one call per target group;
the 5xx rate of every ALB comes from one GetMetricData call.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from opslib.aws.cloudwatch import MetricQuery, get_metrics
from opslib.clients import AwsErrorKind, aws_error_kind
from opslib.core.findings import Finding, Severity

SOURCE = "alb"
#: the alert table: ALB 5xx above 5 % of requests is an alert; above 1 % worth a look
ERROR_RATE_RED_PCT = 5.0
ERROR_RATE_AMBER_PCT = 1.0


@dataclass(frozen=True)
class TargetState:
    """One registered target and what the load balancer says of it."""

    target: str
    port: int
    state: str  # healthy, unhealthy, unused, draining, unavailable, initial
    reason: str
    description: str


@dataclass(frozen=True)
class TargetGroupHealth:
    """A target group of a load balancer with the state of each target."""

    load_balancer: str  # the CloudWatch dimension, app/<name>/<id>
    name: str
    targets: tuple[TargetState, ...]

    @property
    def unhealthy(self) -> tuple[TargetState, ...]:
        return tuple(t for t in self.targets if t.state not in ("healthy", "initial"))


def lb_dimension(arn: str) -> str:
    """arn:...:loadbalancer/app/<name>/<id> -> app/<name>/<id> (the CloudWatch dimension)."""
    return arn.split(":loadbalancer/", 1)[-1]


def load_balancers(*, elbv2, names: list[str] | None = None) -> list[dict]:
    """Application load balancers (all, or those named), through the paginator."""
    kw = {"Names": names} if names else {}
    out = []
    for page in elbv2.get_paginator("describe_load_balancers").paginate(**kw):
        out += [
            lb for lb in page["LoadBalancers"] if lb.get("Type", "application") == "application"
        ]
    return out


def _pages_or_none(pages):
    """Pages of a paginator; a load balancer without target groups is 'none' (some endpoints
    answer it with TargetGroupNotFound instead of an empty list)."""
    from botocore.exceptions import ClientError

    try:
        yield from pages
    except ClientError as exc:
        if aws_error_kind(exc) is not AwsErrorKind.NOT_FOUND:
            raise


def target_health(*, elbv2, lbs: list[dict], mapper: Callable = map) -> list[TargetGroupHealth]:
    """Every target group of ``lbs`` with its targets' health.

    DescribeTargetHealth takes one target group per call; ``mapper`` (``map`` or a bounded
    thread pool's ``map``) lets those calls overlap.
    """
    groups = []
    for lb in lbs:
        dim = lb_dimension(lb["LoadBalancerArn"])
        pages = elbv2.get_paginator("describe_target_groups").paginate(
            LoadBalancerArn=lb["LoadBalancerArn"]
        )
        for page in _pages_or_none(pages):
            groups += [(dim, tg) for tg in page["TargetGroups"]]

    def one(item: tuple[str, dict]) -> TargetGroupHealth:
        dim, tg = item
        desc = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
        targets = tuple(
            TargetState(
                d["Target"]["Id"],
                int(d["Target"].get("Port", 0) or 0),
                d["TargetHealth"].get("State", ""),
                d["TargetHealth"].get("Reason", ""),
                d["TargetHealth"].get("Description", ""),
            )
            for d in desc["TargetHealthDescriptions"]
        )
        return TargetGroupHealth(dim, tg["TargetGroupName"], targets)

    return list(mapper(one, groups))


def error_rates(
    *, cloudwatch, dims: list[str], minutes: int, end: _dt.datetime | None = None
) -> tuple[dict[str, float | None], int]:
    """5xx (target + ELB) as a % of requests over the window, per ALB dimension; and the calls."""
    end = end or _dt.datetime.now(_dt.UTC)
    qs = []
    for i, d in enumerate(dims):
        lb = {"LoadBalancer": d}
        period = max(60, minutes * 60)
        qs += [
            MetricQuery(f"req{i}", "AWS/ApplicationELB", "RequestCount", lb, "Sum", period),
            MetricQuery(
                f"t5xx{i}", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, "Sum", period
            ),
            MetricQuery(
                f"e5xx{i}", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb, "Sum", period
            ),
        ]
    if not qs:
        return {}, 0
    series = get_metrics(
        qs, cloudwatch=cloudwatch, start=end - _dt.timedelta(minutes=minutes), end=end
    )
    out: dict[str, float | None] = {}
    for i, d in enumerate(dims):
        req = series.frame[f"req{i}"].sum() if series.has_data(f"req{i}") else 0.0
        errs = sum(series.frame[k].sum() for k in (f"t5xx{i}", f"e5xx{i}") if series.has_data(k))
        out[d] = round(100.0 * errs / req, 2) if req else None
    return out, series.calls


def findings(groups: list[TargetGroupHealth], rates: dict[str, float | None]) -> list[Finding]:
    """Unhealthy targets (red when a group has none healthy) and the 5xx rate per ALB."""
    out: list[Finding] = []
    for g in groups:
        bad = g.unhealthy
        if not bad:
            continue
        sev = Severity.CRITICAL if len(bad) == len(g.targets) else Severity.WARNING
        out.append(
            Finding(
                sev,
                f"ALB target group {g.name}: "
                + ("no target healthy" if sev is Severity.CRITICAL else "target(s) not healthy"),
                SOURCE,
                f"{len(bad)} of {len(g.targets)} not healthy: "
                + "; ".join(
                    f"{t.target}:{t.port} {t.state} ({t.reason or '-'}: {t.description})"
                    for t in bad[:5]
                ),
                "Check the target's health-check path and its logs; replace or restart it (ECS: "
                "look at the service's stopped tasks).",
                {"target_group": g.name},
            )
        )
    for lb, pct in rates.items():
        if pct is None or pct < ERROR_RATE_AMBER_PCT:
            continue
        sev = Severity.CRITICAL if pct >= ERROR_RATE_RED_PCT else Severity.WARNING
        out.append(
            Finding(
                sev,
                f"ALB {lb}: 5xx over {ERROR_RATE_RED_PCT if sev is Severity.CRITICAL else ERROR_RATE_AMBER_PCT:g}% of requests",
                SOURCE,
                f"{pct:.1f}% in the window; threshold {ERROR_RATE_RED_PCT:g}% (alert), {ERROR_RATE_AMBER_PCT:g}% (watch)",
                "Run the latency-triage runbook for this load balancer; check recent deploys.",
            )
        )
    return out
