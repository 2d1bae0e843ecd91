"""Restart deployments after their secret changed: the rolling restart, planned for a rotation.

A pod reads a secret's env values when it starts, so after a rotation the deployments using
the secret are restarted with :mod:`opslib.k8s.restart`'s rolling restart (the pod template
gets ``kubectl.kubernetes.io/restartedAt``, exactly what ``kubectl rollout restart`` sets; its
handler waits for the rollout, bounded), and the verification checks that every pod of the
deployment is newer than the secret update. This module adds only the plan that says why,
the existence check and the pod ages; the action and its handler are the restart module's.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from opslib.core.plans import Change
from opslib.k8s.restart import RESTART_ACTION

TIMEOUT_S = 15
ROLLOUT_TIMEOUT_S = 300


def plan_restart(namespace: str, name: str, *, reason: str) -> Change:
    return Change(
        action=RESTART_ACTION,
        target=f"{namespace}/{name}",
        effect=f"rollout restart (new pods read the updated secret): {reason}",
        params={
            "namespace": namespace,
            "name": name,
            "pause_after": 0,
            "timeout_s": ROLLOUT_TIMEOUT_S,
        },
    )


def deployment_exists(namespace: str, name: str, *, api) -> bool:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.AppsV1Api(api).read_namespaced_deployment(
            name, namespace, _request_timeout=TIMEOUT_S
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@dataclass(frozen=True)
class PodAges:
    """The pods of a deployment and whether they all started after ``since``."""

    namespace: str
    name: str
    pods: tuple[tuple[str, _dt.datetime | None], ...]
    since: _dt.datetime

    @property
    def all_newer(self) -> bool:
        return bool(self.pods) and all(t is not None and t >= self.since for _, t in self.pods)

    @property
    def older(self) -> list[str]:
        return [n for n, t in self.pods if t is None or t < self.since]


def pod_ages(namespace: str, name: str, *, api, since: _dt.datetime) -> PodAges:
    """The deployment's pods (by its selector) with their creation times.

    ``creationTimestamp`` has whole seconds, so ``since`` is compared at that precision."""
    from kubernetes import client

    dep = client.AppsV1Api(api).read_namespaced_deployment(
        name, namespace, _request_timeout=TIMEOUT_S
    )
    labels = (dep.spec.selector.match_labels or {}) if dep.spec and dep.spec.selector else {}
    sel = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    items = (
        client.CoreV1Api(api)
        .list_namespaced_pod(namespace, label_selector=sel or None, _request_timeout=TIMEOUT_S)
        .items
    )
    pods = tuple(sorted((p.metadata.name, p.metadata.creation_timestamp) for p in items))
    return PodAges(namespace, name, pods, since.replace(microsecond=0))
