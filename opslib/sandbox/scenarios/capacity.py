"""Sandbox scenario for scale: a throttled provisioned table, an ECS service with autoscaling,
an HPA, an EKS node group.

What it seeds:

- DynamoDB ``fintech-rate-limits``, PROVISIONED at 5 read / 5 write units, with throttle
  events (``ThrottledRequests``, ``ReadThrottleEvents``, ``WriteThrottleEvents``) and consumed
  capacity at the provisioned ceiling over the last 30 minutes in CloudWatch (moto has no
  throttling: the series are put, see :mod:`opslib.sandbox.aws_capacity`). Its own table,
  not ``fintech-sessions``: the pitr scenario recreates that one on demand (PAY_PER_REQUEST)
  and its restore tests read it, so a billing switch there would race them.
- Application Auto Scaling: a scalable target for ``fintech-api-service`` (cluster
  ``fintech-cluster``, from the latency scenario, waited for) with min 2 / max 10 and a CPU
  target-tracking policy (70 %, cooldowns 60 s out / 300 s in).
- Kubernetes: HPA ``auth-service`` (namespace ``fintech-banking``, over the latency scenario's
  deployment) with min 2 / max 6, CPU target 70 % and a status reporting 85 %.
- EKS: cluster ``fintech-eks`` with managed node group ``general`` (min 2, max 6, desired 3).

Reseeding recreates the table and resets the scalable target, the HPA and the node group.
"""

from __future__ import annotations

import datetime as dt
import json
import time

from opslib.core.errors import SandboxError

RUNBOOKS: tuple[str, ...] = ("scale",)

TABLE = "fintech-rate-limits"
TABLE_UNITS = 5
ECS_CLUSTER = "fintech-cluster"
ECS_SERVICE = "fintech-api-service"
ECS_MIN, ECS_MAX = 2, 10
ECS_WAIT_S = 120.0  # for the latency scenario's service, seeded in a parallel thread
NAMESPACE = "fintech-banking"
HPA = "auth-service"
HPA_MIN, HPA_MAX = 2, 6
EKS_CLUSTER = "fintech-eks"
NODEGROUP = "general"
NODES = {"minSize": 2, "maxSize": 6, "desiredSize": 3}
METRIC_MINUTES = 30
METRIC_REUSE_MINUTES = 30  # the AWS server keeps every datapoint: do not pile up copies


def seed_table(ctx) -> None:
    ddb = ctx.aws("dynamodb")
    try:
        ddb.delete_table(TableName=TABLE)
        ddb.get_waiter("table_not_exists").wait(
            TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    except ddb.exceptions.ResourceNotFoundException:
        pass  # first seed
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "client_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "client_id", "AttributeType": "S"}],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": TABLE_UNITS, "WriteCapacityUnits": TABLE_UNITS},
        Tags=[{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "sandbox"}],
    )
    ddb.get_waiter("table_exists").wait(
        TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def seed_metrics(ctx, now: dt.datetime | None = None) -> None:
    """Throttles and consumed capacity at the ceiling, once per METRIC_REUSE_MINUTES."""
    now = now or dt.datetime.now(dt.UTC)
    state_file = ctx.scenario_dir("capacity") / "metrics.json"
    try:
        state = json.loads(state_file.read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    if state.get("endpoint") == ctx.info.aws_endpoint and state.get("seeded_at"):
        age = now - dt.datetime.fromisoformat(state["seeded_at"])
        if dt.timedelta(0) <= age <= dt.timedelta(minutes=METRIC_REUSE_MINUTES):
            return
    cw = ctx.aws("cloudwatch")
    dims = [{"Name": "TableName", "Value": TABLE}]
    data = []
    for m in range(METRIC_MINUTES, 0, -1):
        ts = (now - dt.timedelta(minutes=m)).replace(second=0, microsecond=0)
        burst = 40 + (m % 7) * 5  # a steady storm of throttled reads, some writes
        for name, value in (
            ("ReadThrottleEvents", burst),
            ("WriteThrottleEvents", burst // 4),
            ("ThrottledRequests", burst + burst // 4),
            ("ConsumedReadCapacityUnits", TABLE_UNITS * 60),
            ("ConsumedWriteCapacityUnits", TABLE_UNITS * 60),
        ):
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": dims,
                    "Timestamp": ts,
                    "Value": float(value),
                    "Unit": "Count",
                }
            )
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/DynamoDB", MetricData=data[i : i + 500])
    state_file.write_text(
        json.dumps({"seeded_at": now.isoformat(), "endpoint": ctx.info.aws_endpoint})
    )


def seed_autoscaling(ctx) -> None:
    ecs = ctx.aws("ecs")
    deadline = time.monotonic() + ECS_WAIT_S
    while True:  # the latency scenario creates the service
        svc = ecs.describe_services(cluster=ECS_CLUSTER, services=[ECS_SERVICE]).get("services")
        if svc and svc[0].get("status") == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise SandboxError(
                f"ECS {ECS_CLUSTER}/{ECS_SERVICE} did not appear within {ECS_WAIT_S:.0f}s: the "
                "latency scenario seeds it; see its error in `opslib sandbox status`"
            )
        time.sleep(1)
    aas = ctx.aws("application-autoscaling")
    rid = f"service/{ECS_CLUSTER}/{ECS_SERVICE}"
    dim = "ecs:service:DesiredCount"
    aas.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=rid,
        ScalableDimension=dim,
        MinCapacity=ECS_MIN,
        MaxCapacity=ECS_MAX,
    )
    aas.put_scaling_policy(
        PolicyName="cpu-target-70",
        ServiceNamespace="ecs",
        ResourceId=rid,
        ScalableDimension=dim,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
            },
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 300,
        },
    )


