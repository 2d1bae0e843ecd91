"""opslib.aws.ecs_deploy against the sandbox's AWS server, checked with the AWS CLI.

moto alone adds no deployment on UpdateService; the sandbox's server (opslib.sandbox.aws_server)
adds one, PRIMARY and IN_PROGRESS, that COMPLETES (or FAILS for a task definition tagged
``sandbox.opslib.dev/rollout=fails``) a few seconds later. The CLI's describe-services shows the
calls landed in order: the rollback's deployment is PRIMARY, created after the failed one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from opslib.aws import ecs_deploy
from opslib.clients import aws_client
from opslib.core.errors import NotFoundError, PreflightError
from opslib.core.plans import ChangeStatus
from opslib.core.progress import no_progress
from opslib.safety import gate

pytestmark = pytest.mark.timeout(180)
FAILS = {"key": "sandbox.opslib.dev/rollout", "value": "fails"}


@pytest.fixture
def service(sandbox):
    ecs = aws_client("ecs")
    cluster = f"c-{uuid.uuid4().hex[:6]}"
    ecs.create_cluster(clusterName=cluster)
    arns = []
    for i, image in enumerate(("api:1", "api:2", "api:3")):
        arns.append(
            ecs.register_task_definition(
                family=f"{cluster}-api",
                containerDefinitions=[
                    {
                        "name": "api",
                        "image": image,
                        "memory": 256,
                        "environment": [{"name": "DB_PASSWORD_REF", "value": "s3cr3t-value"}],
                    }
                ],
                **({"tags": [FAILS]} if i == 2 else {}),
            )["taskDefinition"]["taskDefinitionArn"]
        )
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition=arns[1], desiredCount=2)
    ecs.update_service(cluster=cluster, service="api", taskDefinition=arns[2])  # the bad release
    return ecs, cluster, arns


def aws_cli(*args: str) -> dict:
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed")
    out = subprocess.run(
        ["aws", *args, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_history_names_revisions_env_names_only(service):
    ecs, cluster, arns = service
    h = ecs_deploy.history(ecs=ecs, cluster=cluster, service="api")
    assert [t.revision for t in h.revisions] == [3, 2, 1]
    assert h.current.arn == arns[2] and h.previous().arn == arns[1]
    assert h.revisions[0].env_names == ("DB_PASSWORD_REF",)
    frame = h.to_frame()
    assert "s3cr3t-value" not in frame.to_string()  # names, never values
    assert [d.status for d in h.deployments] == ["PRIMARY", "ACTIVE"]
    diff = ecs_deploy.diff(h.current, h.previous())
    assert diff.set_index("field").loc["images", "changed"]


def test_plan_refuses_current_missing_and_unknown_service(service):
    ecs, cluster, _ = service
    ecs_deploy.wait_deployment(
        ecs=ecs,
        cluster=cluster,
        service="api",
        task_definition=service[2][2],
        timeout_s=20,
        progress=no_progress,
    )
    h = ecs_deploy.history(ecs=ecs, cluster=cluster, service="api")
    with pytest.raises(PreflightError, match="changes nothing"):
        ecs_deploy.plan_rollback(h, to_revision=3)
    with pytest.raises(PreflightError, match="does not exist"):
        ecs_deploy.plan_rollback(h, to_revision=7)
    with pytest.raises(NotFoundError):
        ecs_deploy.history(ecs=ecs, cluster=cluster, service="nope")


def test_rollback_completes_and_the_cli_agrees(service):
    ecs, cluster, arns = service
    failed = ecs_deploy.wait_deployment(
        ecs=ecs,
        cluster=cluster,
        service="api",
        task_definition=arns[2],
        timeout_s=20,
        poll_s=0.5,
        progress=no_progress,
    )
    assert failed.failed and "FAILED" in failed.message
    h = ecs_deploy.history(ecs=ecs, cluster=cluster, service="api")
    plan = ecs_deploy.plan_rollback(h)
    assert plan.changes[0].params["to_task_definition"] == arns[1]
    assert any("FAILED" in w for w in plan.warnings)
    execute = lambda c: ecs_deploy.rollback(c, ecs=ecs)  # noqa: E731
    res = gate(plan, dry_run=False, approved_by="tester", execute=execute)
    assert res.outcomes[0].status is ChangeStatus.APPLIED
    during = ecs.describe_services(cluster=cluster, services=["api"])  # at once, before it settles
    deps = during["services"][0]["deployments"]
    assert deps[0]["status"] == "PRIMARY" and deps[0]["taskDefinition"] == arns[1]
    assert deps[0]["rolloutState"] == "IN_PROGRESS"
    assert deps[0]["createdAt"] > deps[1]["createdAt"]  # the rollback's deployment came after
    done = ecs_deploy.wait_deployment(
        ecs=ecs,
        cluster=cluster,
        service="api",
        task_definition=arns[1],
        timeout_s=20,
        poll_s=0.5,
        progress=no_progress,
    )
    assert done.complete and done.running == 2
    after = aws_cli("ecs", "describe-services", "--cluster", cluster, "--services", "api")
    svc = after["services"][0]
    assert svc["taskDefinition"] == arns[1] and svc["runningCount"] == 2
    assert [(d["status"], d["rolloutState"]) for d in svc["deployments"]] == [
        ("PRIMARY", "COMPLETED")
    ]
    assert ecs_deploy.rollback(plan.changes[0], ecs=ecs).status is ChangeStatus.SKIPPED


def test_wait_times_out_with_what_is_left(service):
    ecs, cluster, arns = service
    r = ecs_deploy.wait_deployment(
        ecs=ecs,
        cluster=cluster,
        service="api",
        task_definition=arns[0],
        timeout_s=1,
        poll_s=0.5,
        progress=no_progress,
    )
    assert r.timed_out and not r.complete
    assert "not complete after 1s" in r.message and "services-stable" in r.resume
