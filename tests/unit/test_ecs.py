"""opslib.aws.ecs against the sandbox's AWS API server: a service with OOM-killed tasks, then a gated scale."""

from __future__ import annotations

import json
import uuid

import pytest

from opslib.aws import ecs as ecsm
from opslib.clients import aws_client
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.findings import Severity
from opslib.core.plans import ChangeStatus
from opslib.safety import gate

pytestmark = pytest.mark.timeout(120)

OOM = "Essential container in task exited: OutOfMemoryError: Container killed due to memory usage"


@pytest.fixture
def service(sandbox):
    ecs, ec2 = aws_client("ecs"), aws_client("ec2")
    cluster, name = f"c-{uuid.uuid4().hex[:6]}", "api"
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=f"{cluster}-api", containerDefinitions=[{"name": "api", "image": "x", "memory": 256}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=3)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ecs.register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps({"instanceId": inst})
    )
    tasks = ecs.run_task(cluster=cluster, taskDefinition=td, count=2, group=f"service:{name}")[
        "tasks"
    ]
    for t in tasks:
        ecs.stop_task(cluster=cluster, task=t["taskArn"], reason=OOM)
    return ecs, cluster, name


def test_health_reports_desired_running_and_oom_stops(service):
    ecs, cluster, name = service
    h = ecsm.service_health(ecs=ecs, cluster=cluster, service=name)
    assert (h.desired, h.status) == (3, "ACTIVE")
    assert len(h.stopped) == 2 and h.oom_stops == 2
    assert all(t.stop_reason == OOM for t in h.stopped)
    f = ecsm.findings(h)
    stop = next(x for x in f if "stopped recently" in x.title)
    assert stop.severity is Severity.WARNING and "2 out of memory" in stop.title
    assert "memory" in stop.next_action
    assert list(h.to_frame().columns)[:6] == [
        "cluster",
        "service",
        "status",
        "desired",
        "running",
        "pending",
    ]


def test_missing_service_is_not_found(service):
    ecs, cluster, _ = service
    with pytest.raises(NotFoundError, match="not found"):
        ecsm.service_health(ecs=ecs, cluster=cluster, service="nope")


def test_scale_out_is_planned_then_applied_only_with_approval(service):
    ecs, cluster, name = service
    h = ecsm.service_health(ecs=ecs, cluster=cluster, service=name)
    plan = ecsm.plan_scale(h, scale_out_by=2)
    assert [c.effect for c in plan.changes] == ["desiredCount 3 -> 5"]
    assert any("memory" in w for w in plan.warnings)
    assert gate(plan, dry_run=True, approved_by="x", execute=ecsm.scaler(ecs=ecs)) is None
    assert ecsm.service_health(ecs=ecs, cluster=cluster, service=name).desired == 3
    res = gate(plan, dry_run=False, approved_by="tester", execute=ecsm.scaler(ecs=ecs))
    assert res.outcomes[0].status is ChangeStatus.APPLIED
    assert ecsm.service_health(ecs=ecs, cluster=cluster, service=name).desired == 5
    # the same plan again is stale (desired is no longer 3): skipped, not applied twice
    again = ecsm.scale(plan.changes[0], ecs=ecs)
    assert again.status is ChangeStatus.SKIPPED
    assert ecsm.service_health(ecs=ecs, cluster=cluster, service=name).desired == 5


def test_scale_limits(service):
    ecs, cluster, name = service
    h = ecsm.service_health(ecs=ecs, cluster=cluster, service=name)
    assert ecsm.plan_scale(h, scale_out_by=0).changes == ()
    with pytest.raises(BadInputError):
        ecsm.plan_scale(h, scale_out_by=-1)
    with pytest.raises(BadInputError, match="blast-radius"):
        ecsm.plan_scale(h, scale_out_by=ecsm.MAX_SCALE_OUT + 1)
