"""Argo Workflows ``WorkflowTemplate`` (and ``CronWorkflow``) that run one runbook.

The template runs the same container as the Kubernetes Job (``opslib run`` with the
parameters from a ConfigMap), writes the bundle under ``/tmp/opslib/evidence`` unless an
``s3://`` evidence dir is given, and hands the bundle and ``result.json`` to Argo as output
artifacts so the next step (or a person in the Argo UI) has them.

Retries: Argo's ``OnError`` policy retries only errors (pod deleted, node lost), never a
non-zero exit. The exit code 4 (infrastructure: kernel died, evidence store down) is worth
retrying too, so the policy is ``Always`` narrowed by an expression to exactly "an error, or
exit 4", with exponential backoff; exits 1, 2, 3 are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opslib.schedule.kubernetes import (
    DEFAULT_IMAGE,
    LABEL,
    config_map,
    container,
    container_args,
    resource_name,
)

API_VERSION = "argoproj.io/v1alpha1"
LOCAL_EVIDENCE = "/tmp/opslib/evidence"
RESULT_JSON = "/tmp/opslib/result.json"
RETRY_EXPRESSION = 'lastRetry.status == "Error" or asInt(lastRetry.exitCode) == 4'


def manifests(
    runbook: str,
    parameters: Mapping[str, Any],
    *,
    evidence_dir: str = "",
    cron: str = "",
    image: str = DEFAULT_IMAGE,
    name: str = "",
    namespace: str = "",
    service_account: str = "opslib",
    timeout: float = 3600.0,
    fail_on: str = "",
    retries: int = 2,
    starting_deadline_s: int = 300,
    time_zone: str = "",
) -> list[dict[str, Any]]:
    """``[ConfigMap, WorkflowTemplate]`` plus a ``CronWorkflow`` referencing it when ``cron``."""
    name = name or resource_name(runbook)
    labels = {"app.kubernetes.io/name": "opslib", LABEL: runbook}
    evidence = evidence_dir or LOCAL_EVIDENCE
    cm = config_map(f"{name}-params", parameters, labels=labels)
    args = container_args(
        runbook, evidence_dir=evidence, timeout=timeout, fail_on=fail_on, result_json=RESULT_JSON
    )
    ctr = container(image, args)
    artifacts: list[dict[str, Any]] = [{"name": "result", "path": RESULT_JSON, "optional": True}]
    if not evidence.startswith("s3://"):
        artifacts.append({"name": "bundle", "path": evidence, "optional": True})
    template = {
        "name": "run",
        "activeDeadlineSeconds": int(timeout) + 120,
        "retryStrategy": {
            "limit": str(retries),
            "retryPolicy": "Always",
            "expression": RETRY_EXPRESSION,
            "backoff": {"duration": "30s", "factor": "2", "maxDuration": "30m"},
        },
        "container": ctr,
        "outputs": {"artifacts": artifacts},
    }
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
        cm["metadata"]["namespace"] = namespace
    wft = {
        "apiVersion": API_VERSION,
        "kind": "WorkflowTemplate",
        "metadata": meta,
        "spec": {
            "entrypoint": "run",
            "serviceAccountName": service_account,
            "podGC": {"strategy": "OnPodCompletion"},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
            "volumes": [
                {"name": "params", "configMap": {"name": cm["metadata"]["name"]}},
                {"name": "tmp", "emptyDir": {}},
            ],
            "templates": [template],
        },
    }
    docs = [cm, wft]
    if cron:
        spec: dict[str, Any] = {
            "schedules": [cron],  # Argo >= 3.6; the single ``schedule`` field is deprecated
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": starting_deadline_s,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "workflowSpec": {"workflowTemplateRef": {"name": name}},
        }
        if time_zone:
            spec["timezone"] = time_zone
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "CronWorkflow",
                "metadata": dict(meta),
                "spec": spec,
            }
        )
    return docs
