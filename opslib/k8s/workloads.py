"""Kubernetes workload health (restarts, OOMKilled, CrashLoopBackOff, not ready) and scale-out.

The quick health check: ``kubectl get pods -n <namespace> -o wide`` then the recent events; manual
horizontal scaling scales a deployment. Here the pods are read through the official client and summarised as
typed rows; the scale goes through the ``scale`` subresource (a merge patch of
``spec.replicas``), planned first and applied only through ``opslib.safety.gate``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan, check_limit

#: the action of the changes this module plans and performs (see opslib.core.executors)
SCALE_ACTION = "k8s:patch deployments/scale"

SOURCE = "k8s"
MAX_DEPLOYMENTS = 3  # one plan never scales more deployments than this
MAX_SCALE_OUT = 20
BAD_REASONS = (
    "OOMKilled",
    "CrashLoopBackOff",
    "Error",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "RunContainerError",
)


@dataclass(frozen=True)
class PodHealth:
    """One pod: ready or not, restarts, and the reasons its containers give."""

    namespace: str
    name: str
    phase: str
    ready: bool
    restarts: int
    reasons: tuple[str, ...]  # e.g. ("CrashLoopBackOff", "last: OOMKilled")
    oom_killed: bool
    crash_loop: bool
    node: str
    owner: str  # e.g. "ReplicaSet/auth-service-7c9d8f"
    age_s: float | None

    @property
    def unhealthy(self) -> bool:
        return (not self.ready) or self.restarts > 0 or self.oom_killed or self.crash_loop


@dataclass(frozen=True)
class DeploymentInfo:
    """A deployment's desired and ready replicas."""

    namespace: str
    name: str
    replicas: int
    ready: int


def _age(ts) -> float | None:
    if ts is None:
        return None
    if isinstance(ts, str):
        ts = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.UTC)
    return (_dt.datetime.now(_dt.UTC) - ts).total_seconds()


def _pod(p) -> PodHealth:
    statuses = list(p.status.container_statuses or []) + list(
        p.status.init_container_statuses or []
    )
    reasons: list[str] = []
    oom = crash = False
    for c in statuses:
        st, last = c.state, c.last_state
        if st and st.waiting and st.waiting.reason:
            reasons.append(st.waiting.reason)
            crash = crash or st.waiting.reason == "CrashLoopBackOff"
        if st and st.terminated and st.terminated.reason:
            reasons.append(st.terminated.reason)
            oom = oom or st.terminated.reason == "OOMKilled"
        if last and last.terminated and last.terminated.reason:
            reasons.append(f"last: {last.terminated.reason}")
            oom = oom or last.terminated.reason == "OOMKilled"
    conds = {c.type: c.status for c in (p.status.conditions or [])}
    ready = (
        conds.get("Ready") == "True"
        if "Ready" in conds
        else all(c.ready for c in statuses) and bool(statuses)
    )
    owners = p.metadata.owner_references or []
    return PodHealth(
        namespace=p.metadata.namespace or "",
        name=p.metadata.name,
        phase=p.status.phase or "",
        ready=bool(ready),
        restarts=sum(int(c.restart_count or 0) for c in statuses),
        reasons=tuple(dict.fromkeys(reasons)),
        oom_killed=oom,
        crash_loop=crash,
        node=p.spec.node_name or "" if p.spec else "",
        owner=f"{owners[0].kind}/{owners[0].name}" if owners else "",
        age_s=_age(p.status.start_time or p.metadata.creation_timestamp),
    )


