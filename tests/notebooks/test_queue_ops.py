"""queue-ops end to end on the sandbox: the report of the scenario's backlog (read only), an
approved set-visibility, scale-consumers and purge on queues and a deployment made here, and
bad input refused (exit 2, nothing changed, a refused bundle). The AWS CLI and kubectl check
what the record says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from kubernetes import client

import opslib
from opslib.aws.sqs.admin import PURGE_WAIT_ENV
from opslib.clients import aws_client, k8s_api

pytestmark = pytest.mark.timeout(600)


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


def depth(url: str) -> int:
    got = aws_cli("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")
    return int(got["Attributes"]["ApproximateNumberOfMessages"])


@pytest.fixture(scope="module")
def own(sandbox):
    """Queues of this module: two to set the visibility on, one to purge, a DLQ with a source."""
    sqs = aws_client("sqs")
    tag = f"nqo{uuid.uuid4().hex[:6]}"
    urls = {n: sqs.create_queue(QueueName=f"{tag}-{n}")["QueueUrl"] for n in ("a", "b", "purge")}
    urls["dlq"] = sqs.create_queue(QueueName=f"{tag}-x-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=urls["dlq"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName=f"{tag}-x",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})
        },
    )
    for name, n in (("purge", 30), ("dlq", 4)):
        for i in range(0, n, 10):
            sqs.send_message_batch(
                QueueUrl=urls[name],
                Entries=[
                    {"Id": str(j), "MessageBody": json.dumps({"i": i + j, "token": "tok-secret-1"})}
                    for j in range(min(10, n - i))
                ],
            )
    return tag, urls


def run(params: dict, evidence_dir) -> opslib.runner.RunResult:
    return opslib.run("queue-ops", params, sandbox=True, evidence_dir=evidence_dir)


def test_report_of_the_scenario_backlog_is_read_only(sandbox, evidence_dir):
    r = run({"queues": "fintech-*", "region": sandbox.region}, evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["action"] == "report" and res["purged"] is False and res["purged_count"] == 0
    rows = {q["name"]: q for q in res["queues"]}
    big = rows["fintech-payments-queue"]
    assert big["visible"] >= 10_000 and big["oldest_age_s"] is None  # no metrics, not 0
    assert r.record["changes"] == []
    html = next(Path(r.bundle).glob("*.html")).read_text()
    assert "no metrics" in html and "backlog" in html


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"action": "purge", "confirm_purge": "fintech-payments"}, "confirm_purge must repeat"),
        (
            {"queues": "fintech-payments-queue,fintech-notifications-queue", "action": "purge"},
            "exactly one queue",
        ),
        ({"action": "shrink"}, "action='shrink'"),
        ({"action": "set-visibility"}, "visibility_timeout=0"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(sandbox, evidence_dir, params, message):
    url = aws_client("sqs").get_queue_url(QueueName="fintech-payments-queue")["QueueUrl"]
    before = depth(url)
    params = {"queues": "fintech-payments-queue", **params}
    r = run(params, evidence_dir)
    assert (r.status, r.exit_code) == ("refused", 2)
    assert message in json.dumps(r.record.get("error"))
    assert r.record["changes"] == [] and Path(r.bundle, "record.json").is_file()
    assert depth(url) == before


def test_set_visibility_approved_is_verified(own, evidence_dir):
    tag, urls = own
    r = run(
        {
            "queues": f"{tag}-a,{tag}-b",
            "action": "set-visibility",
            "visibility_timeout": 900,
            "dry_run": False,
            "approved_by": "e2e",
            "change_ticket": "CHG-1",
        },
        evidence_dir,
    )
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert res["applied"] is True and res["verified"] is True
    assert [c["status"] for c in r.record["changes"]] == ["applied", "applied"]
    for n in ("a", "b"):
        got = aws_cli(
            "sqs", "get-queue-attributes", "--queue-url", urls[n], "--attribute-names", "All"
        )
        assert got["Attributes"]["VisibilityTimeout"] == "900"


def test_purge_dry_run_records_preview_then_approved_purge_empties(own, evidence_dir, monkeypatch):
    tag, urls = own
    name = f"{tag}-purge"
    params = {"queues": name, "action": "purge", "confirm_purge": name}
    dry = run(params, evidence_dir)
    assert (dry.status, dry.exit_code) == ("succeeded", 0), dry.record.get("error")
    assert dry.record["results"]["purged"] is False and depth(urls["purge"]) == 30
    preview = json.loads(
        (Path(dry.bundle) / "attachments" / f"purge-preview-{name}.json").read_text()
    )
    assert preview["counts"]["visible"] == 30 and len(preview["peek"]["messages"]) >= 1
    bundle_text = "".join(
        p.read_text(errors="ignore") for p in Path(dry.bundle).rglob("*") if p.is_file()
    )
    assert "tok-secret-1" not in bundle_text  # peeked bodies are redacted
    monkeypatch.setenv(PURGE_WAIT_ENV, "1")  # moto purges at once; do not wait 60 s here
    r = run({**params, "dry_run": False, "approved_by": "e2e"}, evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    res = r.record["results"]
    assert (res["purged"], res["purged_count"], res["verified"]) == (True, 30, True)
    assert res["queues"] == [{"name": name, "visible": 30, "in_flight": 0, "oldest_age_s": None}]
    assert depth(urls["purge"]) == 0


def test_purge_of_a_dlq_names_dlq_redrive_and_stays_dry(own, evidence_dir):
    tag, urls = own
    name = f"{tag}-x-dlq"
    r = run({"queues": name, "action": "purge", "confirm_purge": name}, evidence_dir)
    assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
    nb = next(Path(r.bundle).glob("*.ipynb")).read_text()
    assert "dlq-redrive runbook moves its messages back" in nb
    assert f"dead-letter queue of {tag}-x" in nb
    assert depth(urls["dlq"]) == 4


def test_scale_consumers_approved_kubectl_agrees(sandbox, evidence_dir):
    api = k8s_api()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = f"nqo-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "consumer"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "consumer"}},
                "template": {
                    "metadata": {"labels": {"app": "consumer"}},
                    "spec": {"containers": [{"name": "c", "image": "consumer:1"}]},
                },
            },
        },
    )
    try:
        base = {
            "queues": "fintech-payments-queue",
            "action": "scale-consumers",
            "consumer": f"k8s-deployment:{ns}/consumer",
        }
        low = run(
            {**base, "consumers_delta": -2, "dry_run": False, "approved_by": "e2e"}, evidence_dir
        )
        assert (low.status, low.exit_code) == ("refused", 2)
        assert "(< 0)" in json.dumps(low.record.get("error"))
        r = run(
            {**base, "consumers_delta": 3, "dry_run": False, "approved_by": "e2e"}, evidence_dir
        )
        assert (r.status, r.exit_code) == ("succeeded", 0), r.record.get("error")
        res = r.record["results"]
        assert res["consumer"] == f"k8s-deployment:{ns}/consumer" and res["verified"] is True
        assert r.record["changes"][0]["status"] == "applied"
        out = subprocess.run(
            ["kubectl", "--kubeconfig", sandbox.kubeconfig, "-n", ns, "get", "deploy/consumer",
             "-o", "jsonpath={.spec.replicas}"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert out == "4"
    finally:
        core.delete_namespace(ns)
