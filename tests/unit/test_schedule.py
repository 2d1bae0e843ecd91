"""``opslib schedule``: Kubernetes CronJob/Job and Argo manifests.

The Kubernetes manifests are checked three ways: against the official client's models (a
field the API does not know would be dropped on the round trip), created on the sandbox
Kubernetes API, and given to the real ``kubectl apply --dry-run=server``. The sandbox API is
an emulator: it stores what it is given and does not validate against the OpenAPI schema the
way a real API server does, so the model round trip is the schema check here. The Argo
manifests are validated against Argo's published models (``hera``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from opslib.cli import main
from opslib.schedule import argo, kubernetes
from tests.unit.serve_support import kube_api, write_triage_notebook

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def books(tmp_path, monkeypatch):
    write_triage_notebook(tmp_path / "nb")
    monkeypatch.setenv("OPSLIB_NOTEBOOKS", str(tmp_path / "nb"))
    (tmp_path / "params.yaml").write_text("service: ledger\nseverity: critical\n")
    return tmp_path


def printed(capsys, *args: str) -> list[dict]:
    assert main(["schedule", *args]) == 0
    return list(yaml.safe_load_all(capsys.readouterr().out))


def test_cronjob_manifest(books, capsys):
    cm, cj = printed(
        capsys,
        "kubernetes",
        "triage",
        "--cron",
        "0 7 * * *",
        "-f",
        str(books / "params.yaml"),
        "--evidence-dir",
        "s3://evidence-bucket/opslib",
        "--timeout",
        "900",
        "--fail-on",
        "warning",
        "--image",
        "registry.example/opslib:1.2",
        "--service-account",
        "opslib-irsa",
    )
    assert cm["kind"] == "ConfigMap"
    assert yaml.safe_load(cm["data"]["params.yaml"]) == {
        "service": "ledger",
        "severity": "critical",
    }
    assert cj["kind"] == "CronJob" and cj["spec"]["schedule"] == "0 7 * * *"
    assert (
        cj["spec"]["concurrencyPolicy"] == "Forbid" and cj["spec"]["startingDeadlineSeconds"] == 300
    )
    job = cj["spec"]["jobTemplate"]["spec"]
    assert (
        job["activeDeadlineSeconds"] == 900 + kubernetes.WRITE_GRACE_S and job["backoffLimit"] == 2
    )
    rules = job["podFailurePolicy"]["rules"]
    assert [(r["action"], r.get("onExitCodes", {}).get("values")) for r in rules] == [
        ("FailJob", [2, 3]),
        ("Count", [4]),
        ("Ignore", None),
    ]
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "opslib-irsa"
    (ctr,) = pod["containers"]
    assert ctr["image"] == "registry.example/opslib:1.2"
    assert ctr["args"] == [
        "run",
        "triage",
        "-f",
        "/etc/opslib/params.yaml",
        "--evidence-dir",
        "s3://evidence-bucket/opslib",
        "--timeout",
        "900",
        "--result-json",
        "/tmp/opslib/result.json",
        "--fail-on",
        "warning",
    ]
    assert (
        ctr["securityContext"]["runAsNonRoot"] and ctr["securityContext"]["readOnlyRootFilesystem"]
    )
    assert "secret" not in json.dumps(cj).lower()  # nothing secret inline, no Secret refs


def _roundtrip(doc: dict) -> dict:
    from kubernetes.client import ApiClient

    api = ApiClient()
    model = {"ConfigMap": "V1ConfigMap", "CronJob": "V1CronJob", "Job": "V1Job"}[doc["kind"]]
    return api.sanitize_for_serialization(
        api.deserialize(json.dumps(doc), model, "application/json")
    )


def test_manifests_match_the_kubernetes_api_models(books, capsys):
    docs = printed(
        capsys,
        "kubernetes",
        "triage",
        "--cron",
        "@daily",
        "-f",
        str(books / "params.yaml"),
        "--evidence-dir",
        "s3://b/p",
    )
    docs += printed(
        capsys,
        "kubernetes",
        "triage",
        "--job",
        "-f",
        str(books / "params.yaml"),
        "--evidence-dir",
        "s3://b/p",
    )
    for doc in docs:
        assert _roundtrip(doc) == doc, doc["kind"]  # every field is one the API defines


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "service", "postgresql://app:hunter2secret@db/x"], "carries"),
        (["-p", "nope", "1"], "Unknown parameter 'nope'"),
        (["--evidence-dir", "evidence"], "s3://bucket/prefix"),
        (["--cron", ""], "--cron"),
        (["--cron", "7 * *"], "five-field"),
    ],
)
def test_bad_input_exits_2(books, capsys, args, needle):
    base = {"--evidence-dir": "s3://b/p", "--cron": "0 7 * * *"}
    for i, a in enumerate(args):
        if a in base:
            base[a] = args[i + 1]
    rest = [a for i, a in enumerate(args) if a not in base and (i == 0 or args[i - 1] not in base)]
    flat = [x for k, v in base.items() for x in (k, v)]
    assert main(["schedule", "kubernetes", "triage", *flat, *rest]) == 2
    assert needle in capsys.readouterr().err


@pytest.fixture
def kube(tmp_path, monkeypatch):
    with kube_api(tmp_path / "kube") as kubeconfig:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        yield kubeconfig


def test_created_on_the_sandbox_api_and_kubectl_server_dry_run(kube, books, capsys, tmp_path):
    from kubernetes import client

    from opslib.clients import k8s_api

    docs = printed(
        capsys,
        "kubernetes",
        "triage",
        "--cron",
        "0 7 * * *",
        "-f",
        str(books / "params.yaml"),
        "--evidence-dir",
        "s3://b/p",
        "--name",
        "opslib-triage-created",
    )
    api = k8s_api()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.create_namespaced_config_map("default", docs[0])
    batch.create_namespaced_cron_job("default", docs[1])
    got = api.sanitize_for_serialization(
        batch.read_namespaced_cron_job("opslib-triage-created", "default")
    )
    assert (
        got["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]
        == docs[1]["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]
    )
    assert got["spec"]["concurrencyPolicy"] == "Forbid"

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    job_docs = printed(
        capsys,
        "kubernetes",
        "triage",
        "--job",
        "-f",
        str(books / "params.yaml"),
        "--evidence-dir",
        "s3://b/p",
        "--name",
        "opslib-triage-dryrun",
    )
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump_all(job_docs))
    out = subprocess.run(
        # --validate=false: the emulator serves no /openapi documents for kubectl to download
        # (a real API server validates server-side anyway); the model round trip above is the
        # schema check here.
        [
            kubectl,
            "apply",
            "--dry-run=server",
            "--validate=false",
            "-f",
            str(path),
            "-n",
            "default",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert out.returncode == 0, out.stderr
    assert "opslib-triage-dryrun created (server dry run)" in out.stdout
    # a server-side dry run creates nothing
    names = [j.metadata.name for j in batch.list_namespaced_job("default").items]
    assert "opslib-triage-dryrun" not in names


def _hera_roundtrip(doc: dict) -> dict:
    from hera.workflows.models import CronWorkflow, WorkflowTemplate

    if doc["kind"] == "ConfigMap":  # a core object: the Kubernetes models check it
        return _roundtrip(doc)
    model = {"WorkflowTemplate": WorkflowTemplate, "CronWorkflow": CronWorkflow}[doc["kind"]]
    return model.model_validate(doc).model_dump(by_alias=True, exclude_none=True, mode="json")


def test_argo_manifests_validate_against_argo_models(books, capsys):
    docs = printed(
        capsys,
        "argo",
        "triage",
        "--cron",
        "0 7 * * 1",
        "-f",
        str(books / "params.yaml"),
        "--fail-on",
        "critical",
    )
    cm, wft, cron = docs
    assert [d["kind"] for d in docs] == ["ConfigMap", "WorkflowTemplate", "CronWorkflow"]
    for doc in docs:
        assert _hera_roundtrip(doc) == doc, doc["kind"]
    (tpl,) = wft["spec"]["templates"]
    assert tpl["retryStrategy"]["expression"] == argo.RETRY_EXPRESSION
    assert tpl["retryStrategy"]["backoff"]["factor"] == "2"
    assert {a["name"] for a in tpl["outputs"]["artifacts"]} == {"result", "bundle"}
    assert "--fail-on" in tpl["container"]["args"] and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == wft["metadata"]["name"]
    # a mistyped field would not survive the model: the check has teeth
    broken = json.loads(json.dumps(wft))
    broken["spec"]["templates"][0]["retryStratgy"] = broken["spec"]["templates"][0].pop(
        "retryStrategy"
    )
    assert _hera_roundtrip(broken) != broken
