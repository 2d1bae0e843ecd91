"""queue-ops: the flow's checks, the SQS admin adapter and the consumer scaling, on the session
sandbox (moto's SQS and CloudWatch, the Kubernetes emulator, the sandbox's ECS model).

Every test makes its own queues (test-unique names) and its own deployment; the scenario's
queues are only read. The AWS CLI and kubectl check what was changed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
import uuid

import pytest
from kubernetes import client

from opslib.aws import ecs_scale
from opslib.aws.sqs import admin
from opslib.aws.sqs.queues import queue_counts, resolve_queue
from opslib.clients import aws_client, k8s_api
from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.plans import ChangeStatus, apply, approve
from opslib.core.progress import no_progress
from opslib.k8s import scale as k8s_scale
from opslib.runbooks import queue_ops
from opslib.sandbox.scenarios.health import FILL_TAG

pytestmark = pytest.mark.timeout(300)


def aws_cli(*args: str) -> dict:
    assert shutil.which("aws"), "the AWS CLI is needed to check what moto did"
    out = subprocess.run(
        ["aws", *args, "--output", "json", "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def kubectl(sandbox, *args: str) -> str:
    assert shutil.which("kubectl"), "kubectl is needed to check the emulator"
    out = subprocess.run(
        ["kubectl", "--kubeconfig", sandbox.kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def queues(sandbox):
    """One backlog queue (1,200, filled in the server), its DLQ with 3 messages, a small queue."""
    sqs = aws_client("sqs")
    tag = f"tqo{uuid.uuid4().hex[:6]}"
    dlq = sqs.create_queue(QueueName=f"{tag}-orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"id": i, "error": "Timeout"}))
    big = sqs.create_queue(
        QueueName=f"{tag}-orders",
        tags={FILL_TAG: "1200"},
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
        },
    )["QueueUrl"]
    small = sqs.create_queue(QueueName=f"{tag}-small")["QueueUrl"]
    sqs.send_message(QueueUrl=small, MessageBody='{"card": "4111 1111 1111 1111", "id": 1}')
    return {"sqs": sqs, "tag": tag, "big": big, "dlq": dlq, "small": small}


def conns_for(inp):
    return queue_ops.connect(inp)


# --- inputs (no client) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "drain"}, "action='drain'"),
        ({"queues": "a", "action": "purge"}, "confirm_purge must repeat the queue name exactly"),
        ({"queues": "a", "action": "purge", "confirm_purge": "A"}, "confirm_purge must repeat"),
        ({"queues": "a,b", "action": "purge", "confirm_purge": "a"}, "exactly one queue"),
        ({"queues": "a*", "action": "purge", "confirm_purge": "a*"}, "exactly one queue"),
        ({"queues": "a", "action": "set-visibility"}, "visibility_timeout=0"),
        (
            {"queues": "a", "action": "set-visibility", "visibility_timeout": 43201},
            "1..43200",
        ),
        ({"action": "set-visibility", "visibility_timeout": 60}, "set-visibility needs queues"),
        ({"action": "scale-consumers", "consumers_delta": 1}, "needs consumer"),
        (
            {"action": "scale-consumers", "consumer": "k8s-deployment:ns/x", "consumers_delta": 11},
            "at most +10",
        ),
        (
            {"action": "scale-consumers", "consumer": "k8s-deployment:ns/x"},
            "non-zero consumers_delta",
        ),
        ({"consumer": "deployment/x"}, "k8s-deployment:NAMESPACE/NAME"),
        ({"queues": "bad name!"}, "not a queue name"),
        ({"max_queues": 0}, "max_queues"),
    ],
)
def test_bad_input_is_refused_before_any_client(kwargs, message):
    with pytest.raises(BadInputError, match=message.replace("+", r"\+").replace("*", r"\*")):
        queue_ops.inputs(**kwargs)


def test_inputs_parse_the_consumer_and_patterns():
    inp = queue_ops.inputs(
        "orders, orders-*,orders",
        "scale-consumers",
        consumer="ecs-service:prod/worker",
        consumers_delta=-2,
    )
    assert inp.patterns == ("orders", "orders-*")
    assert (inp.consumer_kind, inp.consumer_scope, inp.consumer_name) == (
        "ecs-service",
        "prod",
        "worker",
    )
    assert inp.consumer == "ecs-service:prod/worker"
    ok = queue_ops.inputs("q1", "purge", confirm_purge="q1")
    assert ok.action is queue_ops.Action.PURGE


# --- selection and report ----------------------------------------------------------------------


def test_select_by_prefix_and_unknown_names(queues):
    inp = queue_ops.inputs(f"{queues['tag']}-*")
    conns = conns_for(inp)
    names = [q.name for q in queue_ops.select(inp, conns)]
    assert names == sorted(f"{queues['tag']}-{n}" for n in ("orders", "orders-dlq", "small"))
    with pytest.raises(NotFoundError, match="does not exist"):
        queue_ops.select(queue_ops.inputs(f"{queues['tag']}-nope"), conns)
    with pytest.raises(NotFoundError, match=r"some start with it: write '.*-ord\*'"):
        queue_ops.select(queue_ops.inputs(f"{queues['tag']}-ord"), conns)
    many = queue_ops.inputs(
        f"{queues['tag']}-*", "set-visibility", visibility_timeout=60, max_queues=2
    )
    with pytest.raises(BadInputError, match="max_queues=2"):
        queue_ops.select(many, conns)
    none = queue_ops.inputs("zzz-none-*", "set-visibility", visibility_timeout=60)
    with pytest.raises(BadInputError, match="matches no queue"):
        queue_ops.select(none, conns)


def test_report_backlog_dlq_and_no_metrics(queues):
    inp = queue_ops.inputs(f"{queues['tag']}-*")
    conns = conns_for(inp)
    rep = queue_ops.report(inp, conns, queue_ops.select(inp, conns))
    rows = {r.name: r for r in rep.rows}
    big = rows[f"{queues['tag']}-orders"]
    assert (big.visible, big.status, big.dlq_depth) == (1200, "warning", 3)
    assert big.dead_letter_queue == f"{queues['tag']}-orders-dlq" and big.max_receive_count == 5
    assert big.oldest_age_s is None and big.sent is None  # moto publishes no AWS/SQS metrics
    assert rep.rows[0].name == big.name  # deepest first
    titles = [f.title for f in rep.findings]
    assert any("backlog 1,200 >= 1,000" in t for t in titles)
    assert any("dead-letter queue" in t and "holds 3" in t for t in titles)
    assert any(t.startswith("no CloudWatch metrics for 3 queue(s)") for t in titles)
    frame = rep.to_frame().set_index("queue")
    assert frame.loc[big.name, "time_to_drain"] == "no metrics"
    assert frame.loc[big.name, "oldest"] == "no metrics"  # honest, not 0
    assert big.record() == {
        "name": big.name,
        "visible": 1200,
        "in_flight": 0,
        "oldest_age_s": None,
    }


def test_flow_and_drain_time_from_cloudwatch(queues):
    """moto stores metrics put under AWS/SQS, so the metric path is checked with real calls."""
    cw = aws_client("cloudwatch")
    name = f"{queues['tag']}-small"
    now = _dt.datetime.now(_dt.UTC)
    data = [
        ("NumberOfMessagesSent", 600.0),
        ("NumberOfMessagesDeleted", 1200.0),
        ("ApproximateAgeOfOldestMessage", 420.0),
    ]
    cw.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": m,
                "Dimensions": [{"Name": "QueueName", "Value": name}],
                "Timestamp": now - _dt.timedelta(minutes=2),
                "Value": v,
            }
            for m, v in data
        ],
    )
    fl = admin.flow(name, cloudwatch=cw, window_minutes=60)
    assert (fl.sent, fl.deleted) == (600.0, 1200.0)
    assert fl.net_per_minute == 10.0
    assert fl.drain_seconds(100) == 600.0  # 100 messages at 10 per minute
    assert admin.oldest_age(name, cloudwatch=cw) == 420.0
    assert admin.Flow(60, 100.0, 50.0).drain_seconds(10) is None  # growing: never drains
    assert admin.Flow(60, None, None).drain_seconds(10) is None


# --- peek --------------------------------------------------------------------------------------


def test_peek_leaves_messages_visible_and_redacts(queues):
    sqs = queues["sqs"]
    q = resolve_queue(queues["small"], sqs=sqs)
    p = admin.peek(q, sqs=sqs)
    assert len(p.messages) == 1 and p.messages[0].receive_count >= 1
    assert "4111" not in p.messages[0].body
    c = queue_counts(q, sqs=sqs)
    assert (c.visible, c.in_flight) == (1, 0)  # still there, not hidden from the consumers


def test_peek_skipped_when_a_receive_could_dead_letter(queues):
    sqs = queues["sqs"]
    arn = sqs.get_queue_attributes(QueueUrl=queues["dlq"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    url = sqs.create_queue(
        QueueName=f"{queues['tag']}-strict",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})
        },
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    p = admin.peek(resolve_queue(url, sqs=sqs), sqs=sqs)
    assert p.messages == () and "maxReceiveCount=1" in p.skipped


# --- set-visibility ----------------------------------------------------------------------------


def _apply(plan, **bound):
    approval = approve(plan, dry_run=False, approved_by="unit")
    return apply(plan, approval=approval, execute=executors.bind(**bound))


def test_set_visibility_plans_applies_and_skips_a_moved_target(queues):
    sqs = queues["sqs"]
    tag = queues["tag"]
    a = sqs.create_queue(QueueName=f"{tag}-vis-a")["QueueUrl"]
    b = sqs.create_queue(QueueName=f"{tag}-vis-b", Attributes={"VisibilityTimeout": "300"})[
        "QueueUrl"
    ]
    c = sqs.create_queue(QueueName=f"{tag}-vis-c")["QueueUrl"]
    refs = [resolve_queue(u, sqs=sqs) for u in (a, b, c)]
    plan = admin.plan_visibility(refs, timeout=300, max_queues=5)
    assert [ch.target for ch in plan.changes] == [f"{tag}-vis-a", f"{tag}-vis-c"]
    assert "already 300s" in plan.warnings[0]
    with pytest.raises(BadInputError, match="max_queues=2"):
        admin.plan_visibility(refs, timeout=300, max_queues=2)
    sqs.set_queue_attributes(QueueUrl=c, Attributes={"VisibilityTimeout": "45"})  # moved
    result = _apply(plan, sqs=sqs)
    assert [o.status for o in result.outcomes] == [ChangeStatus.APPLIED, ChangeStatus.SKIPPED]
    got = aws_cli("sqs", "get-queue-attributes", "--queue-url", a, "--attribute-names", "All")
    assert got["Attributes"]["VisibilityTimeout"] == "300"
    got = aws_cli("sqs", "get-queue-attributes", "--queue-url", c, "--attribute-names", "All")
    assert got["Attributes"]["VisibilityTimeout"] == "45"  # not overwritten


# --- purge -------------------------------------------------------------------------------------


def test_purge_waits_the_window_and_counts(queues, monkeypatch):
    sqs = queues["sqs"]
    url = sqs.create_queue(QueueName=f"{queues['tag']}-purge")["QueueUrl"]
    for i in range(0, 25, 5):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(5)],
        )
    q = resolve_queue(url, sqs=sqs)
    plan = admin.plan_purge(q, queue_counts(q, sqs=sqs), dlq_sources=(), peeked=admin.Peek(q.name))
    assert "IRREVERSIBLE" in plan.warnings[0] and "about 25" in plan.warnings[0]
    assert not any("dlq-redrive" in w for w in plan.warnings)
    result = _apply(plan, sqs=sqs, purge_wait_s=1.0, progress=no_progress)
    (o,) = result.outcomes
    assert o.status is ChangeStatus.APPLIED, o.detail
    assert (o.data["purged_count"], o.data["remaining"]) == (25, 0)
    assert o.data["waited_s"] >= 1.0
    got = aws_cli("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")
    assert got["Attributes"]["ApproximateNumberOfMessages"] == "0"
    monkeypatch.setenv(admin.PURGE_WAIT_ENV, "2")
    assert admin.purge_wait_seconds() == 2.0
    monkeypatch.setenv(admin.PURGE_WAIT_ENV, "600")
    assert admin.purge_wait_seconds() == 60.0  # never longer than SQS's window
    monkeypatch.delenv(admin.PURGE_WAIT_ENV)
    assert admin.purge_wait_seconds() == 60.0


def test_purge_plan_of_a_dlq_points_at_dlq_redrive(queues):
    sqs = queues["sqs"]
    q = resolve_queue(queues["dlq"], sqs=sqs)
    sources = admin.dead_letter_source_names(q, sqs=sqs)
    assert f"{queues['tag']}-orders" in sources
    plan = admin.plan_purge(
        q, queue_counts(q, sqs=sqs), dlq_sources=sources, peeked=admin.Peek(q.name)
    )
    assert any("dlq-redrive runbook" in w for w in plan.warnings)
    assert plan.limits["counts_at_plan"] == 3
    # the approval binds the queue, not its depth: a moving depth does not invalidate it
    sqs.send_message(QueueUrl=queues["dlq"], MessageBody="late")
    again = admin.plan_purge(
        q, queue_counts(q, sqs=sqs), dlq_sources=sources, peeked=admin.Peek(q.name)
    )
    assert again.digest() == plan.digest()


def test_preview_writes_counts_and_peek_to_the_evidence(queues, tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLIB_RUN_DIR", str(tmp_path))
    name = f"{queues['tag']}-small"
    inp = queue_ops.inputs(name, "purge", confirm_purge=name)
    conns = conns_for(inp)
    sel = queue_ops.select(inp, conns)
    pv = queue_ops.preview(inp, conns, sel)
    doc = json.loads((tmp_path / "attachments" / f"purge-preview-{name}.json").read_text())
    assert doc["counts"]["visible"] == 1 and len(doc["peek"]["messages"]) == 1
    assert "VisibilityTimeout=0" in doc["peek"]["method"]
    assert "4111 1111" not in json.dumps(doc)
    assert "1 message(s) would be deleted" in queue_ops.preview_text(pv)
    assert queue_ops.plan(inp, sel, None, pv).changes[0].action == admin.PURGE_ACTION


# --- consumers ---------------------------------------------------------------------------------


@pytest.fixture
def deployment(sandbox):
    api = k8s_api()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = f"qo-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "worker"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "worker"}},
                "template": {
                    "metadata": {"labels": {"app": "worker"}},
                    "spec": {"containers": [{"name": "w", "image": "worker:1"}]},
                },
            },
        },
    )
    yield api, ns
    core.delete_namespace(ns)


def test_k8s_consumer_scales_by_delta_and_bounds(sandbox, deployment):
    api, ns = deployment
    st = k8s_scale.read_scale(api=api, namespace=ns, name="worker")
    assert st.replicas == 2 and st.target == f"k8s-deployment:{ns}/worker"
    with pytest.raises(BadInputError, match=r"would be -1 \(< 0\)"):
        k8s_scale.plan_scale_by(st, delta=-3, max_up=10)
    with pytest.raises(BadInputError, match=r"at most \+10"):
        k8s_scale.plan_scale_by(st, delta=11, max_up=10)
    down = k8s_scale.plan_scale_by(st, delta=-2, max_up=10)
    assert "nothing will consume" in down.warnings[0]
    plan = k8s_scale.plan_scale_by(st, delta=3, max_up=10)
    (o,) = _apply(plan, api=api).outcomes
    assert o.status is ChangeStatus.APPLIED, o.detail
    out = kubectl(sandbox, "-n", ns, "get", "deploy/worker", "-o", "jsonpath={.spec.replicas}")
    assert out == "5"
    with pytest.raises(NotFoundError):
        k8s_scale.read_scale(api=api, namespace=ns, name="nope")


def test_ecs_consumer_scales_by_delta(sandbox):
    ecs = aws_client("ecs")
    cluster = f"qo-{uuid.uuid4().hex[:6]}"
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=f"{cluster}-worker",
        containerDefinitions=[{"name": "w", "image": "worker:1", "memory": 128}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="worker", taskDefinition=td, desiredCount=1)
    st = ecs_scale.read_scale(ecs_client=ecs, cluster=cluster, service="worker")
    assert st.replicas == 1
    with pytest.raises(BadInputError, match="< 0"):
        ecs_scale.plan_scale_by(st, delta=-2, max_up=10)
    (o,) = _apply(ecs_scale.plan_scale_by(st, delta=2, max_up=10), ecs=ecs).outcomes
    assert o.status is ChangeStatus.APPLIED, o.detail
    got = aws_cli("ecs", "describe-services", "--cluster", cluster, "--services", "worker")
    assert got["services"][0]["desiredCount"] == 3
