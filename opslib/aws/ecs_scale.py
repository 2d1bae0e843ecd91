"""Scale an ECS service's desired count by a signed delta (the queue consumers of the backlog
procedure).

:func:`opslib.aws.ecs.plan_scale` plans scale-outs only; a queue's consumer may need fewer tasks
too. The change is the one :mod:`opslib.aws.ecs` already performs (``ecs:UpdateService``
desiredCount, refused when the count moved since the plan): one handler for that call.
"""

from __future__ import annotations

from dataclasses import dataclass

from opslib.aws import ecs
from opslib.core.plans import Change, Plan, scaled_count

__all__ = ["SCALE_ACTION", "ServiceScale", "plan_scale_by", "read_scale"]

SCALE_ACTION = ecs.SCALE_ACTION


@dataclass(frozen=True)
class ServiceScale:
    """A service's desired and running task counts now."""

    cluster: str
    service: str
    replicas: int  # desiredCount
    ready: int  # runningCount

    @property
    def target(self) -> str:
        return f"ecs-service:{self.cluster}/{self.service}"


def read_scale(*, ecs_client, cluster: str, service: str) -> ServiceScale:
    """desiredCount and runningCount; NotFoundError (exit 2) when the service does not exist."""
    h = ecs.service_health(ecs=ecs_client, cluster=cluster, service=service, max_stopped=0)
    return ServiceScale(cluster, service, h.desired, h.running)


def plan_scale_by(state: ServiceScale, *, delta: int, max_up: int, param: str = "delta") -> Plan:
    """desiredCount = current + ``delta``; BadInputError below 0 or when ``delta > max_up``."""
    want = scaled_count(
        state.replicas, delta, param=param, max_up=max_up, what=state.target, unit="task(s) desired"
    )
    return Plan(
        title=f"Scale {state.target} by {delta:+d}",
        changes=(
            Change(
                action=SCALE_ACTION,
                target=f"{state.cluster}/{state.service}",
                effect=f"desiredCount {state.replicas} -> {want}",
                params={
                    "cluster": state.cluster,
                    "service": state.service,
                    "from": state.replicas,
                    "desiredCount": want,
                },
            ),
        ),
        warnings=(("desiredCount 0: nothing will consume the queue",) if want == 0 else ()),
        limits={"consumers_delta_max": max_up},
    )
