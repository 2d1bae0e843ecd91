"""ECS deployments: task definition history and diff, rollback by UpdateService, forced
redeploys, and a bounded wait for the deployment's ``rolloutState``.

The rollback procedure for an ECS service is "update the service to the previous task
definition". The previous one is the revision of the same family before the one the service
runs now; picking the service's current PRIMARY task definition (an easy slip in a script)
"rolls back" to itself and changes nothing, so :func:`plan_rollback` refuses a target equal to
the current one. Environment variables are shown by name only: their values may be secrets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.errors import NotFoundError, PreflightError, RunbookTimeoutError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.progress import ProgressFactory, default_progress
from opslib.core.waits import poll_until

ROLLBACK_ACTION = "ecs:UpdateService taskDefinition (rollback)"
REDEPLOY_ACTION = "ecs:UpdateService forceNewDeployment"
MAX_FAMILY_REVISIONS = 25  # how far back the history reads


@dataclass(frozen=True)
class TaskDefinition:
    """One revision of a task definition family: images, env var names, CPU/memory."""

    arn: str
    family: str
    revision: int
    status: str
    images: tuple[str, ...]
    env_names: tuple[str, ...]
    cpu: str
    memory: str
    registered_at: str

    def summary(self) -> dict:
        return {
            "revision": self.revision,
            "status": self.status,
            "images": ", ".join(self.images),
            "env_names": ", ".join(self.env_names),
            "cpu": self.cpu,
            "memory": self.memory,
            "registered_at": self.registered_at,
        }


@dataclass(frozen=True)
class Deployment:
    """One of the service's deployments (PRIMARY is the one being rolled out)."""

    id: str
    status: str
    task_definition: str
    rollout_state: str
    rollout_reason: str
    desired: int
    running: int
    pending: int
    failed_tasks: int


@dataclass(frozen=True)
class EcsHistory:
    """The service, its deployments and its family's revisions (newest first)."""

    cluster: str
    service: str
    task_definition: str  # what the service runs now (ARN)
    desired: int
    running: int
    deployments: tuple[Deployment, ...]
    revisions: tuple[TaskDefinition, ...]

    @property
    def current(self) -> TaskDefinition | None:
        return next((t for t in self.revisions if t.arn == self.task_definition), None)

    def get(self, revision: int) -> TaskDefinition | None:
        return next((t for t in self.revisions if t.revision == revision), None)

    def previous(self) -> TaskDefinition | None:
        cur = self.current
        older = [t for t in self.revisions if cur and t.revision < cur.revision]
        return older[0] if older else None

    @property
    def in_progress(self) -> bool:
        return any(
            d.status == "PRIMARY" and d.rollout_state == "IN_PROGRESS" for d in self.deployments
        )

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [{"current": t.arn == self.task_definition, **t.summary()} for t in self.revisions],
            columns=[
                "current",
                "revision",
                "status",
                "images",
                "env_names",
                "cpu",
                "memory",
                "registered_at",
            ],
        )

    def deployments_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "id": d.id,
                    "status": d.status,
                    "task_definition": d.task_definition.rsplit("/", 1)[-1],
                    "rollout_state": d.rollout_state,
                    "desired": d.desired,
                    "running": d.running,
                    "failed_tasks": d.failed_tasks,
                }
                for d in self.deployments
            ],
            columns=[
                "id",
                "status",
                "task_definition",
                "rollout_state",
                "desired",
                "running",
                "failed_tasks",
            ],
        )


def _service(ecs, cluster: str, service: str) -> dict:
    try:
        resp = ecs.describe_services(cluster=cluster, services=[service])
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
            raise NotFoundError(
                f"ECS cluster {cluster!r} not found; check ecs_cluster and region."
            ) from exc
        raise translate_aws_error(exc, f"ecs:DescribeServices {cluster}/{service}") from exc
    svc = next((s for s in resp.get("services", []) if s.get("status") != "INACTIVE"), None)
    if svc is None:
        raise NotFoundError(
            f"ECS service {service!r} not found in cluster {cluster!r}; check ecs_service, "
            "ecs_cluster and region (aws ecs list-services --cluster CLUSTER)."
        )
    return svc


