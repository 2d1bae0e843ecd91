"""opslib.k8s.rollout against the sandbox's Kubernetes API, with the real kubectl as the judge."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
from kubernetes import client

from opslib.clients import k8s_api
from opslib.core.errors import NotFoundError, PreflightError
from opslib.core.plans import ChangeStatus
from opslib.core.progress import no_progress
from opslib.k8s import rollout
from opslib.safety import gate

pytestmark = pytest.mark.timeout(180)


def _dep(name: str, image: str, cause: str) -> dict:
    return {
        "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": cause}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def _set_image(apps, ns, name, image, cause):
    apps.patch_namespaced_deployment(
        name,
        ns,
        {
            "metadata": {"annotations": {"kubernetes.io/change-cause": cause}},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        },
    )


@pytest.fixture
def three_revisions(sandbox):
    api = k8s_api()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = f"r-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    apps.create_namespaced_deployment(ns, _dep("pay", "pay:1.0", "release 1.0"))
    _set_image(apps, ns, "pay", "pay:1.1", "release 1.1")
    _set_image(apps, ns, "pay", "pay:1.2", "release 1.2")
    yield api, ns
    core.delete_namespace(ns)


def kubectl(sandbox, *args: str) -> str:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        ["kubectl", "--kubeconfig", sandbox.kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_history_lists_revisions_newest_first_with_diff(three_revisions):
    api, ns = three_revisions
    h = rollout.history(api=api, namespace=ns, name="pay")
    assert [r.revision for r in h.revisions] == [3, 2, 1]
    assert h.deployment.revision == 3 and h.deployment.complete
    assert [r.images for r in h.revisions] == [("pay:1.2",), ("pay:1.1",), ("pay:1.0",)]
    assert h.previous().revision == 2 and h.revisions[1].change_cause == "release 1.1"
    diff = rollout.template_diff(h.current.template, h.previous().template)
    assert "-  - image: pay:1.2" in diff and "+  - image: pay:1.1" in diff
    assert list(h.to_frame()["current"]) == [True, False, False]


def test_plan_refuses_current_missing_and_in_progress(three_revisions):
    api, ns = three_revisions
    h = rollout.history(api=api, namespace=ns, name="pay")
    with pytest.raises(PreflightError, match="current revision"):
        rollout.plan_undo(h, to_revision=3)
    with pytest.raises(PreflightError, match="does not exist"):
        rollout.plan_undo(h, to_revision=9)
    with pytest.raises(NotFoundError):
        rollout.history(api=api, namespace=ns, name="nope")
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment(
        "pay", ns, {"metadata": {"annotations": {"sandbox.opslib.dev/step-seconds": "30"}}}
    )
    _set_image(apps, ns, "pay", "pay:1.3", "release 1.3")
    busy = rollout.history(api=api, namespace=ns, name="pay")
    assert busy.deployment.in_progress
    with pytest.raises(PreflightError, match="in progress"):
        rollout.plan_undo(busy)


def test_undo_to_previous_then_kubectl_agrees(sandbox, three_revisions):
    api, ns = three_revisions
    h = rollout.history(api=api, namespace=ns, name="pay")
    plan = rollout.plan_undo(h)
    (change,) = plan.changes
    assert (change.params["from_revision"], change.params["to_revision"]) == (3, 2)
    execute = lambda c: rollout.undo(c, api=api)  # noqa: E731
    assert gate(plan, dry_run=True, approved_by="", execute=execute) is None
    assert rollout.read_deployment(api=api, namespace=ns, name="pay").images == ("pay:1.2",)
    res = gate(plan, dry_run=False, approved_by="tester", execute=execute)
    assert res.outcomes[0].status is ChangeStatus.APPLIED
    done = rollout.wait_rollout(
        api=api, namespace=ns, name="pay", timeout_s=20, progress=no_progress
    )
    assert done.complete and done.state.revision == 4 and done.state.images == ("pay:1.1",)
    assert rollout.undo(change, api=api).status is ChangeStatus.SKIPPED  # stale plan
    image = kubectl(
        sandbox,
        "-n",
        ns,
        "get",
        "deploy/pay",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image} {.metadata.annotations.deployment\\.kubernetes\\.io/revision} {.status.availableReplicas}",
    )
    assert image == "pay:1.1 4 2"
    hist = kubectl(sandbox, "-n", ns, "rollout", "history", "deploy/pay")
    assert "rollback to revision 2 (release 1.1)" in hist


def test_wait_times_out_and_says_what_is_left(sandbox, three_revisions):
    api, ns = three_revisions
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment(
        "pay", ns, {"metadata": {"annotations": {"sandbox.opslib.dev/step-seconds": "60"}}}
    )
    _set_image(apps, ns, "pay", "pay:2.0", "release 2.0")
    r = rollout.wait_rollout(
        api=api, namespace=ns, name="pay", timeout_s=2, poll_s=0.5, progress=no_progress
    )
    assert r.timed_out and not r.complete and not r.failed
    assert "not complete after 2s" in r.message and "revision 4" in r.message
    assert "rollout status deployment/pay" in r.resume and "rollout undo" in r.resume
