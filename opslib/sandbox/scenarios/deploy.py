"""Sandbox scenario for deploy-rollback and rolling-restart: a bad release on both platforms.

What it seeds:

- Kubernetes, namespace ``fintech-banking`` (beside the latency scenario's ``auth-service`` and
  the secrets scenario's ``account-service``, which this one never touches: scenarios seed in
  parallel): ``transaction-service``, ``payment-service``, ``notification-service``;
  ``payment-service`` has three revisions (2.3.0, 2.4.0, then 2.4.1, with change-causes), and
  2.4.1 crash-loops (the emulator's ``crashImages``), so its rollout stalled: one new pod in
  CrashLoopBackOff, the old ReplicaSet still serving, the Progressing condition past its
  deadline (backdated, as if the deploy happened 20 minutes ago);
- ECS: the family of ``fintech-api-service`` (cluster ``fintech-cluster``, from the latency
  scenario) gets revisions 2 (``fintech/api:1.43.0``) and 3 (``fintech/api:1.44.0``, whose
  deployment the sandbox's AWS server makes FAIL), and the service is updated to 3.

Reseeding resets these Kubernetes deployments; on ECS it reuses the revisions when the newest is
still the bad one, else registers a new good/bad pair. Scenarios seed in parallel threads, so
the ECS part first waits (bounded) for the latency scenario's service.
"""

from __future__ import annotations

import datetime as dt
import time

from opslib.core.errors import SandboxError

RUNBOOKS: tuple[str, ...] = ("deploy-rollback", "rolling-restart")

NAMESPACE = "fintech-banking"
#: the deployments this scenario owns (account-service belongs to the secrets scenario)
SERVICES = ("transaction-service", "payment-service", "notification-service")
BAD = "payment-service"
BAD_IMAGE = "fintech/payment-service:2.4.1"
RELEASES = (
    ("fintech/payment-service:2.3.0", "release 2.3.0"),
    ("fintech/payment-service:2.4.0", "release 2.4.0: faster settlement batching"),
    (BAD_IMAGE, "release 2.4.1: new connection pool"),
)
REPLICAS = 3
LABEL = "sandbox.opslib.dev/scenario"
CONTROLLER_CONFIG = ("kube-system", "sandbox-controller")

ECS_CLUSTER = "fintech-cluster"
ECS_SERVICE = "fintech-api-service"
ECS_IMAGES = ("fintech/api:1.42.0", "fintech/api:1.43.0", "fintech/api:1.44.0")
ECS_WAIT_S = 120.0  # for the latency scenario's service, seeded in a parallel thread
FAILS_TAG = {"key": "sandbox.opslib.dev/rollout", "value": "fails"}


def _deployment(name: str, image: str, cause: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": name, LABEL: "deploy"},
            "annotations": {"kubernetes.io/change-cause": cause},
        },
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "resources": {"limits": {"memory": "512Mi"}},
                        }
                    ]
                },
            },
        },
    }