def _deployments(svc: dict) -> tuple[Deployment, ...]:
    return tuple(
        Deployment(
            id=d.get("id", ""),
            status=d.get("status", ""),
            task_definition=d.get("taskDefinition", ""),
            rollout_state=d.get("rolloutState", ""),
            rollout_reason=d.get("rolloutStateReason", ""),
            desired=int(d.get("desiredCount", 0)),
            running=int(d.get("runningCount", 0)),
            pending=int(d.get("pendingCount", 0)),
            failed_tasks=int(d.get("failedTasks", 0)),
        )
        for d in svc.get("deployments", [])
    )


def describe_task_definition(*, ecs, arn: str) -> TaskDefinition:
    td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    containers = td.get("containerDefinitions", [])
    return TaskDefinition(
        arn=td["taskDefinitionArn"],
        family=td.get("family", ""),
        revision=int(td.get("revision", 0)),
        status=td.get("status", ""),
        images=tuple(c.get("image", "") for c in containers),
        env_names=tuple(sorted({e["name"] for c in containers for e in c.get("environment", [])})),
        cpu=str(td.get("cpu") or sum(int(c.get("cpu") or 0) for c in containers) or ""),
        memory=str(td.get("memory") or sum(int(c.get("memory") or 0) for c in containers) or ""),
        registered_at=str(td.get("registeredAt", "") or ""),
    )


def history(*, ecs, cluster: str, service: str) -> EcsHistory:
    """The service's deployments and its task definition family's recent revisions."""
    svc = _service(ecs, cluster, service)
    current = svc.get("taskDefinition", "")
    family = current.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    arns = ecs.list_task_definitions(familyPrefix=family, sort="DESC", maxResults=100).get(
        "taskDefinitionArns", []
    )
    arns = [a for a in arns if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]
    arns.sort(key=lambda a: int(a.rsplit(":", 1)[-1]), reverse=True)
    revisions = tuple(describe_task_definition(ecs=ecs, arn=a) for a in arns[:MAX_FAMILY_REVISIONS])
    return EcsHistory(
        cluster=cluster,
        service=service,
        task_definition=current,
        desired=int(svc.get("desiredCount", 0)),
        running=int(svc.get("runningCount", 0)),
        deployments=_deployments(svc),
        revisions=revisions,
    )


def diff(a: TaskDefinition, b: TaskDefinition):
    """Side by side: images, env var names, CPU and memory of two revisions."""
    import pandas as pd

    rows = []
    for field in ("revision", "images", "env_names", "cpu", "memory", "registered_at"):
        va, vb = a.summary()[field], b.summary()[field]
        rows.append({"field": field, "current": va, "target": vb, "changed": va != vb})
    return pd.DataFrame(rows, columns=["field", "current", "target", "changed"])


