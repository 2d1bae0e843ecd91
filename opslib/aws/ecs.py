"""ECS service health (running vs desired, recently stopped tasks) and a gated scale-out.

The high-latency alarm procedure: check the service for restarting tasks and, for a
simple load spike, scale the desired count +2. The stop reasons of recent tasks tell a memory
limit (OutOfMemoryError) from a failing health check, which changes what to do next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.findings import Finding, Severity
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan, check_limit

#: the action of the changes this module plans and performs (see opslib.core.executors)
SCALE_ACTION = "ecs:UpdateService"

SOURCE = "ecs"
#: hard ceiling for one scale-out step, whatever scale_out_by says (blast radius)
MAX_SCALE_OUT = 20


@dataclass(frozen=True)
class StoppedTask:
    """A recently stopped task and why it stopped."""

    task_id: str
    stopped_at: str
    stop_reason: str
    stop_code: str
    container_reasons: tuple[str, ...]
    group: str


@dataclass(frozen=True)
class ServiceHealth:
    """One ECS service: desired vs running vs pending tasks, deployments, recent stops."""

    cluster: str
    service: str
    status: str
    desired: int
    running: int
    pending: int
    task_definition: str
    deployments: int
    stopped: tuple[StoppedTask, ...]
    events: tuple[str, ...]  # the service's latest event messages

    @property
    def missing(self) -> int:
        return max(self.desired - self.running, 0)

    @property
    def oom_stops(self) -> int:
        return sum(
            "OutOfMemory" in t.stop_reason or any("OutOfMemory" in r for r in t.container_reasons)
            for t in self.stopped
        )

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "cluster": self.cluster,
                    "service": self.service,
                    "status": self.status,
                    "desired": self.desired,
                    "running": self.running,
                    "pending": self.pending,
                    "deployments": self.deployments,
                    "stopped_recently": len(self.stopped),
                    "task_definition": self.task_definition.rsplit("/", 1)[-1],
                }
            ]
        )

    def stopped_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "task": t.task_id,
                    "stopped_at": t.stopped_at,
                    "stop_reason": t.stop_reason,
                    "containers": "; ".join(t.container_reasons),
                }
                for t in self.stopped
            ],
            columns=["task", "stopped_at", "stop_reason", "containers"],
        )


def service_health(*, ecs, cluster: str, service: str, max_stopped: int = 20) -> ServiceHealth:
    """Describe ``service`` and its most recent stopped tasks (ECS keeps them about an hour)."""
    resp = ecs.describe_services(cluster=cluster, services=[service])
    svc = next((s for s in resp.get("services", []) if s.get("status") != "INACTIVE"), None)
    if svc is None:
        reasons = "; ".join(f.get("reason", "") for f in resp.get("failures", []))
        raise NotFoundError(
            f"ECS service {service!r} not found in cluster {cluster!r} ({reasons or 'inactive'}); "
            "check ecs_cluster/ecs_service and region."
        )
    arns = (
        []
        if max_stopped <= 0
        else ecs.list_tasks(
            cluster=cluster, serviceName=service, desiredStatus="STOPPED", maxResults=100
        ).get("taskArns", [])
    )
    stopped: list[StoppedTask] = []
    if arns:
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns[:100]).get("tasks", [])
        for t in tasks:
            group = t.get("group", "")
            # serviceName filtering is the API's job; the group check guards endpoints that ignore it
            if group and group != f"service:{service}":
                continue
            stopped.append(
                StoppedTask(
                    task_id=t["taskArn"].rsplit("/", 1)[-1],
                    stopped_at=str(t.get("stoppedAt", "") or ""),
                    stop_reason=t.get("stoppedReason", ""),
                    stop_code=t.get("stopCode", ""),
                    container_reasons=tuple(
                        c["reason"] for c in t.get("containers", []) if c.get("reason")
                    ),
                    group=group,
                )
            )
    stopped.sort(key=lambda t: t.stopped_at, reverse=True)
    return ServiceHealth(
        cluster=cluster,
        service=service,
        status=svc.get("status", ""),
        desired=int(svc.get("desiredCount", 0)),
        running=int(svc.get("runningCount", 0)),
        pending=int(svc.get("pendingCount", 0)),
        task_definition=svc.get("taskDefinition", ""),
        deployments=len(svc.get("deployments", [])),
        stopped=tuple(stopped[:max_stopped]),
        events=tuple(e.get("message", "") for e in svc.get("events", [])[:5]),
    )


def findings(h: ServiceHealth) -> list[Finding]:
    """Running vs desired and stop reasons, with the procedures' next actions."""
    out: list[Finding] = []
    name = f"{h.cluster}/{h.service}"
    if h.missing:
        sev = (
            Severity.CRITICAL if h.running == 0 or h.running * 2 <= h.desired else Severity.WARNING
        )
        out.append(
            Finding(
                sev,
                f"ECS {name}: {h.running} of {h.desired} tasks running",
                SOURCE,
                f"desired {h.desired}, running {h.running}, pending {h.pending}, deployments {h.deployments}",
                'Check the stopped tasks\' reasons and CloudWatch Logs ("Memory Limit Exceeded", '
                '"Connection Timeout"); for a plain load spike scale the service +2 (scale_out_by=2).',
                {"desired": h.desired, "running": h.running},
            )
        )
    else:
        out.append(
            Finding(Severity.OK, f"ECS {name}: {h.running} of {h.desired} tasks running", SOURCE)
        )
    if h.stopped:
        reasons: dict[str, int] = {}
        for t in h.stopped:
            reasons[t.stop_reason] = reasons.get(t.stop_reason, 0) + 1
        top = ", ".join(f"{n}x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        oom = h.oom_stops
        out.append(
            Finding(
                Severity.WARNING,
                f"ECS {name}: {len(h.stopped)} task(s) stopped recently"
                + (f", {oom} out of memory" if oom else ""),
                SOURCE,
                top,
                "Tasks are being killed for memory: raise the task memory or fix the leak, then "
                "redeploy."
                if oom
                else "Check the task logs for startup or health-check errors; review recent deployments.",
                {"stopped": len(h.stopped), "oom": oom},
            )
        )
    return out


def plan_scale(h: ServiceHealth, *, scale_out_by: int, max_scale_out: int = MAX_SCALE_OUT) -> Plan:
    """Plan UpdateService desiredCount = current desired + ``scale_out_by`` (0 plans nothing)."""
    if scale_out_by < 0:
        raise BadInputError("scale_out_by must be >= 0 (this runbook only scales out).")
    check_limit("scale_out_by", scale_out_by, max_scale_out)
    if scale_out_by == 0:
        return Plan(
            title=f"Scale ECS {h.cluster}/{h.service}",
            warnings=("scale_out_by=0: no scaling planned",),
            limits={"scale_out_by": 0},
        )
    target = h.desired + scale_out_by
    return Plan(
        title=f"Scale ECS {h.cluster}/{h.service}",
        changes=(
            Change(
                action=SCALE_ACTION,
                target=f"{h.cluster}/{h.service}",
                effect=f"desiredCount {h.desired} -> {target}",
                params={
                    "cluster": h.cluster,
                    "service": h.service,
                    "from": h.desired,
                    "desiredCount": target,
                },
            ),
        ),
        warnings=(
            ("Tasks are stopping for memory: more tasks may not help until memory is raised",)
            if h.oom_stops
            else ()
        ),
        limits={"scale_out_by": scale_out_by},
    )


@executors.register(SCALE_ACTION)
def scale(change: Change, *, ecs) -> ChangeOutcome:
    """Apply one planned UpdateService, only if desiredCount is still what the plan saw."""
    p = change.params
    svc = service_health(ecs=ecs, cluster=p["cluster"], service=p["service"], max_stopped=0)
    if svc.desired != int(p["from"]):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"desiredCount changed since the plan ({p['from']} -> {svc.desired}); plan again",
        )
    ecs.update_service(
        cluster=p["cluster"], service=p["service"], desiredCount=int(p["desiredCount"])
    )
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"desiredCount {p['from']} -> {p['desiredCount']}",
        {"desiredCount": int(p["desiredCount"])},
    )


def scaler(*, ecs) -> Callable[[Change], ChangeOutcome]:
    """The ``execute`` callable for ``opslib.safety.gate``."""

    def execute(change: Change) -> ChangeOutcome:
        return scale(change, ecs=ecs)

    return execute
