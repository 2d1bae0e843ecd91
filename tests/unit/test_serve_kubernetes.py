"""``opslib serve --executor kubernetes`` on the sandbox Kubernetes API.

The accepted alert becomes a ConfigMap (its parameters, forced dry) and a Job (the manifest of
``opslib schedule kubernetes --job``). Nothing runs the pod in the emulator, so the test plays
the kubelet: it marks the Job failed the way the Job controller does when the podFailurePolicy
matches exit code 3, and ``/runs`` must show that failure and its exit code.
"""

from __future__ import annotations

import os

import pytest
import yaml

from tests.unit.serve_support import (
    AUTH_HEADER,
    am_webhook,
    kube_api,
    receiver,
    wait_for,
    write_triage_notebook,
)

pytestmark = pytest.mark.timeout(300)
TOKEN = "k8s-executor-token-0123456789"
ROUTES = """\
routes:
  - source: alertmanager
    match: {labels: {alertname: HighLatency}}
    runbook: triage
    parameters: {service: labels.service}
"""


def test_alert_becomes_a_job_whose_failure_reads_back(tmp_path, monkeypatch):
    with kube_api(tmp_path / "kube") as kubeconfig:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        _job_round_trip(tmp_path)


def _job_round_trip(tmp_path):
    from kubernetes import client

    from opslib.clients import k8s_api

    write_triage_notebook(tmp_path / "nb")
    (tmp_path / "routes.yaml").write_text(ROUTES)
    env = {
        **os.environ,
        "OPSLIB_NOTEBOOKS": str(tmp_path / "nb"),
        "OPSLIB_SERVE_ALERTMANAGER_TOKENS": TOKEN,
    }
    args = ["--routes", str(tmp_path / "routes.yaml"), "--state-dir", str(tmp_path / "state")]
    args += ["--executor", "kubernetes", "--evidence-dir", "s3://evidence-bucket/alerts"]
    args += ["--image", "registry.example/opslib:2.0", "--timeout", "600", "--namespace", "default"]
    api = k8s_api()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    with receiver(args, env=env, log=tmp_path / "serve.log") as r:
        resp = r.post("alertmanager", am_webhook(service="ledger"), AUTH_HEADER(TOKEN))
        assert resp.status_code == 202, resp.text
        row_id = resp.json()["accepted"][0]["id"]
        (job,) = wait_for(
            lambda: (
                batch.list_namespaced_job(
                    "default", label_selector=f"opslib.dev/alert-id={row_id}"
                ).items
            ),
            timeout=60,
            what="the Job",
        )
        job = api.sanitize_for_serialization(job)
        spec = job["spec"]
        (ctr,) = spec["template"]["spec"]["containers"]
        assert ctr["image"] == "registry.example/opslib:2.0"
        assert ctr["args"][:2] == ["run", "triage"] and "s3://evidence-bucket/alerts" in ctr["args"]
        assert spec["activeDeadlineSeconds"] == 600 + 120 and spec["backoffLimit"] == 2
        assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2, 3]
        cm_name = spec["template"]["spec"]["volumes"][0]["configMap"]["name"]
        params = yaml.safe_load(
            core.read_namespaced_config_map(cm_name, "default").data["params.yaml"]
        )
        assert params == {"service": "ledger", "dry_run": True, "approved_by": ""}
        assert '"fingerprint": "f00d"' in job["metadata"]["annotations"]["opslib.dev/trigger"]
        assert r.runs()[0]["state"] == "running" and r.runs()[0]["job"] == job["metadata"]["name"]

        # the Job controller's verdict when the pod exits 3 and the FailJob rule matches
        batch.patch_namespaced_job_status(
            job["metadata"]["name"],
            "default",
            {
                "status": {
                    "failed": 1,
                    "conditions": [
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "PodFailurePolicy",
                            "message": f"Container opslib for pod default/{job['metadata']['name']}-x "
                            "failed with exit code 3 matching FailJob rule at index 0",
                        }
                    ],
                }
            },
        )
        (run,) = wait_for(
            lambda: [x for x in r.runs() if x["state"] == "done"], timeout=60, what="the read-back"
        )
    assert run["exit_code"] == 3 and run["status"] == "findings" and run["executor"] == "kubernetes"
    assert run["bundle"] == "s3://evidence-bucket/alerts/triage/"