def seed_k8s(ctx) -> None:
    """The four services, payment-service three revisions deep with the last one crash-looping."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = ctx.k8s()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    ns, name = CONTROLLER_CONFIG
    cm = core.list_namespaced_config_map(ns, field_selector=f"metadata.name={name}").items
    crash = set()
    if cm and cm[0].data:
        crash = {i for i in (cm[0].data.get("crashImages") or "").split(",") if i}
    crash.add(BAD_IMAGE)
    body = {"metadata": {"name": name}, "data": {"crashImages": ",".join(sorted(crash))}}
    if cm:
        core.patch_namespaced_config_map(name, ns, body)
    else:
        core.create_namespaced_config_map(ns, body)
    for svc in SERVICES:
        try:
            apps.delete_namespaced_deployment(svc, NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise
    for svc in SERVICES:
        if svc == BAD:
            continue
        apps.create_namespaced_deployment(
            NAMESPACE, _deployment(svc, f"fintech/{svc}:1.8.2", "release 1.8.2")
        )
    image, cause = RELEASES[0]
    apps.create_namespaced_deployment(NAMESPACE, _deployment(BAD, image, cause))
    for image, cause in RELEASES[1:]:
        apps.patch_namespaced_deployment(
            BAD,
            NAMESPACE,
            {
                "metadata": {"annotations": {"kubernetes.io/change-cause": cause}},
                "spec": {"template": {"spec": {"containers": [{"name": BAD, "image": image}]}}},
            },
        )
    # the bad rollout stalled 20 minutes ago: backdate its Progressing condition; the emulator
    # then reports ProgressDeadlineExceeded, as a cluster would once progressDeadlineSeconds pass
    dep = apps.read_namespaced_deployment(BAD, NAMESPACE)
    then = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conds = [
        {
            "type": c.type,
            "status": c.status,
            "reason": c.reason,
            "message": c.message,
            "lastUpdateTime": then,
            "lastTransitionTime": then,
        }
        for c in dep.status.conditions or []
    ]
    apps.patch_namespaced_deployment_status(BAD, NAMESPACE, {"status": {"conditions": conds}})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        dep = apps.read_namespaced_deployment(BAD, NAMESPACE)
        reasons = {c.reason for c in dep.status.conditions or []}
        if "ProgressDeadlineExceeded" in reasons:
            return
        time.sleep(0.2)
    raise SandboxError(f"{NAMESPACE}/{BAD}: the stalled rollout was not reported as failed")


def _revisions(ecs) -> list[dict]:
    arns = ecs.list_task_definitions(familyPrefix=ECS_SERVICE).get("taskDefinitionArns", [])
    arns.sort(
        key=lambda a: int(a.rsplit(":", 1)[-1]), reverse=True
    )  # the local server ignores sort
    return [ecs.describe_task_definition(taskDefinition=a, include=["TAGS"]) for a in arns[:1]]


def seed_ecs(ctx) -> str:
    """Revisions good (1.43.0) and bad (1.44.0) on top of the latency scenario's, the service on
    the bad one; returns the bad revision's ARN."""
    ecs = ctx.aws("ecs")
    deadline = time.monotonic() + ECS_WAIT_S
    while True:  # the latency scenario creates the service (first its task definition, rev 1)
        svc = ecs.describe_services(cluster=ECS_CLUSTER, services=[ECS_SERVICE]).get("services")
        if svc and svc[0].get("status") == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise SandboxError(
                f"ECS {ECS_CLUSTER}/{ECS_SERVICE} did not appear within {ECS_WAIT_S:.0f}s: the "
                "latency scenario seeds it; see its error in `opslib sandbox status`"
            )
        time.sleep(1)
    revs = _revisions(ecs)
    newest = revs[0] if revs else None
    if newest is not None and FAILS_TAG in (newest.get("tags") or []):
        bad = newest["taskDefinition"]["taskDefinitionArn"]
    else:
        arn = ""
        for image in ECS_IMAGES[1:]:
            extra = {"tags": [FAILS_TAG]} if image == ECS_IMAGES[-1] else {}
            arn = ecs.register_task_definition(
                family=ECS_SERVICE,
                containerDefinitions=[
                    {
                        "name": "api",
                        "image": image,
                        "memory": 512,
                        "cpu": 256,
                        "essential": True,
                        "environment": [
                            {"name": "DB_HOST", "value": "fintech-banking-db.cluster.local"},
                            {"name": "FEATURE_FAST_SETTLEMENT", "value": "true"},
                        ],
                    }
                ],
                cpu="256",
                memory="512",
                **extra,
            )["taskDefinition"]["taskDefinitionArn"]
        bad = arn
    svc = ecs.describe_services(cluster=ECS_CLUSTER, services=[ECS_SERVICE])["services"]
    if svc[0]["taskDefinition"] != bad:
        ecs.update_service(cluster=ECS_CLUSTER, service=ECS_SERVICE, taskDefinition=bad)
    # the incident is a deployment that FAILED: wait (bounded) until the server says so
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        deps = ecs.describe_services(cluster=ECS_CLUSTER, services=[ECS_SERVICE])["services"][0][
            "deployments"
        ]
        if deps and deps[0].get("rolloutState") != "IN_PROGRESS":
            return bad
        time.sleep(0.5)
    raise SandboxError(f"ECS {ECS_CLUSTER}/{ECS_SERVICE}: the bad deployment never settled")


def seed(ctx) -> dict[str, dict]:
    """(Re)create the bad release on both platforms; presets for both runbooks."""
    seed_k8s(ctx)
    seed_ecs(ctx)
    region = ctx.info.region
    return {
        "deploy-rollback": {
            "platform": "kubernetes",
            "namespace": NAMESPACE,
            "deployment": BAD,
            "ecs_cluster": ECS_CLUSTER,
            "ecs_service": ECS_SERVICE,
            "region": region,
        },
        "rolling-restart": {
            "platform": "kubernetes",
            "namespace": NAMESPACE,
            "deployments": "account-service,transaction-service,notification-service",
            "ecs_cluster": ECS_CLUSTER,
            "ecs_services": ECS_SERVICE,
            "pause_seconds": 2,
            "region": region,
        },
    }
