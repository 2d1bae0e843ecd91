"""Input checks of deploy-rollback and rolling-restart: refused before any client is built."""

from __future__ import annotations

import pytest

from opslib.core.errors import BadInputError
from opslib.runbooks import deploy_rollback, rolling_restart


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"platform": "nomad"}, "give 'kubernetes' or 'ecs'"),
        ({"platform": "kubernetes", "namespace": "ns"}, "needs namespace and deployment"),
        ({"platform": "ecs", "ecs_cluster": "c"}, "needs ecs_cluster and ecs_service"),
        (
            {"platform": "kubernetes", "namespace": "n", "deployment": "d", "to_revision": -1},
            "to_revision=-1",
        ),
        (
            {"platform": "ecs", "ecs_cluster": "c", "ecs_service": "s", "wait_timeout_minutes": 0},
            "wait_timeout_minutes=0",
        ),
    ],
)
def test_deploy_rollback_refuses_bad_parameters(kwargs, message):
    with pytest.raises(BadInputError, match=message):
        deploy_rollback.inputs(**kwargs)


def test_deploy_rollback_accepts_either_platform():
    k = deploy_rollback.inputs("Kubernetes", "ns", "api")
    assert k.platform is deploy_rollback.Platform.KUBERNETES and k.target == "ns/api"
    e = deploy_rollback.inputs("ecs", ecs_cluster="c", ecs_service="s", to_revision=4)
    assert e.target == "c/s" and e.to_revision == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"platform": "k8s"}, "give 'kubernetes' or 'ecs'"),
        ({"platform": "kubernetes"}, "needs namespace"),
        ({"platform": "kubernetes", "namespace": "n", "mode": "gentle"}, "mode='gentle'"),
        (
            {"platform": "ecs", "ecs_cluster": "c", "ecs_services": "a", "mode": "force"},
            "mode=force is for Kubernetes",
        ),
        ({"platform": "kubernetes", "namespace": "n", "max_targets": 0}, "max_targets=0"),
        ({"platform": "kubernetes", "namespace": "n", "pause_seconds": -1}, "pause_seconds=-1"),
    ],
)
def test_rolling_restart_refuses_bad_parameters(kwargs, message):
    with pytest.raises(BadInputError, match=message):
        rolling_restart.inputs(**kwargs)


def test_rolling_restart_keeps_the_order_and_drops_duplicates():
    inp = rolling_restart.inputs("kubernetes", "ns", "b, a,b ,c")
    assert inp.deployments == ("b", "a", "c") and inp.mode is rolling_restart.Mode.ROLLING