def plan_rollback(hist: EcsHistory, *, to_revision: int = 0) -> Plan:
    """Plan UpdateService to ``to_revision`` of the family (0: the one before the current).

    Refused (PreflightError) when the target is the current task definition, when it does not
    exist, or when a deployment is still in progress.
    """
    where = f"{hist.cluster}/{hist.service}"
    cur = hist.current
    cur_rev = cur.revision if cur else 0
    known = ", ".join(str(t.revision) for t in hist.revisions) or "none"
    target = hist.previous() if to_revision == 0 else hist.get(to_revision)
    if to_revision == 0 and target is None:
        raise PreflightError(
            f"{where} runs revision {cur_rev}, and its family has none before it ({known})."
        )
    if target is None:
        raise PreflightError(
            f"Revision {to_revision} of the task definition family does not exist; revisions: "
            f"{known}."
        )
    if target.arn == hist.task_definition:
        raise PreflightError(
            f"to_revision={to_revision} is the task definition {where} runs now "
            f"({target.arn.rsplit('/', 1)[-1]}): a rollback to it changes nothing. Give an "
            "older revision or 0 for the previous one."
        )
    if target.status not in ("", "ACTIVE"):
        raise PreflightError(
            f"Revision {target.revision} is {target.status}; register it again or pick another."
        )
    if hist.in_progress:
        raise PreflightError(
            f"A deployment of {where} is in progress; wait for it (aws ecs wait services-stable "
            f"--cluster {hist.cluster} --services {hist.service}) and plan again."
        )
    failed = [d for d in hist.deployments if d.rollout_state == "FAILED"]
    return Plan(
        title=f"Roll back ECS service {where}",
        changes=(
            Change(
                action=ROLLBACK_ACTION,
                target=where,
                effect=(
                    f"task definition {hist.task_definition.rsplit('/', 1)[-1]} "
                    f"({', '.join(cur.images) if cur else '?'}) -> "
                    f"{target.arn.rsplit('/', 1)[-1]} ({', '.join(target.images)})"
                ),
                params={
                    "cluster": hist.cluster,
                    "service": hist.service,
                    "from_task_definition": hist.task_definition,
                    "to_task_definition": target.arn,
                    "from_revision": cur_rev,
                    "to_revision": target.revision,
                },
            ),
        ),
        warnings=tuple(
            f"deployment {d.id} ({d.task_definition.rsplit('/', 1)[-1]}) FAILED: {d.rollout_reason}"
            for d in failed
        ),
        limits={"services": 1},
    )


@executors.register(ROLLBACK_ACTION)
def rollback(change: Change, *, ecs) -> ChangeOutcome:
    """UpdateService to the planned task definition, only if the service still runs the one
    the plan saw."""
    p = change.params
    svc = _service(ecs, p["cluster"], p["service"])
    if svc.get("taskDefinition") != p["from_task_definition"]:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"the service's task definition changed since the plan "
            f"({svc.get('taskDefinition', '').rsplit('/', 1)[-1]}); plan again",
        )
    try:
        ecs.update_service(
            cluster=p["cluster"], service=p["service"], taskDefinition=p["to_task_definition"]
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"ecs:UpdateService {change.target}") from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"taskDefinition -> {p['to_task_definition'].rsplit('/', 1)[-1]}",
        {"to_task_definition": p["to_task_definition"]},
    )


def force_new_deployment(*, ecs, cluster: str, service: str) -> None:
    """UpdateService forceNewDeployment: the same task definition, every task replaced."""
    try:
        ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
    except ClientError as exc:
        raise translate_aws_error(exc, f"ecs:UpdateService {cluster}/{service}") from exc


def plan_redeploy(histories: list[EcsHistory], *, pause_seconds: int, timeout_s: float) -> Plan:
    """One forced new deployment per service, in order (a rolling restart of ECS services)."""
    changes = []
    for i, h in enumerate(histories):
        last = i == len(histories) - 1
        changes.append(
            Change(
                action=REDEPLOY_ACTION,
                target=f"{h.cluster}/{h.service}",
                effect=f"replace all {h.desired} task(s) of {h.task_definition.rsplit('/', 1)[-1]}"
                + ("" if last else f"; then pause {pause_seconds}s"),
                params={
                    "cluster": h.cluster,
                    "service": h.service,
                    "task_definition": h.task_definition,
                    "desired": h.desired,
                    "pause_after": 0 if last else pause_seconds,
                    "timeout_s": timeout_s,
                },
            )
        )
    busy = [h.service for h in histories if h.in_progress]
    return Plan(
        title=f"Force a new deployment of {len(histories)} ECS service(s), one at a time",
        changes=tuple(changes),
        warnings=(f"deployment already in progress: {', '.join(busy)}",) if busy else (),
        limits={"pause_seconds": pause_seconds},
    )


