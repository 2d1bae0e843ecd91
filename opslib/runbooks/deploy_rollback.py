"""The deploy-rollback runbook: put a Kubernetes deployment or an ECS service back on the
revision before the current one (or a chosen one), gated, waited for, and verified.

The notebook steps through :func:`inputs` (exit 2 on bad parameters, before anything is read)
-> :func:`connect` -> :func:`history` (revisions, the current one and the target side by side)
-> :func:`health` (before) -> :func:`plan` (refused when the target is the current revision,
does not exist, or another rollout is in progress) -> ``opslib.safety.gate(plan, ...,
execute=executor(conns))`` -> :func:`wait` (bounded, with progress) -> :func:`health` (after)
-> :func:`summary` (the record).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opslib.aws import ecs as ecs_health
from opslib.aws import ecs_deploy
from opslib.aws.cloudwatch import MetricQuery, get_metrics
from opslib.clients import aws_client, k8s_api
from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity, error_finding
from opslib.core.plans import ApplyResult, ChangeStatus, Plan
from opslib.core.progress import ProgressFactory, default_progress
from opslib.k8s import rollout, workloads

__all__ = [
    "ACTIONS",
    "Connections",
    "Health",
    "Inputs",
    "Platform",
    "Revisions",
    "WaitOutcome",
    "compare",
    "connect",
    "executor",
    "health",
    "history",
    "inputs",
    "plan",
    "summary",
    "wait",
]

ACTIONS = (rollout.UNDO_ACTION, ecs_deploy.ROLLBACK_ACTION)
MAX_WAIT_MINUTES = 120


class Platform(StrEnum):
    KUBERNETES = "kubernetes"
    ECS = "ecs"


@dataclass(frozen=True)
class Inputs:
    """The runbook's parameters, checked."""

    platform: Platform
    namespace: str = ""
    deployment: str = ""
    ecs_cluster: str = ""
    ecs_service: str = ""
    to_revision: int = 0
    load_balancer: str = ""
    wait_timeout_minutes: int = 15
    region: str = ""

    @property
    def target(self) -> str:
        if self.platform is Platform.KUBERNETES:
            return f"{self.namespace}/{self.deployment}"
        return f"{self.ecs_cluster}/{self.ecs_service}"


def inputs(
    platform: str = "",
    namespace: str = "",
    deployment: str = "",
    ecs_cluster: str = "",
    ecs_service: str = "",
    *,
    to_revision: int = 0,
    load_balancer: str = "",
    wait_timeout_minutes: int = 15,
    region: str = "",
) -> Inputs:
    """Every check that needs no client; one BadInputError (exit 2) naming each bad parameter."""
    problems = []
    kind = (platform or "").strip().lower()
    if kind not in tuple(Platform):
        problems.append(f"platform={platform!r}: give 'kubernetes' or 'ecs'")
    elif kind == Platform.KUBERNETES and not (namespace and deployment):
        problems.append("platform=kubernetes needs namespace and deployment")
    elif kind == Platform.ECS and not (ecs_cluster and ecs_service):
        problems.append("platform=ecs needs ecs_cluster and ecs_service")
    if to_revision < 0:
        problems.append(f"to_revision={to_revision}: give 0 (the previous revision) or a revision")
    if not 1 <= wait_timeout_minutes <= MAX_WAIT_MINUTES:
        problems.append(f"wait_timeout_minutes={wait_timeout_minutes}: give 1..{MAX_WAIT_MINUTES}")
    if problems:
        raise BadInputError("; ".join(problems) + ". Nothing was read or changed.")
    return Inputs(
        platform=Platform(kind),
        namespace=namespace,
        deployment=deployment,
        ecs_cluster=ecs_cluster,
        ecs_service=ecs_service,
        to_revision=to_revision,
        load_balancer=load_balancer,
        wait_timeout_minutes=wait_timeout_minutes,
        region=region,
    )


@dataclass(frozen=True)
class Connections:
    """Clients for the platform of the run (the other one is None) and CloudWatch for the ALB."""

    k8s: Any = None
    ecs: Any = None
    cloudwatch: Any = None


def connect(inp: Inputs) -> Connections:
    """The clients of the run, from the standard chains (kubeconfig; AWS profile/region)."""
    if inp.platform is Platform.KUBERNETES:
        return Connections(
            k8s=k8s_api(),
            cloudwatch=aws_client("cloudwatch", region=inp.region) if inp.load_balancer else None,
        )
    return Connections(
        ecs=aws_client("ecs", region=inp.region),
        cloudwatch=aws_client("cloudwatch", region=inp.region) if inp.load_balancer else None,
    )


