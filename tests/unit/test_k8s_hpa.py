"""opslib.k8s.hpa against the sandbox's Kubernetes API: reading an HPA's bounds and status,
finding a deployment's HPA, and a patch refused when the bounds moved since the plan."""

from __future__ import annotations

import pytest

from opslib.clients import k8s_api
from opslib.core.errors import NotFoundError
from opslib.core.plans import ChangeStatus
from opslib.k8s import hpa

pytestmark = pytest.mark.timeout(120)


def test_hpa_read_and_a_stale_patch_is_skipped(sandbox):
    from kubernetes import client

    api = k8s_api()
    h = hpa.read_hpa(api=api, namespace="fintech-banking", name="auth-service")
    assert (h.min_replicas, h.max_replicas, h.scale_target) == (2, 6, "Deployment/auth-service")
    assert (h.cpu_pct, h.cpu_target_pct) == (85.0, 70.0)
    assert hpa.for_deployment(api=api, namespace="fintech-banking", deployment="auth-service") == h
    change = hpa.plan_bounds(h, min_replicas=3, max_replicas=6)
    auto = client.AutoscalingV2Api(api)
    auto.patch_namespaced_horizontal_pod_autoscaler(
        "auth-service", "fintech-banking", {"spec": {"minReplicas": 5}}
    )
    try:
        out = hpa.patch_bounds(change, api=api)
        assert out.status is ChangeStatus.SKIPPED and "changed since the plan" in out.detail
        assert (
            hpa.read_hpa(api=api, namespace="fintech-banking", name="auth-service").min_replicas
            == 5
        )
    finally:
        auto.patch_namespaced_horizontal_pod_autoscaler(
            "auth-service", "fintech-banking", {"spec": {"minReplicas": 2}}
        )
    with pytest.raises(NotFoundError, match="kubectl -n fintech-banking get hpa"):
        hpa.read_hpa(api=api, namespace="fintech-banking", name="nope")
