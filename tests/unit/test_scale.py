"""The scale flow against the session sandbox: refusals before anything changes, one approved
change per kind family checked with the AWS CLI, the autoscaler's bounds, an API error halfway
and a wait that times out. Notebook runs are in tests/notebooks/test_scale.py."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import boto3
import pytest

from opslib.clients import aws_client
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.plans import ChangeStatus
from opslib.core.progress import no_progress
from opslib.runbooks import scale
from opslib.safety import gate

pytestmark = pytest.mark.timeout(240)


def cli(*args: str) -> dict:
    out = subprocess.run(
        ["aws", *args, "--output", "json", "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# --- refused before any client is built --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_kind": "lambda", "target": "x"}, "target_kind='lambda': give one of"),
        (
            {"target_kind": "ecs-service", "target": "c/s", "desired": 3, "delta": 1},
            "give one of them, not both",
        ),
        ({"target_kind": "ecs-service", "target": "c/s", "delta": 11}, "larger than max_step=10"),
        (
            {
                "target_kind": "ecs-autoscaling",
                "target": "c/s",
                "min_capacity": 5,
                "max_capacity": 2,
            },
            "max_capacity=2 is below min_capacity=5",
        ),
        (
            {"target_kind": "ecs-service", "target": "just-a-service", "desired": 2},
            "give cluster/service",
        ),
        (
            {"target_kind": "dynamodb-table", "target": "t", "desired": 2},
            "desired: not used for dynamodb-table",
        ),
        (
            {"target_kind": "dynamodb-table", "target": "t", "billing_mode": "ondemand"},
            "billing_mode='ondemand'",
        ),
        (
            {"target_kind": "rds-instance", "target": "db", "instance_class": "m5.large"},
            "give an RDS class",
        ),
        (
            {"target_kind": "k8s-hpa", "target": "ns/a", "revert_after_hours": 2},
            "give the capacity to pre-warm",
        ),
        (
            {
                "target_kind": "ecs-service",
                "target": "c/s",
                "desired": 2,
                "revert_bundle": "/nonexistent",
            },
            "leave desired unset",
        ),
    ],
)
def test_bad_input_is_refused_before_anything(kwargs, message):
    with pytest.raises(BadInputError, match=message):
        scale.inputs(**kwargs)


def test_every_bad_parameter_is_named_at_once():
    with pytest.raises(BadInputError) as e:
        scale.inputs(
            "eks-nodegroup",
            "c/ng",
            desired=3,
            delta=1,
            min_capacity=4,
            max_capacity=1,
            watch_minutes=999,
        )
    text = str(e.value)
    for name in (
        "desired=3 and delta=1",
        "max_capacity=1",
        "watch_minutes=999",
        "Nothing was changed",
    ):
        assert name in text


# --- ECS: the autoscaler's bounds, an API error halfway, a wait that times out ----------------


@pytest.fixture
def service(sandbox):
    """A service of our own (2 tasks) with a scalable target min 2 / max 4, removed after."""
    ecs, aas = aws_client("ecs"), aws_client("application-autoscaling")
    cluster = f"scale-{uuid.uuid4().hex[:6]}"
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=f"{cluster}-api",
        containerDefinitions=[{"name": "api", "image": "api:1", "memory": 256, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition=td, desiredCount=2)
    ecs.update_service(cluster=cluster, service="api", desiredCount=2)
    deadline = time.monotonic() + 30  # the sandbox starts tasks a moment later
    while (
        ecs.describe_services(cluster=cluster, services=["api"])["services"][0]["runningCount"] != 2
    ):
        assert time.monotonic() < deadline, "the service never reached 2 running tasks"
        time.sleep(0.3)
    rid = f"service/{cluster}/api"
    aas.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=rid,
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=2,
        MaxCapacity=4,
    )
    yield cluster
    aas.deregister_scalable_target(
        ServiceNamespace="ecs", ResourceId=rid, ScalableDimension="ecs:service:DesiredCount"
    )
    ecs.delete_service(cluster=cluster, service="api", force=True)
    ecs.delete_cluster(cluster=cluster)


def _run(inp, conns, *, timeout_s=20.0):
    cur = scale.current(inp, conns)
    prop = scale.propose(inp, cur)
    applied = gate(prop.plan, dry_run=False, approved_by="unit", execute=scale.executor(conns))
    done = scale.settle(
        inp, conns, prop, applied, timeout_s=timeout_s, poll_s=0.3, progress=no_progress
    )
    return cur, prop, applied, done


def test_scale_in_below_the_autoscaling_minimum_is_refused_or_moves_the_minimum(service):
    inp = scale.inputs("ecs-service", f"{service}/api", desired=1, watch_minutes=0)
    conns = scale.connect(inp)
    cur = scale.current(inp, conns)
    assert cur.numbers == {"desired": 2, "running": 2} and cur.bounds == {"min": 2, "max": 4}
    with pytest.raises(BadInputError, match="below the minimum 2 .* give min_capacity<=1"):
        scale.propose(inp, cur)
    inp = scale.inputs("ecs-service", f"{service}/api", desired=1, min_capacity=1, watch_minutes=0)
    cur, prop, applied, done = _run(inp, conns)
    assert [c.action for c in prop.plan.changes] == [
        "application-autoscaling:RegisterScalableTarget",
        "ecs:UpdateService",
    ]  # the minimum moves first, or the scaler would undo the count
    assert any("bounds 2..4 -> 1..4" in w for w in prop.plan.warnings)
    assert done.live and done.after.numbers == {"desired": 1, "running": 1}
    svc = cli("ecs", "describe-services", "--cluster", service, "--services", "api")["services"][0]
    assert (svc["desiredCount"], svc["runningCount"]) == (1, 1)
    tgt = cli(
        "application-autoscaling",
        "describe-scalable-targets",
        "--service-namespace",
        "ecs",
        "--resource-ids",
        f"service/{service}/api",
    )
    assert tgt["ScalableTargets"][0]["MinCapacity"] == 1


def test_api_error_halfway_leaves_evidence_of_what_changed(service, sandbox):
    from tests.unit.faultproxy import FaultProxy

    inp = scale.inputs("ecs-service", f"{service}/api", desired=5, max_capacity=6, watch_minutes=0)
    direct = scale.connect(inp)
    with FaultProxy(
        os.environ["AWS_ENDPOINT_URL"], errors={"UpdateService": "AccessDeniedException"}
    ) as proxy:
        denied = boto3.client(
            "ecs",
            endpoint_url=proxy.url,
            region_name=direct.ecs.meta.region_name,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        conns = scale.Connections(**{**direct.__dict__, "ecs": denied})
        cur, prop, applied, done = _run(inp, conns, timeout_s=2)
    assert [o.status for o in applied.outcomes] == [ChangeStatus.APPLIED, ChangeStatus.FAILED]
    assert "AccessDenied" in applied.outcomes[1].detail
    assert any("ecs:UpdateService" in f.title and f.severity == "error" for f in done.findings)
    res = scale.result(inp, cur, prop, done, applied)
    assert res.applied is True and res.after["autoscaler_max"] == 6 and res.after["desired"] == 2
    assert [c["status"] for c in res.changes] == ["applied", "failed"]
    assert (
        cli("ecs", "describe-services", "--cluster", service, "--services", "api")["services"][0][
            "desiredCount"
        ]
        == 2
    )


def test_a_wait_that_times_out_is_recorded_not_raised(service):
    ecs = aws_client("ecs")
    arn = ecs.describe_services(cluster=service, services=["api"])["services"][0]["serviceArn"]
    ecs.tag_resource(
        resourceArn=arn, tags=[{"key": "sandbox.opslib.dev/capacity", "value": "stuck"}]
    )
    inp = scale.inputs("ecs-service", f"{service}/api", delta=2, watch_minutes=0)
    conns = scale.connect(inp)
    cur, prop, applied, done = _run(inp, conns, timeout_s=1.5)
    assert applied.applied == 1 and done.applied and not done.live
    assert "not live after 2 s" in done.note and "runningCount == desiredCount" in done.note
    assert done.after.numbers == {"desired": 4, "running": 2}
    assert any(f.severity == "critical" for f in done.findings)


# --- the other kinds: read, plan, apply, checked by the AWS CLI -------------------------------


def test_eks_nodegroup_scales_within_its_bounds(sandbox):
    from opslib import sandbox as sb

    inp = scale.inputs("eks-nodegroup", "fintech-eks/general", delta=1, watch_minutes=0)
    conns = scale.connect(inp)
    try:
        cur, prop, applied, done = _run(inp, conns)
        assert cur.numbers == {"desired": 3, "min": 2, "max": 6}
        assert done.live and done.after.numbers["desired"] == 4
        ng = cli(
            "eks",
            "describe-nodegroup",
            "--cluster-name",
            "fintech-eks",
            "--nodegroup-name",
            "general",
        )
        assert ng["nodegroup"]["scalingConfig"]["desiredSize"] == 4
        with pytest.raises(BadInputError, match="above the maximum 6"):
            scale.propose(
                scale.inputs("eks-nodegroup", "fintech-eks/general", desired=7), done.after
            )
    finally:
        assert sb.seed(["capacity"]) == {"capacity": ""}


def test_missing_target_is_refused(sandbox):
    inp = scale.inputs("dynamodb-table", "no-such-table", billing_mode="PAY_PER_REQUEST")
    with pytest.raises(NotFoundError):
        scale.current(inp, scale.connect(inp))


def test_rds_class_change_says_downtime_and_cost(sandbox):
    rds = aws_client("rds")
    name = f"scale-db-{uuid.uuid4().hex[:6]}"
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    try:
        inp = scale.inputs("rds-instance", name, instance_class="db.r6g.large", watch_minutes=0)
        conns = scale.connect(inp)
        cur, prop, applied, done = _run(inp, conns)
        assert prop.plan.changes[0].params["apply_immediately"] is True
        assert any(w.startswith("DOWNTIME") and "single-AZ" in w for w in prop.plan.warnings)
        assert any("db.r6g.large: about $164.25 per month" in c for c in prop.costs)
        assert done.live
        got = cli("rds", "describe-db-instances", "--db-instance-identifier", name)["DBInstances"][
            0
        ]
        assert got["DBInstanceClass"] == "db.r6g.large"
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)


def test_elasticache_node_type_change(sandbox):
    ec = aws_client("elasticache")
    name = f"scale-{uuid.uuid4().hex[:6]}"
    ec.create_replication_group(
        ReplicationGroupId=name,
        ReplicationGroupDescription="unit",
        CacheNodeType="cache.t3.small",
        Engine="redis",
        NumCacheClusters=1,
    )
    try:
        inp = scale.inputs(
            "elasticache-cluster", name, instance_class="cache.r6g.large", watch_minutes=0
        )
        conns = scale.connect(inp)
        cur, prop, applied, done = _run(inp, conns)
        assert prop.plan.changes[0].action == "elasticache:ModifyReplicationGroup CacheNodeType"
        assert any(w.startswith("DOWNTIME") for w in prop.plan.warnings)
        got = cli("elasticache", "describe-replication-groups", "--replication-group-id", name)
        assert got["ReplicationGroups"][0]["CacheNodeType"] == "cache.r6g.large"
    finally:
        ec.delete_replication_group(ReplicationGroupId=name)


def test_dynamodb_second_switch_to_on_demand_within_24h_is_refused(sandbox):
    ddb = aws_client("dynamodb")
    name = f"scale-{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        inp = scale.inputs(
            "dynamodb-table",
            name,
            billing_mode="PROVISIONED",
            read_capacity=10,
            write_capacity=5,
            watch_minutes=0,
        )
        conns = scale.connect(inp)
        cur, prop, applied, done = _run(inp, conns)
        assert done.live and done.after.numbers == {
            "billing_mode": "PROVISIONED",
            "read_capacity": 10,
            "write_capacity": 5,
        }
        assert any("about $" in c for c in prop.costs)
        ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")  # switched once today
        ddb.update_table(
            TableName=name,
            BillingMode="PROVISIONED",
            ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        )
        again = scale.inputs("dynamodb-table", name, billing_mode="PAY_PER_REQUEST")
        with pytest.raises(BadInputError, match="less than 24 h ago"):
            scale.propose(again, scale.current(again, conns))
    finally:
        ddb.delete_table(TableName=name)


def test_k8s_deployment_below_its_hpa_minimum_is_refused(sandbox):
    inp = scale.inputs("k8s-deployment", "fintech-banking/auth-service", desired=1)
    conns = scale.connect(inp)
    cur = scale.current(inp, conns)
    assert cur.bounds == {"min": 2, "max": 6} and cur.facts["hpa cpu %"] == 85.0
    with pytest.raises(
        BadInputError, match="below the minimum 2 of HPA fintech-banking/auth-service"
    ):
        scale.propose(inp, cur)


def test_evidence_reads_utilisation_and_the_alb_against_the_thresholds(sandbox):
    from opslib import sandbox as sb

    lb = sb.presets("latency-triage")["load_balancer"]
    inp = scale.inputs("ecs-service", "fintech-cluster/fintech-api-service", load_balancer=lb)
    conns = scale.connect(inp)
    cur = scale.current(inp, conns)
    assert (
        cur.bounds == {"min": 2, "max": 10} and "scale-in cooldown 300 s" in cur.facts["cooldowns"]
    )
    ev = scale.metrics.evidence(inp, conns, cur)
    labels = {r.label: r for r in ev.readings.readings}
    assert {"CPU %", "memory %", "ALB p99 s", "ALB target 5xx"} <= set(labels)
    assert labels["ALB p99 s"].value is not None and labels["CPU %"].warn == 70.0
    # one finding per reading over its threshold, at that reading's level, and none for the rest
    over = {r.label: r.level for r in ev.readings.readings if r.level in ("warning", "critical")}
    named = {
        label: f.severity.value for f in ev.findings for label in over if f": {label} " in f.title
    }
    assert named == over and len(ev.findings) >= len(over)


def test_watch_samples_the_window_since_the_change_and_is_bounded(sandbox, capsys):
    import datetime as dt

    inp = scale.inputs("dynamodb-table", "fintech-rate-limits", watch_minutes=1)
    conns = scale.connect(inp)
    cur = scale.current(inp, conns)
    t0 = time.monotonic()
    ev = scale.metrics.watch(
        inp, conns, cur, since=dt.datetime.now(dt.UTC), poll_s=0.2, duration_s=0.5
    )
    assert time.monotonic() - t0 < 20
    assert scale.metrics.throttle_total(ev) == 0  # the seeded storm is all before "since"
    assert "watching fintech-rate-limits" in capsys.readouterr().out


def test_a_pre_warm_of_a_service_without_a_scalable_target_is_refused(service):
    """Nothing to set back to (the revert would have to deregister the target, which this runbook
    does not do): refused before anything is registered."""
    aws_client("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{service}/api",
        ScalableDimension="ecs:service:DesiredCount",
    )
    try:
        inp = scale.inputs(
            "ecs-autoscaling",
            f"{service}/api",
            min_capacity=4,
            max_capacity=8,
            revert_after_hours=2,
            watch_minutes=0,
        )
        conns = scale.connect(inp)
        cur = scale.current(inp, conns)
        assert cur.status == "no scalable target"
        with pytest.raises(BadInputError, match="revert_after_hours: .* has no scalable target"):
            scale.propose(inp, cur)
        found = cli(
            "application-autoscaling",
            "describe-scalable-targets",
            "--service-namespace",
            "ecs",
            "--resource-ids",
            f"service/{service}/api",
        )
        assert found["ScalableTargets"] == []
    finally:  # the fixture deregisters it at the end
        aws_client("application-autoscaling").register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{service}/api",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=2,
            MaxCapacity=4,
        )
