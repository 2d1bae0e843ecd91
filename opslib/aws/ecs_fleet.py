"""Every ECS service of the given clusters at once: running vs desired, deployments in progress,
and the stop reasons of recent tasks for the services that are short of tasks.

:mod:`opslib.aws.ecs` looks at one service closely (3 calls); the morning check looks at all of
them, so services are listed with paginators and described ten per call (the API's maximum),
and only a degraded service costs the extra calls for its stopped tasks (through
:func:`opslib.aws.ecs.service_health`, so the stop reasons read the same in both runbooks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opslib.aws import ecs as ecs_mod
from opslib.core.findings import Finding, Severity

SOURCE = "ecs"
DESCRIBE_BATCH = 10
LIST_PAGE = 100  # ListServices' maximum page (its default is 10)


@dataclass(frozen=True)
class ServiceState:
    """One service as DescribeServices reports it."""

    cluster: str
    service: str
    desired: int
    running: int
    pending: int
    deployments: int
    rollout: str  # the primary deployment's rolloutState (IN_PROGRESS, COMPLETED, FAILED, "")

    @property
    def short(self) -> bool:
        return self.running < self.desired


def clusters(*, ecs, names: list[str] | None = None) -> list[str]:
    if names:
        return names
    return [
        a
        for page in ecs.get_paginator("list_clusters").paginate(
            PaginationConfig={"PageSize": LIST_PAGE}
        )
        for a in page["clusterArns"]
    ]


def services(*, ecs, cluster: str, mapper: Callable = map) -> list[ServiceState]:
    """Every service of ``cluster``: listed by paginator (100 a page), described ten at a time.

    ``mapper`` (``map``, or a bounded thread pool's ``map``) runs the DescribeServices batches;
    with 50 services that is 5 calls that need not wait for each other.
    """
    arns = [
        a
        for page in ecs.get_paginator("list_services").paginate(
            cluster=cluster, PaginationConfig={"PageSize": LIST_PAGE}
        )
        for a in page["serviceArns"]
    ]
    name = cluster.rsplit("/", 1)[-1]
    batches = [arns[i : i + DESCRIBE_BATCH] for i in range(0, len(arns), DESCRIBE_BATCH)]
    described = mapper(
        lambda batch: ecs.describe_services(cluster=cluster, services=batch)["services"], batches
    )
    out = []
    for s in (s for page in described for s in page):
        if s.get("status") == "INACTIVE":
            continue
        deps = s.get("deployments", [])
        primary = next((d for d in deps if d.get("status") == "PRIMARY"), {})
        out.append(
            ServiceState(
                name,
                s["serviceName"],
                int(s.get("desiredCount", 0)),
                int(s.get("runningCount", 0)),
                int(s.get("pendingCount", 0)),
                len(deps),
                primary.get("rolloutState", ""),
            )
        )
    return out


def findings(
    *, ecs, states: list[ServiceState], max_detail: int = 5, mapper: Callable = map
) -> list[Finding]:
    """Short services (red when at most half run) with their stop reasons; deployments under way.

    Only the first ``max_detail`` short services cost the extra calls for their stopped tasks,
    so a fleet-wide outage does not turn the morning check into hundreds of calls.
    """
    out: list[Finding] = []
    detailed = mapper(
        lambda s: ecs_mod.findings(
            ecs_mod.service_health(ecs=ecs, cluster=s.cluster, service=s.service, max_stopped=10)
        ),
        [s for s in states if s.short][:max_detail],
    )
    for found in detailed:
        out += found
    for s in [s for s in states if s.short][max_detail:]:
        out.append(
            Finding(
                Severity.CRITICAL if s.running * 2 <= s.desired else Severity.WARNING,
                f"ECS {s.cluster}/{s.service}: {s.running} of {s.desired} tasks running",
                SOURCE,
                "stop reasons not read (beyond the first services in detail)",
                "Look at its stopped tasks (aws ecs list-tasks --desired-status STOPPED).",
            )
        )
    for s in states:
        if s.deployments > 1 or s.rollout == "IN_PROGRESS":
            out.append(
                Finding(
                    Severity.INFO,
                    f"ECS {s.cluster}/{s.service}: deployment in progress",
                    SOURCE,
                    f"{s.deployments} deployment(s), rollout {s.rollout or '?'}",
                )
            )
    return [f for f in out if f.severity is not Severity.OK]
