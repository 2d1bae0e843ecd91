"""The sandbox's Kubernetes API held against the real kubectl: discovery, Table output, events,
the deployment controller (ReplicaSets, revisions, owned pods) and ``kubectl rollout``."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
from kubernetes import client

from opslib.clients import k8s_api

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]


@pytest.fixture
def kubectl(sandbox, tmp_path):
    """Run the real kubectl against the sandbox (private discovery cache), return stdout."""

    def run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", sandbox.kubeconfig, "--cache-dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ},
        )
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {out.stderr}")
        return out

    return run


@pytest.fixture
def ns(sandbox, kubectl):
    name = f"k-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_discovery_lists_core_and_apps_resources(kubectl):
    out = kubectl("api-resources").stdout
    rows = {r[0]: r for r in _lines(out)[1:]}
    assert {"pods", "deployments", "replicasets", "events", "services", "secrets"} <= set(rows)
    assert rows["pods"][1] == "po" and rows["pods"][2] == "v1"  # groupVersion is v1, not /v1
    assert rows["deployments"][2] == "apps/v1"
    assert "horizontalpodautoscalers" in rows and "nodes" in rows and "namespaces" in rows


def test_get_prints_the_server_side_columns(kubectl, ns):
    kubectl("-n", ns, "create", "deployment", "web", "--image=nginx:1.25", "--replicas=3")
    deploy = _lines(kubectl("-n", ns, "get", "deployments").stdout)
    assert deploy[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deploy[1][:4] == ["web", "3/3", "3", "3"]
    rs = _lines(kubectl("-n", ns, "get", "replicasets").stdout)
    assert rs[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert rs[1][0].startswith("web-") and rs[1][1:4] == ["3", "3", "3"]
    pods = _lines(kubectl("-n", ns, "get", "pods").stdout)
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 4 and all(p[1:3] == ["1/1", "Running"] for p in pods[1:])
    wide = _lines(kubectl("-n", ns, "get", "deploy", "web", "-o", "wide").stdout)
    assert wide[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and "nginx:1.25" in wide[1]
    # pods belong to the ReplicaSet, which belongs to the deployment
    pod = json.loads(kubectl("-n", ns, "get", "pods", "-o", "json").stdout)["items"][0]
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet" and owner["name"] == rs[1][0] and owner["controller"]


def test_get_events_matches_the_api(kubectl, ns):
    core = client.CoreV1Api(k8s_api())
    for i in range(3):
        core.create_namespaced_event(
            ns,
            {
                "metadata": {"name": f"e{i}"},
                "involvedObject": {"kind": "Pod", "name": f"p{i}", "namespace": ns},
                "reason": "BackOff",
                "message": f"Back-off restarting failed container {i}",
                "type": "Warning",
                "count": 2,
                "lastTimestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    rows = _lines(kubectl("-n", ns, "get", "events").stdout)
    assert rows[0] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert sorted(r[3] for r in rows[1:]) == ["pod/p0", "pod/p1", "pod/p2"]
    assert len(core.list_namespaced_event(ns).items) == len(rows) - 1


def test_rollout_history_undo_restart_scale_and_patch(kubectl, ns):
    k = ("-n", ns)
    kubectl(*k, "create", "deployment", "api", "--image=api:1.0", "--replicas=2")
    kubectl(*k, "set", "image", "deploy/api", "api=api:1.1")
    kubectl(*k, "annotate", "deploy/api", "kubernetes.io/change-cause=release 1.1")
    kubectl(*k, "rollout", "status", "deploy/api", "--timeout=20s")
    hist = _lines(kubectl(*k, "rollout", "history", "deploy/api").stdout)
    assert hist[1] == ["REVISION", "CHANGE-CAUSE"] and [r[0] for r in hist[2:]] == ["1", "2"]
    assert hist[3][1:] == ["release", "1.1"]
    assert "api:1.0" in kubectl(*k, "rollout", "history", "deploy/api", "--revision=1").stdout

    kubectl(*k, "rollout", "undo", "deploy/api")
    kubectl(*k, "rollout", "status", "deploy/api", "--timeout=20s")
    assert [r[0] for r in _lines(kubectl(*k, "rollout", "history", "deploy/api").stdout)[2:]] == [
        "2",
        "3",
    ]  # revision 1's ReplicaSet became revision 3, as on a real cluster
    image = kubectl(
        *k, "get", "deploy/api", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    )
    assert image.stdout == "api:1.0"

    before = set(kubectl(*k, "get", "pods", "-o", "name").stdout.split())
    kubectl(*k, "rollout", "restart", "deploy/api")
    kubectl(*k, "rollout", "status", "deploy/api", "--timeout=20s")
    after = set(kubectl(*k, "get", "pods", "-o", "name").stdout.split())
    assert len(after) == 2 and not before & after  # every pod replaced

    kubectl(*k, "scale", "deploy/api", "--replicas=4")
    assert _lines(kubectl(*k, "get", "deploy", "api").stdout)[1][1] == "4/4"
    kubectl(*k, "patch", "deploy", "api", "-p", '{"spec":{"replicas":1}}')
    assert _lines(kubectl(*k, "get", "deploy", "api").stdout)[1][1:4] == ["1/1", "1", "1"]
    assert len(kubectl(*k, "get", "pods", "-o", "name").stdout.split()) == 1
    describe = kubectl(*k, "describe", "deploy", "api").stdout
    assert "NewReplicaSet:" in describe and "NewReplicaSetAvailable" in describe


def test_stepped_rollout_shows_progress_and_a_crashing_image_never_completes(kubectl, ns):
    core = client.CoreV1Api(k8s_api())
    k = ("-n", ns)
    kubectl(*k, "create", "deployment", "slow", "--image=slow:1", "--replicas=3")
    kubectl(*k, "annotate", "deploy/slow", "sandbox.opslib.dev/step-seconds=1")
    kubectl(*k, "set", "image", "deploy/slow", "slow=slow:2")
    t0 = time.monotonic()
    out = kubectl(*k, "rollout", "status", "deploy/slow", "--timeout=30s").stdout
    assert "Waiting for deployment" in out and "successfully rolled out" in out
    assert time.monotonic() - t0 >= 1.5  # it took steps, it did not jump

    bad = f"slow:bad-{ns}"
    cm = (
        core.read_namespaced_config_map("sandbox-controller", "kube-system")
        if any(
            c.metadata.name == "sandbox-controller"
            for c in core.list_namespaced_config_map("kube-system").items
        )
        else None
    )
    images = set(((cm.data or {}).get("crashImages") or "").split(",")) - {""} if cm else set()
    body = {
        "metadata": {"name": "sandbox-controller"},
        "data": {"crashImages": ",".join(images | {bad})},
    }
    if cm:
        core.patch_namespaced_config_map("sandbox-controller", "kube-system", body)
    else:
        core.create_namespaced_config_map("kube-system", body)
    kubectl(*k, "set", "image", "deploy/slow", f"slow={bad}")
    res = kubectl(*k, "rollout", "status", "deploy/slow", "--timeout=4s", check=False)
    assert res.returncode != 0 and "new replicas have been updated" in res.stdout
    pods = _lines(kubectl(*k, "get", "pods").stdout)[1:]
    assert any(p[2] == "CrashLoopBackOff" for p in pods)
    assert sum(p[2] == "Running" and p[1] == "1/1" for p in pods) >= 2  # the old ones still serve