@dataclass(frozen=True)
class Revisions:
    """The revisions, the current one and the rollback target (None when there is none)."""

    platform: Platform
    k8s: rollout.History | None = None
    ecs: ecs_deploy.EcsHistory | None = None
    to_revision: int = 0

    @property
    def current_revision(self) -> int:
        if self.k8s is not None:
            return self.k8s.deployment.revision
        cur = self.ecs.current if self.ecs else None
        return cur.revision if cur else 0

    @property
    def target_revision(self) -> int:
        if self.k8s is not None:
            t = self.k8s.previous() if self.to_revision == 0 else self.k8s.get(self.to_revision)
            return t.revision if t else 0
        t = self.ecs.previous() if self.to_revision == 0 else self.ecs.get(self.to_revision)
        return t.revision if t else 0

    def to_frame(self):
        return self.k8s.to_frame() if self.k8s is not None else self.ecs.to_frame()

    def deployments_frame(self):
        return self.ecs.deployments_frame() if self.ecs is not None else None

    def diff(self):
        """Current vs target: the pod template diff (Kubernetes) or the fields (ECS)."""
        if self.k8s is not None:
            cur = self.k8s.deployment
            tgt = self.k8s.get(self.target_revision)
            if tgt is None:
                return "(no target revision)"
            return rollout.template_diff(
                cur.template,
                tgt.template,
                labels=(f"revision {cur.revision} (current)", f"revision {tgt.revision} (target)"),
            )
        cur, tgt = self.ecs.current, self.ecs.get(self.target_revision)
        if cur is None or tgt is None:
            return "(no target revision)"
        return ecs_deploy.diff(cur, tgt)


def history(inp: Inputs, conns: Connections) -> Revisions:
    """The revisions of the deployment (ReplicaSets) or of the service's task definition family."""
    if inp.platform is Platform.KUBERNETES:
        h = rollout.history(api=conns.k8s, namespace=inp.namespace, name=inp.deployment)
        return Revisions(inp.platform, k8s=h, to_revision=inp.to_revision)
    h = ecs_deploy.history(ecs=conns.ecs, cluster=inp.ecs_cluster, service=inp.ecs_service)
    return Revisions(inp.platform, ecs=h, to_revision=inp.to_revision)


