"""Kubernetes CronJob / Job manifests that run one runbook on a schedule (or once).

What the manifest encodes, and why:

- the parameters as a ConfigMap mounted read-only (``-f /etc/opslib/params.yaml``), checked
  like ``opslib run`` input first, so nothing secret is inline: credentials come from the pod's
  ServiceAccount (IRSA on EKS) and the environment the cluster injects;
- ``concurrencyPolicy: Forbid`` (two runs of one check would race on the same resources) and
  ``startingDeadlineSeconds`` (a schedule missed during an outage is not replayed in a burst);
- ``activeDeadlineSeconds`` = the run's ``--timeout`` plus time to write the bundle, so the
  runner, not the kubelet, ends a slow run and the evidence is kept;
- ``backoffLimit`` with a ``podFailurePolicy``: exit 2 (bad input) and 3 (findings) fail the
  Job at once since a retry cannot change them, exit 4 (infrastructure) counts toward a retry,
  and pod disruptions (node drain, preemption) are ignored;
- a non-root, read-only container whose only writable place is an ``emptyDir`` at ``/tmp``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from opslib.core.errors import BadInputError

DEFAULT_IMAGE = "ghcr.io/opslib/opslib:latest"
PARAMS_DIR = "/etc/opslib"
CONTAINER = "opslib"
#: seconds between the runner's own timeout and the Job's deadline: the bundle is written then
WRITE_GRACE_S = 120
LABEL = "opslib.dev/runbook"


def resource_name(runbook: str, suffix: str = "") -> str:
    """A DNS-1123 name from the runbook (CronJob names must stay <= 52 characters)."""
    base = re.sub(r"[^a-z0-9-]", "-", f"opslib-{runbook}".lower()).strip("-")
    return f"{base[: 52 - len(suffix)].rstrip('-')}{suffix}"


def container_args(
    runbook: str,
    *,
    evidence_dir: str,
    timeout: float,
    fail_on: str = "",
    result_json: str = "/tmp/opslib/result.json",
) -> list[str]:
    """``opslib run`` arguments (the image's ENTRYPOINT is ``opslib``)."""
    args = ["run", runbook, "-f", f"{PARAMS_DIR}/params.yaml", "--evidence-dir", evidence_dir]
    args += ["--timeout", f"{timeout:g}", "--result-json", result_json]
    if fail_on:
        args += ["--fail-on", fail_on]
    return args


def config_map(
    name: str,
    parameters: Mapping[str, Any],
    *,
    labels: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    data = {"params.yaml": yaml.safe_dump(dict(parameters), sort_keys=True)}
    data.update(extra or {})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": dict(labels)},
        "data": data,
    }


def container(
    image: str, args: list[str], *, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The runbook container: non-root, read-only root, no capabilities, bounded resources."""
    return {
        "name": CONTAINER,
        "image": image,
        "args": args,
        "env": [{"name": "HOME", "value": "/tmp"}]
        + [{"name": k, "value": v} for k, v in sorted((env or {}).items())],
        "volumeMounts": [
            {"name": "params", "mountPath": PARAMS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "2Gi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def pod_failure_policy() -> dict[str, Any]:
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [2, 3]},
            },
            {
                "action": "Count",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [4]},
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]
    }


def manifests(
    runbook: str,
    parameters: Mapping[str, Any],
    *,
    evidence_dir: str,
    cron: str = "",
    image: str = DEFAULT_IMAGE,
    name: str = "",
    namespace: str = "",
    service_account: str = "opslib",
    timeout: float = 3600.0,
    fail_on: str = "",
    backoff_limit: int = 2,
    starting_deadline_s: int = 300,
    time_zone: str = "",
    ttl_s: int = 86400,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """``[ConfigMap, CronJob]`` (``cron`` given) or ``[ConfigMap, Job]``.

    ``parameters`` must already be validated (``opslib.runner.prepare``): this builds, it does
    not check values. The evidence dir must be ``s3://``: a pod's filesystem goes with it.
    """
    if not str(evidence_dir).startswith("s3://"):
        raise BadInputError(
            f"--evidence-dir {evidence_dir!r}: a Job's filesystem is deleted with its pod, so the "
            "bundle would be lost; give --evidence-dir s3://bucket/prefix."
        )
    if timeout <= 0:
        raise BadInputError("--timeout must be a positive number of seconds.")
    name = name or resource_name(runbook)
    meta_labels = {"app.kubernetes.io/name": "opslib", LABEL: runbook, **(labels or {})}
    cm = config_map(f"{name}-params", parameters, labels=meta_labels)
    args = container_args(runbook, evidence_dir=evidence_dir, timeout=timeout, fail_on=fail_on)
    pod = {
        "metadata": {"labels": meta_labels},
        "spec": {
            "restartPolicy": "Never",  # required by podFailurePolicy; the Job retries
            "serviceAccountName": service_account,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
            "containers": [container(image, args, env=env)],
            "volumes": [
                {"name": "params", "configMap": {"name": cm["metadata"]["name"]}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }
    job_spec = {
        "backoffLimit": backoff_limit,
        "activeDeadlineSeconds": int(timeout) + WRITE_GRACE_S,
        "ttlSecondsAfterFinished": ttl_s,
        "podFailurePolicy": pod_failure_policy(),
        "template": pod,
    }
    metadata: dict[str, Any] = {"name": name, "labels": meta_labels}
    if annotations:
        metadata["annotations"] = dict(annotations)
    if namespace:
        metadata["namespace"] = namespace
        cm["metadata"]["namespace"] = namespace
    if not cron:
        return [
            cm,
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec},
        ]
    if len(cron.split()) != 5 and not cron.startswith("@"):
        raise BadInputError(
            f"--cron {cron!r} is not a five-field cron expression (or @daily, ...)."
        )
    spec: dict[str, Any] = {
        "schedule": cron,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": starting_deadline_s,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": meta_labels}, "spec": job_spec},
    }
    if time_zone:
        spec["timeZone"] = time_zone
    return [cm, {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata, "spec": spec}]


def job_builder(**fixed: Any):
    """A ``build(runbook=, parameters=, name=, labels=, annotations=)`` for ``opslib serve
    --executor kubernetes``: the same Job manifest ``opslib schedule kubernetes --job`` prints."""

    def build(
        *,
        runbook: str,
        parameters: Mapping[str, Any],
        name: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
    ) -> list[dict[str, Any]]:
        return manifests(
            runbook, parameters, name=name, labels=labels, annotations=annotations, **fixed
        )

    return build


def dump(docs: list[dict[str, Any]]) -> str:
    """Multi-document YAML, as ``kubectl apply -f`` reads it."""
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)
