"""The triage's validated inputs and its connections (each source optional)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from opslib import clients
from opslib.clients import refuse_password_in_conninfo
from opslib.core.errors import BadInputError, OpslibError
from opslib.core.findings import Finding, error_finding


@dataclass(frozen=True)
class TriageInputs:
    """The validated parameters of one triage, with the window fixed at validation time."""

    window_minutes: int = 60
    threshold_ms: float = 500.0
    load_balancer: str = ""
    ecs_cluster: str = ""
    ecs_service: str = ""
    db_cluster: str = ""
    cache_cluster: str = ""
    pg_dsn: str = ""
    k8s_namespace: str = ""
    k8s_selector: str = ""
    long_query_seconds: int = 300
    terminate_blocking: bool = False
    max_terminations: int = 1
    scale_out_by: int = 0
    region: str = ""
    alarm_minutes: int = 5
    min_requests: int = 100
    period: int = 60
    end: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))

    @property
    def start(self) -> _dt.datetime:
        return self.end - _dt.timedelta(minutes=self.window_minutes)

    @property
    def wants_aws(self) -> bool:
        return bool(self.load_balancer or self.db_cluster or self.cache_cluster or self.ecs_service)


def inputs(
    *,
    window_minutes: int = 60,
    threshold_ms: float = 500,
    load_balancer: str = "",
    ecs_cluster: str = "",
    ecs_service: str = "",
    db_cluster: str = "",
    cache_cluster: str = "",
    pg_dsn: str = "",
    k8s_namespace: str = "",
    k8s_selector: str = "",
    long_query_seconds: int = 300,
    terminate_blocking: bool = False,
    max_terminations: int = 1,
    scale_out_by: int = 0,
    region: str = "",
    alarm_minutes: int = 5,
    min_requests: int = 100,
) -> TriageInputs:
    """Validate the runbook parameters before anything is read or changed (BadInputError)."""

    refuse_password_in_conninfo(pg_dsn, parameter="pg_dsn")
    problems = []
    if not 5 <= int(window_minutes) <= 24 * 60:
        problems.append(f"window_minutes={window_minutes}: use 5..1440 (the alarm needs 5 minutes)")
    if float(threshold_ms) <= 0:
        problems.append(
            f"threshold_ms={threshold_ms}: use a positive latency in milliseconds, e.g. 500"
        )
    if int(long_query_seconds) < 0:
        problems.append(f"long_query_seconds={long_query_seconds}: use 0 or more seconds")
    if int(max_terminations) < 0:
        problems.append(
            f"max_terminations={max_terminations}: use 0 or more (0 terminates nothing)"
        )
    if int(scale_out_by) < 0:
        problems.append(
            f"scale_out_by={scale_out_by}: use 0 (no scaling) or a positive number of tasks/replicas"
        )
    if not 1 <= int(alarm_minutes) <= int(window_minutes):
        problems.append(
            f"alarm_minutes={alarm_minutes}: use 1..window_minutes (the alarm: 5 consecutive minutes)"
        )
    if int(min_requests) < 0:
        problems.append(f"min_requests={min_requests}: use 0 or more requests per window")
    if bool(ecs_cluster) != bool(ecs_service):
        problems.append(
            "ecs_cluster and ecs_service go together: give both, or neither to skip ECS"
        )
    if k8s_selector and not k8s_namespace:
        problems.append("k8s_selector needs k8s_namespace (e.g. k8s_namespace='fintech-banking')")
    if load_balancer and not load_balancer.startswith(("app/", "net/")):
        problems.append(
            f"load_balancer={load_balancer!r}: give the ALB dimension 'app/<name>/<id>'"
        )
    if problems:
        raise BadInputError(
            "Bad parameters, nothing was read or changed: " + "; ".join(problems) + "."
        )
    return TriageInputs(
        window_minutes=int(window_minutes),
        threshold_ms=float(threshold_ms),
        load_balancer=load_balancer.strip(),
        ecs_cluster=ecs_cluster.strip(),
        ecs_service=ecs_service.strip(),
        db_cluster=db_cluster.strip(),
        cache_cluster=cache_cluster.strip(),
        pg_dsn=pg_dsn.strip(),
        k8s_namespace=k8s_namespace.strip(),
        k8s_selector=k8s_selector.strip(),
        long_query_seconds=int(long_query_seconds),
        terminate_blocking=bool(terminate_blocking),
        max_terminations=int(max_terminations),
        scale_out_by=int(scale_out_by),
        region=region.strip(),
        alarm_minutes=int(alarm_minutes),
        min_requests=int(min_requests),
    )


@dataclass(frozen=True)
class Connections:
    """Clients for the sources that were given; a source that could not connect is None plus a finding."""

    cloudwatch: Any = None
    ecs: Any = None
    rds: Any = None  # for max_connections from the parameter group when no pg_dsn is given
    k8s: Any = None
    pg: Any = None
    findings: tuple[Finding, ...] = ()

    def close(self) -> None:
        if self.pg is not None and not self.pg.closed:
            self.pg.close()


def connect(inp: TriageInputs, *, runbook: str = "latency-triage") -> Connections:
    """Build the clients through :mod:`opslib.clients`; failures become error findings."""

    out: dict[str, Any] = {}
    found: list[Finding] = []
    if inp.wants_aws:
        try:
            session = clients.aws_session(region=inp.region)
            out["cloudwatch"] = clients.aws_client("cloudwatch", session=session, region=inp.region)
            if inp.ecs_service:
                out["ecs"] = clients.aws_client("ecs", session=session, region=inp.region)
            if inp.db_cluster and not inp.pg_dsn:
                out["rds"] = clients.aws_client("rds", session=session, region=inp.region)
        except OpslibError as exc:
            found.append(error_finding("aws", exc))
    if inp.k8s_namespace:
        try:
            out["k8s"] = clients.k8s_api()
        except OpslibError as exc:
            found.append(error_finding("k8s", exc))
    if inp.pg_dsn:
        try:
            out["pg"] = clients.pg_connect(inp.pg_dsn, runbook=runbook, connect_timeout=5)
        except OpslibError as exc:
            found.append(
                error_finding(
                    "postgres",
                    exc,
                    next_action=(
                        "Check pg_dsn (host, port, dbname), that the server is up, and that the password "
                        "is in PGPASSWORD or ~/.pgpass."
                    ),
                )
            )
    return Connections(findings=tuple(found), **out)
