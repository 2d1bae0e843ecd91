"""opslib.k8s.workloads and opslib.k8s.events against the sandbox's Kubernetes API emulator."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from kubernetes import client

from opslib.clients import k8s_api
from opslib.core.findings import Severity
from opslib.core.plans import ChangeStatus
from opslib.k8s import events as evm
from opslib.k8s import workloads as wl
from opslib.safety import gate

pytestmark = pytest.mark.timeout(120)
IMG = "docker-pullable://x@sha256:" + "ab" * 32


def ts(ago_s: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(ns, name, *, ready, restarts=0, waiting="", last=""):
    st = {
        "name": "app",
        "image": "x",
        "imageID": IMG,
        "ready": ready,
        "restartCount": restarts,
        "state": {"waiting": {"reason": waiting}}
        if waiting
        else {"running": {"startedAt": ts(60)}},
    }
    if last:
        st["lastState"] = {"terminated": {"reason": last, "exitCode": 137}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [st],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


@pytest.fixture
def ns(sandbox):
    api = k8s_api()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    core.create_namespaced_pod(
        name,
        pod(name, "web-1", ready=False, restarts=4, waiting="CrashLoopBackOff", last="OOMKilled"),
    )
    core.create_namespaced_pod(name, pod(name, "web-2", ready=True))
    other = pod(name, "db-1", ready=False, restarts=9)
    other["metadata"]["labels"] = {"app": "db"}
    core.create_namespaced_pod(name, other)
    apps.create_namespaced_deployment(
        name,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": name, "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "x"}]},
                },
            },
        },
    )
    for i, (reason, age) in enumerate((("BackOff", 60), ("OOMKilling", 120), ("Old", 7200))):
        core.create_namespaced_event(
            name,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"web-1.{i}", "namespace": name},
                "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": name},
                "reason": reason,
                "message": f"{reason} happened",
                "type": "Warning",
                "count": 3,
                "lastTimestamp": ts(age),
                "firstTimestamp": ts(age + 60),
            },
        )
    core.create_namespaced_event(
        name,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web-2.n", "namespace": name},
            "involvedObject": {"kind": "Pod", "name": "web-2", "namespace": name},
            "reason": "Pulled",
            "message": "ok",
            "type": "Normal",
            "count": 1,
            "lastTimestamp": ts(30),
        },
    )
    yield api, name
    core.delete_namespace(name)


def test_pods_with_restarts_oom_and_crashloop(ns):
    api, name = ns
    pods = wl.pod_health(api=api, namespace=name, selector="app=web")
    assert [p.name for p in pods] == ["web-1", "web-2"]  # selector applied, unhealthiest first
    bad = pods[0]
    assert (bad.ready, bad.restarts, bad.oom_killed, bad.crash_loop) == (False, 4, True, True)
    assert "CrashLoopBackOff" in bad.reasons and "last: OOMKilled" in bad.reasons
    assert wl.restarting(pods) == ["web-1"]
    f = wl.findings(pods, namespace=name, selector="app=web")
    assert f[0].severity is Severity.CRITICAL and "1 OOMKilled" in f[0].title
    assert "memory limit" in f[0].next_action
    assert wl.pods_frame(pods)["restarts"].tolist() == [4, 0]


def test_whole_namespace_and_empty_selection(ns):
    api, name = ns
    assert {p.name for p in wl.pod_health(api=api, namespace=name)} == {"web-1", "web-2", "db-1"}
    none = wl.pod_health(api=api, namespace=name, selector="app=nothing")
    assert none == () and wl.findings(none, namespace=name)[0].severity is Severity.INFO


def test_recent_warning_events_only(ns):
    api, name = ns
    events = evm.warning_events(api=api, namespace=name, since_minutes=60)
    assert [e.reason for e in events] == [
        "BackOff",
        "OOMKilling",
    ]  # newest first; Normal and old ones out
    assert evm.warning_events(api=api, namespace=name, names=("web-2",)) == ()
    f = evm.findings(events, namespace=name)
    assert f[0].severity is Severity.WARNING and "BackOff x3" in f[0].evidence
    assert list(evm.events_frame(events).columns) == [
        "last_seen",
        "object",
        "reason",
        "count",
        "message",
    ]


def test_scale_deployment_through_the_gate(ns):
    api, name = ns
    deps = wl.deployments(api=api, namespace=name, selector="app=web")
    assert [(d.name, d.replicas) for d in deps] == [("web", 2)]
    plan = wl.plan_scale(deps, scale_out_by=2)
    assert [c.effect for c in plan.changes] == ["replicas 2 -> 4"]
    assert gate(plan, dry_run=True, approved_by="", execute=wl.scaler(api=api)) is None
    assert wl.deployments(api=api, namespace=name)[0].replicas == 2
    res = gate(plan, dry_run=False, approved_by="tester", execute=wl.scaler(api=api))
    assert res.outcomes[0].status is ChangeStatus.APPLIED
    assert wl.deployments(api=api, namespace=name)[0].replicas == 4
    assert wl.scale(plan.changes[0], api=api).status is ChangeStatus.SKIPPED  # stale plan


def test_scale_blast_radius(ns):
    api, name = ns
    deps = wl.deployments(api=api, namespace=name)
    assert wl.plan_scale(deps, scale_out_by=0).changes == ()
    with pytest.raises(Exception, match="blast-radius"):
        wl.plan_scale(deps * 4, scale_out_by=1, max_deployments=3)