@dataclass(frozen=True)
class Health:
    """Health at one moment: replicas/tasks, restarts and OOM kills or stop reasons, the ALB."""

    platform: Platform
    revision: int
    desired: int
    ready: int
    available: int
    restarts: int = 0
    oom_killed: int = 0
    crash_looping: int = 0
    stopped_reasons: tuple[str, ...] = ()
    alb_5xx: float | None = None
    alb_p99_ms: float | None = None
    findings: tuple[Finding, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return self.desired > 0 and self.available >= self.desired and self.crash_looping == 0

    def row(self) -> dict:
        return {
            "revision": self.revision,
            "desired": self.desired,
            "ready": self.ready,
            "available": self.available,
            "restarts": self.restarts,
            "oom_killed": self.oom_killed,
            "crash_looping": self.crash_looping,
            "stopped_reasons": "; ".join(self.stopped_reasons[:3]),
            "alb_5xx": self.alb_5xx,
            "alb_p99_ms": self.alb_p99_ms,
            "healthy": self.healthy,
        }


def _alb(
    inp: Inputs, conns: Connections, minutes: int = 15
) -> tuple[float | None, float | None, list]:
    if not inp.load_balancer or conns.cloudwatch is None:
        return None, None, []
    end = _dt.datetime.now(_dt.UTC)
    lb = {"LoadBalancer": inp.load_balancer}
    ns = "AWS/ApplicationELB"
    try:
        series = get_metrics(
            [
                MetricQuery("p99", ns, "TargetResponseTime", lb, "p99", 60),
                MetricQuery("e5xx", ns, "HTTPCode_Target_5XX_Count", lb, "Sum", 60),
            ],
            cloudwatch=conns.cloudwatch,
            start=end - _dt.timedelta(minutes=minutes),
            end=end,
        )
    except Exception as exc:  # noqa: BLE001 - an unreachable metric is a finding, not a crash
        return None, None, [error_finding(f"cloudwatch ALB {inp.load_balancer}", exc)]
    p99 = series.series("p99") if series.has_data("p99") else None
    e5 = series.series("e5xx") if series.has_data("e5xx") else None
    return (
        None if e5 is None else float(e5.sum()),
        None if p99 is None else round(float(p99.iloc[-1]) * 1000, 1),
        [],
    )


def health(inp: Inputs, conns: Connections) -> Health:
    """Health now: ready/available, restarts and OOMKilled (Kubernetes) or running/desired and
    stopped-task reasons (ECS); ALB 5xx (sum, 15 min) and latest p99 when a load balancer is given."""
    e5, p99, extra = _alb(inp, conns)
    if inp.platform is Platform.KUBERNETES:
        dep = rollout.read_deployment(api=conns.k8s, namespace=inp.namespace, name=inp.deployment)
        pods = workloads.pod_health(api=conns.k8s, namespace=inp.namespace, selector=dep.selector)
        return Health(
            inp.platform,
            dep.revision,
            dep.replicas,
            dep.ready,
            dep.available,
            restarts=sum(p.restarts for p in pods),
            oom_killed=sum(p.oom_killed for p in pods),
            crash_looping=sum(p.crash_loop for p in pods),
            alb_5xx=e5,
            alb_p99_ms=p99,
            findings=tuple(workloads.findings(pods, namespace=inp.namespace, selector=dep.selector))
            + tuple(extra),
        )
    h = ecs_health.service_health(ecs=conns.ecs, cluster=inp.ecs_cluster, service=inp.ecs_service)
    rev = int(h.task_definition.rsplit(":", 1)[-1]) if ":" in h.task_definition else 0
    return Health(
        inp.platform,
        rev,
        h.desired,
        h.running,
        h.running,
        stopped_reasons=tuple(dict.fromkeys(t.stop_reason for t in h.stopped)),
        alb_5xx=e5,
        alb_p99_ms=p99,
        findings=tuple(ecs_health.findings(h)) + tuple(extra),
    )


def plan(inp: Inputs, revs: Revisions) -> Plan:
    """The rollback plan (read only); PreflightError (exit 2) when it would change nothing,
    the target is gone, or a rollout is in progress."""
    if revs.k8s is not None:
        return rollout.plan_undo(revs.k8s, to_revision=inp.to_revision)
    return ecs_deploy.plan_rollback(revs.ecs, to_revision=inp.to_revision)


def executor(conns: Connections) -> executors.Executor:
    """The ``execute`` for :func:`opslib.safety.gate`: the rollback change of this platform."""
    return executors.bind(api=conns.k8s, ecs=conns.ecs, allowed=ACTIONS)


@dataclass(frozen=True)
class WaitOutcome:
    """How the wait after the rollback ended, and what to do when it did not complete."""

    complete: bool
    failed: bool
    timed_out: bool
    message: str
    resume: str

    @property
    def finding(self) -> Finding:
        if self.complete:
            return Finding(Severity.OK, self.message, "rollout")
        return Finding(
            Severity.CRITICAL,
            self.message,
            "rollout",
            "the rollback was applied; the platform has not finished it",
            f"Check and resume: {self.resume}",
        )


def wait(
    inp: Inputs,
    conns: Connections,
    planned: Plan,
    result: ApplyResult | None,
    *,
    poll_s: float = 1.0,
    progress: ProgressFactory = default_progress,
) -> WaitOutcome | None:
    """Wait (bounded by ``wait_timeout_minutes``) for the applied rollback; None if nothing was
    applied."""
    if result is None or not any(o.status is ChangeStatus.APPLIED for o in result.outcomes):
        return None
    timeout = inp.wait_timeout_minutes * 60
    if inp.platform is Platform.KUBERNETES:
        r = rollout.wait_rollout(
            api=conns.k8s,
            namespace=inp.namespace,
            name=inp.deployment,
            timeout_s=timeout,
            poll_s=poll_s,
            progress=progress,
        )
        return WaitOutcome(r.complete, r.failed, r.timed_out, r.message, r.resume)
    to_td = planned.changes[0].params["to_task_definition"]
    r = ecs_deploy.wait_deployment(
        ecs=conns.ecs,
        cluster=inp.ecs_cluster,
        service=inp.ecs_service,
        task_definition=to_td,
        timeout_s=timeout,
        poll_s=poll_s,
        progress=progress,
    )
    return WaitOutcome(r.complete, r.failed, r.timed_out, r.message, r.resume)


def compare(before: Health, after: Health):
    """Health before and after, side by side."""
    import pandas as pd

    b, a = before.row(), after.row()
    return pd.DataFrame(
        [{"metric": k, "before": b[k], "after": a[k]} for k in b],
        columns=["metric", "before", "after"],
    )


def summary(
    inp: Inputs,
    revs: Revisions,
    planned: Plan,
    result: ApplyResult | None,
    after: Health,
    waited: WaitOutcome | None,
) -> dict[str, Any]:
    """The record: platform, from/to revision, image or task definition, rolled back, healthy."""
    change = planned.changes[0] if planned.changes else None
    p = dict(change.params) if change else {}
    applied = bool(
        result is not None and any(o.status is ChangeStatus.APPLIED for o in result.outcomes)
    )
    out: dict[str, Any] = {
        "platform": inp.platform.value,
        "target": inp.target,
        "from_revision": int(p.get("from_revision", revs.current_revision)),
        "to_revision": int(p.get("to_revision", revs.target_revision)),
        "rolled_back": applied and (waited is None or not waited.failed),
        "rollout_complete": bool(waited and waited.complete),
        "healthy_after": bool(applied and waited is not None and waited.complete and after.healthy),
        "revision_after": after.revision,
    }
    # both pairs always, empty for the other platform, so record.json has one shape
    out["from_image"] = (p.get("from_images") or [""])[0]
    out["to_image"] = (p.get("to_images") or [""])[0]
    out["from_task_definition"] = p.get("from_task_definition", "")
    out["to_task_definition"] = p.get("to_task_definition", "")
    return out
