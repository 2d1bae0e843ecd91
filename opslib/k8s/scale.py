"""Scale a Kubernetes deployment by a signed delta (the queue consumers of the backlog procedure).

:mod:`opslib.k8s.workloads` plans scale-outs only (``scale_out_by >= 0``) for many deployments;
a queue's consumer is one deployment that may need fewer replicas too (a poison-message storm
where more consumers only fail faster). The change is the one :mod:`~opslib.k8s.workloads`
already performs (``SCALE_ACTION``, the ``scale`` subresource, refused when the replica count
moved since the plan), so there is still exactly one handler for that call.
"""

from __future__ import annotations

from dataclasses import dataclass

from opslib.core.plans import Change, Plan, scaled_count
from opslib.k8s import rollout, workloads

__all__ = ["SCALE_ACTION", "DeploymentScale", "plan_scale_by", "read_scale"]

SCALE_ACTION = workloads.SCALE_ACTION


@dataclass(frozen=True)
class DeploymentScale:
    """A deployment's desired and ready replicas now."""

    namespace: str
    name: str
    replicas: int
    ready: int

    @property
    def target(self) -> str:
        return f"k8s-deployment:{self.namespace}/{self.name}"


def read_scale(*, api, namespace: str, name: str) -> DeploymentScale:
    """Replicas of ``namespace/name``; NotFoundError (exit 2) when it does not exist."""
    d = rollout.read_deployment(api=api, namespace=namespace, name=name)
    return DeploymentScale(namespace, name, d.replicas, d.ready)


def plan_scale_by(state: DeploymentScale, *, delta: int, max_up: int, param: str = "delta") -> Plan:
    """replicas = current + ``delta``; BadInputError when that is below 0 or ``delta > max_up``."""
    want = scaled_count(
        state.replicas, delta, param=param, max_up=max_up, what=state.target, unit="replica(s)"
    )
    return Plan(
        title=f"Scale {state.target} by {delta:+d}",
        changes=(
            Change(
                action=SCALE_ACTION,
                target=f"{state.namespace}/{state.name}",
                effect=f"replicas {state.replicas} -> {want}",
                params={
                    "namespace": state.namespace,
                    "name": state.name,
                    "from": state.replicas,
                    "replicas": want,
                },
            ),
        ),
        warnings=(("replicas 0: nothing will consume the queue",) if want == 0 else ()),
        limits={"consumers_delta_max": max_up},
    )