def pod_health(*, api, namespace: str, selector: str = "") -> tuple[PodHealth, ...]:
    """Every pod in ``namespace`` matching the label ``selector``, the unhealthiest first."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod(
        namespace, label_selector=selector or None, _request_timeout=15
    ).items
    rows = [_pod(p) for p in pods]
    rows.sort(key=lambda r: (not r.crash_loop, not r.oom_killed, r.ready, -r.restarts, r.name))
    return tuple(rows)


def pods_frame(pods: tuple[PodHealth, ...]):
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "pod": p.name,
                "phase": p.phase,
                "ready": p.ready,
                "restarts": p.restarts,
                "reasons": ", ".join(p.reasons),
                "age_min": None if p.age_s is None else round(p.age_s / 60),
                "node": p.node,
            }
            for p in pods
        ],
        columns=["pod", "phase", "ready", "restarts", "reasons", "age_min", "node"],
    )


def restarting(pods: tuple[PodHealth, ...]) -> list[str]:
    """Names of pods that restarted, were OOMKilled, crash-loop or are not ready."""
    return [p.name for p in pods if p.unhealthy]


def findings(pods: tuple[PodHealth, ...], *, namespace: str, selector: str = "") -> list[Finding]:
    """Restarting / OOMKilled / crash-looping / not-ready pods, with the procedures' next actions."""
    where = f"{namespace}" + (f" ({selector})" if selector else "")
    if not pods:
        return [
            Finding(
                Severity.INFO,
                f"Kubernetes {where}: no pods match",
                SOURCE,
                "list returned no pods",
                "Check k8s_namespace and k8s_selector.",
            )
        ]
    bad = [p for p in pods if p.unhealthy]
    if not bad:
        return [
            Finding(
                Severity.OK, f"Kubernetes {where}: {len(pods)} pod(s) ready, no restarts", SOURCE
            )
        ]
    oom = [p for p in bad if p.oom_killed]
    crash = [p for p in bad if p.crash_loop]
    not_ready = [p for p in pods if not p.ready]
    sev = Severity.CRITICAL if crash or len(not_ready) * 2 >= len(pods) else Severity.WARNING
    parts = [f"{len(bad)} of {len(pods)} pod(s) unhealthy"]
    if oom:
        parts.append(f"{len(oom)} OOMKilled")
    if crash:
        parts.append(f"{len(crash)} in CrashLoopBackOff")
    if not_ready:
        parts.append(f"{len(not_ready)} not ready")
    evidence = "; ".join(
        f"{p.name}: restarts {p.restarts}, {', '.join(p.reasons) or 'not ready'}" for p in bad[:5]
    )
    action = (
        "Containers hit their memory limit (OOMKilled): raise the memory limit or roll back the "
        "release that grew memory (kubectl rollout undo); check recent deploys."
        if oom
        else "Check the pod logs and recent events; roll back a recent deploy if it started then."
    )
    return [
        Finding(
            sev,
            f"Kubernetes {where}: " + ", ".join(parts),
            SOURCE,
            evidence,
            action,
            {"pods": [p.name for p in bad]},
        )
    ]


def deployments(*, api, namespace: str, selector: str = "") -> tuple[DeploymentInfo, ...]:
    """Deployments in ``namespace`` whose labels match ``selector``."""
    from kubernetes import client

    apps = client.AppsV1Api(api)
    items = apps.list_namespaced_deployment(
        namespace, label_selector=selector or None, _request_timeout=15
    ).items
    return tuple(
        DeploymentInfo(
            namespace,
            d.metadata.name,
            int(d.spec.replicas or 0),
            int((d.status.ready_replicas if d.status else 0) or 0),
        )
        for d in sorted(items, key=lambda d: d.metadata.name)
    )


def plan_scale(
    deps: tuple[DeploymentInfo, ...],
    *,
    scale_out_by: int,
    max_deployments: int = MAX_DEPLOYMENTS,
    max_scale_out: int = MAX_SCALE_OUT,
) -> Plan:
    """Plan replicas = current + ``scale_out_by`` for each deployment (0 plans nothing)."""
    if scale_out_by < 0:
        raise BadInputError("scale_out_by must be >= 0 (this runbook only scales out).")
    check_limit("scale_out_by", scale_out_by, max_scale_out)
    title = "Scale Kubernetes deployments"
    if scale_out_by == 0:
        return Plan(
            title=title,
            warnings=("scale_out_by=0: no scaling planned",),
            limits={"scale_out_by": 0},
        )
    if not deps:
        return Plan(
            title=title,
            warnings=("no deployment matches k8s_selector",),
            limits={"scale_out_by": scale_out_by},
        )
    check_limit("max_deployments", len(deps), max_deployments)
    changes = tuple(
        Change(
            action=SCALE_ACTION,
            target=f"{d.namespace}/{d.name}",
            effect=f"replicas {d.replicas} -> {d.replicas + scale_out_by}",
            params={
                "namespace": d.namespace,
                "name": d.name,
                "from": d.replicas,
                "replicas": d.replicas + scale_out_by,
            },
        )
        for d in deps
    )
    return Plan(
        title=title,
        changes=changes,
        limits={"scale_out_by": scale_out_by, "max_deployments": max_deployments},
    )


@executors.register(SCALE_ACTION)
def scale(change: Change, *, api) -> ChangeOutcome:
    """Apply one planned scale, only if replicas are still what the plan saw."""
    from kubernetes import client

    apps = client.AppsV1Api(api)
    p = change.params
    cur = apps.read_namespaced_deployment_scale(p["name"], p["namespace"], _request_timeout=15)
    have = int(cur.spec.replicas or 0)
    if have != int(p["from"]):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"replicas changed since the plan ({p['from']} -> {have}); plan again",
        )
    apps.patch_namespaced_deployment_scale(
        p["name"], p["namespace"], {"spec": {"replicas": int(p["replicas"])}}, _request_timeout=15
    )
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"replicas {p['from']} -> {p['replicas']}",
        {"replicas": int(p["replicas"])},
    )


def scaler(*, api) -> Callable[[Change], ChangeOutcome]:
    """The ``execute`` callable for ``opslib.safety.gate``."""

    def execute(change: Change) -> ChangeOutcome:
        return scale(change, api=api)

    return execute