def _hpa_body() -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": HPA,
            "namespace": NAMESPACE,
            "labels": {"sandbox.opslib.dev/scenario": "capacity"},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": HPA},
            "minReplicas": HPA_MIN,
            "maxReplicas": HPA_MAX,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def seed_hpa(ctx) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = ctx.k8s()
    core, auto = client.CoreV1Api(api), client.AutoscalingV2Api(api)
    try:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    try:
        auto.delete_namespaced_horizontal_pod_autoscaler(HPA, NAMESPACE)
    except ApiException as exc:
        if exc.status != 404:
            raise
    auto.create_namespaced_horizontal_pod_autoscaler(NAMESPACE, _hpa_body())
    status = {
        "currentReplicas": 3,
        "desiredReplicas": 4,
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "current": {"averageUtilization": 85, "averageValue": "425m"},
                },
            }
        ],
        "conditions": [
            {
                "type": "AbleToScale",
                "status": "True",
                "reason": "ReadyForNewScale",
                "message": "recommended size matches current size",
                "lastTransitionTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
    }
    auto.patch_namespaced_horizontal_pod_autoscaler_status(HPA, NAMESPACE, {"status": status})


def seed_eks(ctx) -> None:
    eks = ctx.aws("eks")
    role = "arn:aws:iam::123456789012:role/fintech-eks"
    try:
        eks.describe_cluster(name=EKS_CLUSTER)
    except eks.exceptions.ResourceNotFoundException:
        eks.create_cluster(
            name=EKS_CLUSTER, roleArn=role, resourcesVpcConfig={"subnetIds": ["subnet-0a1b2c3d"]}
        )
    try:
        eks.describe_nodegroup(clusterName=EKS_CLUSTER, nodegroupName=NODEGROUP)
        eks.update_nodegroup_config(
            clusterName=EKS_CLUSTER, nodegroupName=NODEGROUP, scalingConfig=NODES
        )
    except eks.exceptions.ResourceNotFoundException:
        eks.create_nodegroup(
            clusterName=EKS_CLUSTER,
            nodegroupName=NODEGROUP,
            scalingConfig=NODES,
            subnets=["subnet-0a1b2c3d"],
            nodeRole=role,
            instanceTypes=["m5.large"],
        )


def seed(ctx) -> dict[str, dict]:
    """(Re)create the capacity incident; presets: the throttled table, switched to on-demand
    as a pre-warm that records its revert."""
    seed_table(ctx)
    seed_metrics(ctx)
    seed_hpa(ctx)
    seed_eks(ctx)
    seed_autoscaling(ctx)
    return {
        "scale": {
            "target_kind": "dynamodb-table",
            "target": TABLE,
            "billing_mode": "PAY_PER_REQUEST",
            "revert_after_hours": 6,
            "watch_minutes": 1,
            "region": ctx.info.region,
        }
    }
