"""HorizontalPodAutoscalers: their min/max, current utilisation, and the patch that moves them.

The scaling procedure raises an HPA's ``minReplicas`` before a peak (``kubectl patch hpa ...
-p '{"spec":{"minReplicas":N}}'``) and notes that scaling a deployment by hand below the HPA's
minimum (or above its maximum) is undone at the HPA's next sync. So a deployment's HPA is
read before its replicas are planned, and the HPA patch is its own change.
"""

from __future__ import annotations

from dataclasses import dataclass

from opslib.core import executors
from opslib.core.errors import NotFoundError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus

__all__ = ["PATCH_ACTION", "Hpa", "for_deployment", "patch_bounds", "plan_bounds", "read_hpa"]

PATCH_ACTION = "k8s:patch horizontalpodautoscalers"
TIMEOUT = 15


@dataclass(frozen=True)
class Hpa:
    """An HPA: bounds, what it targets, and what its status reports now."""

    namespace: str
    name: str
    min_replicas: int
    max_replicas: int
    scale_target: str  # "Deployment/auth-service"
    current_replicas: int
    desired_replicas: int
    cpu_pct: float | None  # current average CPU utilisation, % of requests
    cpu_target_pct: float | None
    memory_pct: float | None

    @property
    def target(self) -> str:
        return f"{self.namespace}/{self.name}"

    def numbers(self) -> dict[str, int]:
        return {"min": self.min_replicas, "max": self.max_replicas}


def _api(api):
    from kubernetes import client

    return client.AutoscalingV2Api(api)


def _metric(items, name: str, *, spec: bool) -> float | None:
    for m in items or []:
        if getattr(m, "type", "") != "Resource" or m.resource is None or m.resource.name != name:
            continue
        val = m.resource.target if spec else m.resource.current
        pct = getattr(val, "average_utilization", None) if val is not None else None
        if pct is not None:
            return float(pct)
    return None


def _from(h) -> Hpa:
    st, sp = h.status, h.spec
    ref = sp.scale_target_ref
    return Hpa(
        namespace=h.metadata.namespace,
        name=h.metadata.name,
        min_replicas=int(sp.min_replicas if sp.min_replicas is not None else 1),
        max_replicas=int(sp.max_replicas),
        scale_target=f"{ref.kind}/{ref.name}",
        current_replicas=int((st.current_replicas if st else 0) or 0),
        desired_replicas=int((st.desired_replicas if st else 0) or 0),
        cpu_pct=_metric(st.current_metrics if st else None, "cpu", spec=False),
        cpu_target_pct=_metric(sp.metrics, "cpu", spec=True),
        memory_pct=_metric(st.current_metrics if st else None, "memory", spec=False),
    )


def read_hpa(*, api, namespace: str, name: str) -> Hpa:
    """The HPA; NotFoundError (exit 2) when it does not exist."""
    from kubernetes.client.exceptions import ApiException

    try:
        h = _api(api).read_namespaced_horizontal_pod_autoscaler(
            name, namespace, _request_timeout=TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            raise NotFoundError(
                f"HPA {namespace}/{name} not found; check namespace and name "
                f"(kubectl -n {namespace} get hpa)."
            ) from None
        raise
    return _from(h)


def for_deployment(*, api, namespace: str, deployment: str) -> Hpa | None:
    """The HPA that scales ``deployment``, or None when its replicas are manual only."""
    items = (
        _api(api)
        .list_namespaced_horizontal_pod_autoscaler(namespace, _request_timeout=TIMEOUT)
        .items
    )
    for h in items:
        ref = h.spec.scale_target_ref
        if ref.kind == "Deployment" and ref.name == deployment:
            return _from(h)
    return None


def plan_bounds(h: Hpa, *, min_replicas: int, max_replicas: int) -> Change:
    """The HPA patch of minReplicas/maxReplicas (read only)."""
    return Change(
        action=PATCH_ACTION,
        target=h.target,
        effect=f"minReplicas {h.min_replicas} -> {min_replicas}, maxReplicas {h.max_replicas} -> {max_replicas}",
        params={
            "namespace": h.namespace,
            "name": h.name,
            "from": h.numbers(),
            "min": int(min_replicas),
            "max": int(max_replicas),
        },
    )


@executors.register(PATCH_ACTION)
def patch_bounds(change: Change, *, api) -> ChangeOutcome:
    """Apply one planned HPA patch, only if its bounds are still what the plan saw."""
    p = change.params
    now = read_hpa(api=api, namespace=p["namespace"], name=p["name"])
    if now.numbers() != dict(p["from"]):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"the HPA bounds changed since the plan ({dict(p['from'])} -> {now.numbers()}); plan again",
        )
    _api(api).patch_namespaced_horizontal_pod_autoscaler(
        p["name"],
        p["namespace"],
        {"spec": {"minReplicas": int(p["min"]), "maxReplicas": int(p["max"])}},
        _request_timeout=TIMEOUT,
    )
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        change.effect,
        {"min": int(p["min"]), "max": int(p["max"])},
    )