@executors.register(REDEPLOY_ACTION)
def redeploy(change: Change, *, ecs) -> ChangeOutcome:
    """forceNewDeployment, then wait (bounded) for that deployment; FAILED stops the sequence."""
    p = change.params
    started = time.monotonic()
    force_new_deployment(ecs=ecs, cluster=p["cluster"], service=p["service"])
    # a plan made without the history (a secret rotation's) leaves the task definition to now
    task_definition = p.get("task_definition") or _service(ecs, p["cluster"], p["service"]).get(
        "taskDefinition", ""
    )
    r = wait_deployment(
        ecs=ecs,
        cluster=p["cluster"],
        service=p["service"],
        task_definition=task_definition,
        timeout_s=float(p["timeout_s"]),
    )
    took = round(time.monotonic() - started, 1)
    if not r.complete:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            f"{r.message}. Resume: {r.resume}",
            {"seconds": took},
        )
    if p["pause_after"]:
        time.sleep(float(p["pause_after"]))
    return ChangeOutcome(
        change.action, change.target, ChangeStatus.APPLIED, r.message, {"seconds": took}
    )


@dataclass(frozen=True)
class EcsWaitResult:
    """How a wait for a service deployment ended."""

    cluster: str
    service: str
    complete: bool
    failed: bool
    timed_out: bool
    primary: Deployment | None
    running: int
    desired: int
    message: str

    @property
    def resume(self) -> str:
        return (
            f"aws ecs describe-services --cluster {self.cluster} --services {self.service} "
            f"(deployments); aws ecs wait services-stable --cluster {self.cluster} "
            f"--services {self.service}"
        )


def wait_deployment(
    *,
    ecs,
    cluster: str,
    service: str,
    task_definition: str,
    timeout_s: float,
    poll_s: float = 2.0,
    progress: ProgressFactory = default_progress,
) -> EcsWaitResult:
    """Poll until the PRIMARY deployment runs ``task_definition`` and is COMPLETED (or FAILED),
    at most ``timeout_s``; never raises on timeout (the result says what is left)."""
    last: list[tuple[Deployment | None, dict]] = []

    def check():
        svc = _service(ecs, cluster, service)
        deps = _deployments(svc)
        primary = next((d for d in deps if d.status == "PRIMARY"), None)
        last[:] = [(primary, svc)]
        ours = primary is not None and primary.task_definition == task_definition
        state = primary.rollout_state if primary else "no PRIMARY deployment"
        done = ours and state in ("COMPLETED", "FAILED")
        text = (
            f"PRIMARY {primary.task_definition.rsplit('/', 1)[-1]} {state}, "
            f"{svc.get('runningCount', 0)}/{svc.get('desiredCount', 0)} running"
            if primary
            else state
        )
        return done, primary, text

    def result(primary, svc, *, timed_out: bool) -> EcsWaitResult:
        state = primary.rollout_state if primary else ""
        running, desired = int(svc.get("runningCount", 0)), int(svc.get("desiredCount", 0))
        ok = not timed_out and state == "COMPLETED"
        failed = not timed_out and state == "FAILED"
        where = f"{cluster}/{service}"
        if ok:
            msg = f"{where}: deployment COMPLETED, {running}/{desired} running"
        elif failed:
            msg = f"{where}: deployment FAILED ({primary.rollout_reason}), {running}/{desired} running"
        else:
            msg = (
                f"{where}: deployment not complete after {timeout_s:.0f}s (PRIMARY "
                f"{primary.task_definition.rsplit('/', 1)[-1] if primary else '-'} {state or '-'}, "
                f"{running}/{desired} running)"
            )
        return EcsWaitResult(
            cluster, service, ok, failed, timed_out, primary, running, desired, msg
        )

    try:
        primary = poll_until(
            check,
            timeout_s=timeout_s,
            poll_s=poll_s,
            desc=f"ECS deployment {cluster}/{service}",
            on_timeout=lambda v, text: text,
            progress=progress,
        )
    except RunbookTimeoutError:
        primary, svc = last[0]
        return result(primary, svc, timed_out=True)
    return result(primary, last[0][1], timed_out=False)
