"""Restarting deployments one at a time: ``kubectl rollout restart`` or a forced 0-and-back.

Each planned change restarts one deployment and waits (bounded) for its rollout; a restart
that fails or times out returns a FAILED outcome, so :func:`opslib.core.plans.apply` stops and
the deployments after it are never touched. Between deployments the handler pauses
``pause_after`` seconds (0 for the last one).

Force mode scales to 0 and back: downtime, for pods that a rolling restart cannot replace
(a stuck volume, a singleton that must not overlap). The replica count found at plan time is
written to an evidence attachment *before* scaling to 0, and restored in a ``finally`` even
when the run is interrupted (the runner turns SIGTERM into a kernel interrupt); if the restore
itself cannot happen, the attachment holds the count and the exact command.
"""

from __future__ import annotations

import datetime as _dt
import json
import time

from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan, check_limit
from opslib.core.recorder import attachment_path
from opslib.k8s.rollout import DeploymentState, read_deployment, wait_rollout

RESTART_ACTION = "k8s:patch deployments/spec.template restartedAt (rollout restart)"
FORCE_ACTION = "k8s:patch deployments/scale to 0 and back (force restart)"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TIMEOUT = 15


def list_deployments(*, api, namespace: str) -> list[str]:
    """Every deployment in ``namespace``, sorted by name."""
    from kubernetes import client

    items = client.AppsV1Api(api).list_namespaced_deployment(namespace, _request_timeout=TIMEOUT)
    return sorted(d.metadata.name for d in items.items)


def plan_restart(
    states: list[DeploymentState],
    *,
    mode: str,
    pause_seconds: int,
    timeout_s: float,
    max_targets: int,
) -> Plan:
    """One change per deployment, in the given order."""
    if mode not in ("rolling", "force"):
        raise BadInputError(f"mode={mode!r}: give 'rolling' or 'force'")
    check_limit("max_targets", len(states), max_targets)
    action = RESTART_ACTION if mode == "rolling" else FORCE_ACTION
    changes = []
    for i, st in enumerate(states):
        last = i == len(states) - 1
        effect = (
            f"new pods for revision {st.revision} ({st.replicas} replica(s)), rolling"
            if mode == "rolling"
            else f"replicas {st.replicas} -> 0 -> {st.replicas}: DOWN until the new pods are ready"
        )
        changes.append(
            Change(
                action=action,
                target=f"{st.namespace}/{st.name}",
                effect=effect + ("" if last else f"; then pause {pause_seconds}s"),
                params={
                    "namespace": st.namespace,
                    "name": st.name,
                    "replicas": st.replicas,
                    "revision": st.revision,
                    "pause_after": 0 if last else pause_seconds,
                    "timeout_s": timeout_s,
                },
            )
        )
    warnings = []
    if mode == "force":
        warnings.append(
            "Force mode takes each deployment to 0 replicas before bringing it back: its service "
            "is DOWN for that time. The count found now is restored, also if the run is stopped."
        )
    busy = [s.name for s in states if s.in_progress]
    if busy:
        warnings.append(f"rollout already in progress: {', '.join(busy)}")
    return Plan(
        title=f"Restart {len(states)} deployment(s) ({mode}), one at a time",
        changes=tuple(changes),
        warnings=tuple(warnings),
        limits={"max_targets": max_targets, "pause_seconds": pause_seconds},
    )


def _finish(change: Change, api, started: float) -> ChangeOutcome:
    p = change.params
    r = wait_rollout(api=api, namespace=p["namespace"], name=p["name"], timeout_s=p["timeout_s"])
    took = round(time.monotonic() - started, 1)
    if not r.complete:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            f"{r.message}. Resume: {r.resume}",
            {"seconds": took, "revision": r.state.revision},
        )
    if p["pause_after"]:
        time.sleep(float(p["pause_after"]))
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"restarted: revision {r.state.revision}, {r.state.available}/{r.state.replicas} available "
        f"after {took}s",
        {"seconds": took, "revision": r.state.revision},
    )


@executors.register(RESTART_ACTION)
def rolling_restart(change: Change, *, api) -> ChangeOutcome:
    """Set the restartedAt template annotation (what ``kubectl rollout restart`` does), wait."""
    from kubernetes import client

    p = change.params
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.monotonic()
    client.AppsV1Api(api).patch_namespaced_deployment(
        p["name"],
        p["namespace"],
        {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}},
        _request_timeout=TIMEOUT,
    )
    return _finish(change, api, started)


def restore_command(namespace: str, name: str, replicas: int) -> str:
    return f"kubectl -n {namespace} scale deployment/{name} --replicas={replicas}"


@executors.register(FORCE_ACTION)
def force_restart(change: Change, *, api) -> ChangeOutcome:
    """Scale to 0, wait for the pods to go, scale back to the planned count, wait for the rollout.

    The count is written to ``attachments/force-restore-<namespace>-<name>.json`` first and
    restored in ``finally``; the file says whether it was.
    """
    from kubernetes import client

    p = change.params
    apps = client.AppsV1Api(api)
    ns, name, want = p["namespace"], p["name"], int(p["replicas"])
    have = read_deployment(api=api, namespace=ns, name=name).replicas
    if have != want:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"replicas changed since the plan ({want} -> {have}); plan again",
        )
    note = attachment_path(f"force-restore-{ns}-{name}.json")
    record = {
        "namespace": ns,
        "deployment": name,
        "replicas": want,
        "command": restore_command(ns, name, want),
        "restored": False,
    }
    note.write_text(json.dumps(record, indent=2))
    started = time.monotonic()
    try:
        apps.patch_namespaced_deployment_scale(
            name, ns, {"spec": {"replicas": 0}}, _request_timeout=TIMEOUT
        )
        deadline = time.monotonic() + float(p["timeout_s"])
        while read_deployment(api=api, namespace=ns, name=name).total > 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        apps.patch_namespaced_deployment_scale(
            name, ns, {"spec": {"replicas": want}}, _request_timeout=TIMEOUT
        )
        note.write_text(json.dumps({**record, "restored": True}, indent=2))
    return _finish(change, api, started)


def check_exists(*, api, namespace: str, names: list[str]) -> list[DeploymentState]:
    """The named deployments' states; NotFoundError (exit 2) naming every missing one."""
    states, missing = [], []
    for n in names:
        try:
            states.append(read_deployment(api=api, namespace=namespace, name=n))
        except NotFoundError:
            missing.append(n)
    if missing:
        raise NotFoundError(
            f"Deployment(s) not found in {namespace}: {', '.join(missing)}; check deployments "
            f"(kubectl -n {namespace} get deployments). Nothing was restarted."
        )
    return states
