"""Deployment rollouts: revision history, template diff, undo, restart, and a bounded wait.

What ``kubectl rollout history/undo/restart/status`` do, as typed reads and planned changes:

- history: the deployment's ReplicaSets (owned by it) by ``deployment.kubernetes.io/revision``,
  with images, change-cause, age and replica counts;
- undo: patch the deployment's pod template to the target ReplicaSet's template (without its
  ``pod-template-hash`` label), which is exactly what ``kubectl rollout undo`` sends; the
  controller then makes that ReplicaSet the newest revision;
- restart: the ``kubectl.kubernetes.io/restartedAt`` template annotation (a new ReplicaSet,
  pods replaced under the rolling strategy); force: scale to 0 and back to the count found;
- status: kubectl's rule (observedGeneration caught up, updated == replicas == available, no
  old replicas left; ``ProgressDeadlineExceeded`` is a failure), polled with a bound.

Undo refuses a target equal to the current revision: a "rollback" that changes nothing is the
classic mistake of picking the current ReplicaSet as the previous one.
"""

from __future__ import annotations

import datetime as _dt
import difflib
from dataclasses import dataclass

import yaml

from opslib.core import executors
from opslib.core.errors import NotFoundError, PreflightError, RunbookTimeoutError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.progress import ProgressFactory, default_progress
from opslib.core.waits import poll_until

UNDO_ACTION = "k8s:patch deployments/spec.template (rollout undo)"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
TIMEOUT = 15


@dataclass(frozen=True)
class Revision:
    """One ReplicaSet of a deployment: what ``kubectl rollout history`` lists, and its template."""

    revision: int
    replicaset: str
    images: tuple[str, ...]
    change_cause: str
    created: str
    age_s: float | None
    replicas: int
    ready: int
    template: dict  # the pod template without the pod-template-hash label


@dataclass(frozen=True)
class DeploymentState:
    """A deployment's spec and status as a rollout reads them."""

    namespace: str
    name: str
    revision: int
    replicas: int
    updated: int
    ready: int
    available: int
    total: int  # status.replicas: pods of every ReplicaSet, old ones included
    generation: int
    observed_generation: int
    progressing_reason: str
    paused: bool
    images: tuple[str, ...]
    selector: str
    template: dict

    @property
    def complete(self) -> bool:
        return (
            self.observed_generation >= self.generation
            and self.updated == self.replicas
            and self.total == self.replicas
            and self.available == self.replicas
        )

    @property
    def failed(self) -> bool:
        return self.progressing_reason == "ProgressDeadlineExceeded"

    @property
    def in_progress(self) -> bool:
        """A rollout someone started is still moving (a stalled one, past its deadline, is not)."""
        return not self.complete and not self.failed and not self.paused

    def status_text(self) -> str:
        """kubectl rollout status's words for the current state."""
        if self.observed_generation < self.generation:
            return "waiting for the deployment spec update to be observed"
        if self.failed:
            return f'deployment "{self.name}" exceeded its progress deadline'
        if self.updated < self.replicas:
            return f"{self.updated} out of {self.replicas} new replicas have been updated"
        if self.total > self.updated:
            return f"{self.total - self.updated} old replicas are pending termination"
        if self.available < self.updated:
            return f"{self.available} of {self.updated} updated replicas are available"
        return f'deployment "{self.name}" successfully rolled out'


@dataclass(frozen=True)
class History:
    """A deployment and its revisions, newest first."""

    deployment: DeploymentState
    revisions: tuple[Revision, ...]

    def get(self, revision: int) -> Revision | None:
        return next((r for r in self.revisions if r.revision == revision), None)

    @property
    def current(self) -> Revision | None:
        return self.get(self.deployment.revision)

    def previous(self) -> Revision | None:
        """The newest revision before the current one (``to_revision=0``)."""
        older = [r for r in self.revisions if r.revision < self.deployment.revision]
        return older[0] if older else None

    def to_frame(self):
        import pandas as pd

        cur = self.deployment.revision
        return pd.DataFrame(
            [
                {
                    "revision": r.revision,
                    "current": r.revision == cur,
                    "replicaset": r.replicaset,
                    "images": ", ".join(r.images),
                    "change_cause": r.change_cause or "<none>",
                    "age_min": None if r.age_s is None else round(r.age_s / 60),
                    "replicas": r.replicas,
                    "ready": r.ready,
                }
                for r in self.revisions
            ],
            columns=[
                "revision",
                "current",
                "replicaset",
                "images",
                "change_cause",
                "age_min",
                "replicas",
                "ready",
            ],
        )


def _apps(api):
    from kubernetes import client

    return client.AppsV1Api(api)


def _age(ts) -> float | None:
    if ts is None:
        return None
    if isinstance(ts, str):
        ts = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.UTC)
    return (_dt.datetime.now(_dt.UTC) - ts).total_seconds()


def _int(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _template(api, obj) -> dict:
    tmpl = api.sanitize_for_serialization(obj) or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    (tmpl.get("metadata") or {}).pop("creationTimestamp", None)
    return tmpl


def _images(template: dict) -> tuple[str, ...]:
    return tuple(c.get("image", "") for c in (template.get("spec") or {}).get("containers") or [])


def read_deployment(*, api, namespace: str, name: str) -> DeploymentState:
    """The deployment as a rollout sees it; NotFoundError (exit 2) when it does not exist."""
    from kubernetes.client.exceptions import ApiException

    try:
        d = _apps(api).read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise NotFoundError(
                f"Deployment {namespace}/{name} not found; check namespace and deployment "
                f"(kubectl -n {namespace} get deployments)."
            ) from None
        raise
    st = d.status
    conds = {c.type: c for c in (st.conditions if st and st.conditions else [])}
    prog = conds.get("Progressing")
    template = _template(api, d.spec.template)
    sel = (d.spec.selector.match_labels or {}) if d.spec.selector else {}
    return DeploymentState(
        namespace=namespace,
        name=name,
        revision=_int((d.metadata.annotations or {}).get(REVISION)),
        replicas=_int(d.spec.replicas if d.spec.replicas is not None else 1),
        updated=_int(st.updated_replicas if st else 0),
        ready=_int(st.ready_replicas if st else 0),
        available=_int(st.available_replicas if st else 0),
        total=_int(st.replicas if st else 0),
        generation=_int(d.metadata.generation),
        observed_generation=_int(st.observed_generation if st else 0),
        progressing_reason=(prog.reason or "") if prog else "",
        paused=bool(d.spec.paused),
        images=_images(template),
        selector=",".join(f"{k}={v}" for k, v in sel.items()),
        template=template,
    )


def history(*, api, namespace: str, name: str) -> History:
    """The deployment and the ReplicaSets it owns, newest revision first."""
    dep = read_deployment(api=api, namespace=namespace, name=name)
    apps = _apps(api)
    d = apps.read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT)
    items = apps.list_namespaced_replica_set(
        namespace, label_selector=dep.selector or None, _request_timeout=TIMEOUT
    ).items
    revs = []
    for rs in items:
        owners = rs.metadata.owner_references or []
        if not any(o.controller and o.uid == d.metadata.uid for o in owners):
            continue
        ann = rs.metadata.annotations or {}
        template = _template(api, rs.spec.template)
        revs.append(
            Revision(
                revision=_int(ann.get(REVISION)),
                replicaset=rs.metadata.name,
                images=_images(template),
                change_cause=ann.get(CHANGE_CAUSE, ""),
                created=str(rs.metadata.creation_timestamp or ""),
                age_s=_age(rs.metadata.creation_timestamp),
                replicas=_int(rs.spec.replicas),
                ready=_int(rs.status.ready_replicas if rs.status else 0),
                template=template,
            )
        )
    revs.sort(key=lambda r: r.revision, reverse=True)
    return History(dep, tuple(revs))


def template_diff(
    current: dict, target: dict, *, labels: tuple[str, str] = ("current", "target")
) -> str:
    """A unified diff of two pod templates as YAML (what changes when rolling back)."""
    a = yaml.safe_dump(current, sort_keys=True).splitlines()
    b = yaml.safe_dump(target, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(a, b, labels[0], labels[1], lineterm="")) or "(identical)"


def plan_undo(hist: History, *, to_revision: int = 0) -> Plan:
    """Plan the rollback to ``to_revision`` (0: the one before the current).

    Refused (PreflightError, exit 2) when the target is the current revision, when it no longer
    exists, or when another rollout is still in progress.
    """
    dep = hist.deployment
    where = f"{dep.namespace}/{dep.name}"
    target = hist.previous() if to_revision == 0 else hist.get(to_revision)
    known = ", ".join(str(r.revision) for r in hist.revisions) or "none"
    if to_revision == 0 and target is None:
        raise PreflightError(
            f"{where} has no revision before the current one ({dep.revision}); revisions: "
            f"{known}. Nothing to roll back to."
        )
    if to_revision and to_revision == dep.revision:
        raise PreflightError(
            f"to_revision={to_revision} is the current revision of {where}: a rollback to it "
            f"changes nothing. Give an older revision ({known}) or 0 for the previous one."
        )
    if target is None:
        raise PreflightError(
            f"Revision {to_revision} of {where} does not exist (any more); revisions: {known}. "
            "Old ReplicaSets beyond revisionHistoryLimit are deleted."
        )
    if target.template == dep.template:
        raise PreflightError(
            f"Revision {target.revision} of {where} has the same pod template as the current "
            f"revision {dep.revision}: rolling back would change nothing."
        )
    if dep.in_progress:
        raise PreflightError(
            f"A rollout of {where} is in progress ({dep.status_text()}); wait for it to finish "
            f"(kubectl -n {dep.namespace} rollout status deployment/{dep.name}) and plan again."
        )
    current = hist.current
    return Plan(
        title=f"Roll back deployment {where}",
        changes=(
            Change(
                action=UNDO_ACTION,
                target=where,
                effect=(
                    f"revision {dep.revision} ({', '.join(dep.images)}) -> template of revision "
                    f"{target.revision} ({', '.join(target.images)}); becomes revision "
                    f"{max(r.revision for r in hist.revisions) + 1}"
                ),
                params={
                    "namespace": dep.namespace,
                    "name": dep.name,
                    "from_revision": dep.revision,
                    "to_revision": target.revision,
                    "from_images": list(dep.images),
                    "to_images": list(target.images),
                    "replicaset": target.replicaset,
                    "template": target.template,
                    "from_replicaset": current.replicaset if current else "",
                    "change_cause": (
                        f"rollback to revision {target.revision}"
                        + (f" ({target.change_cause})" if target.change_cause else "")
                    ),
                },
            ),
        ),
        warnings=(
            (
                f"{where} is past its progress deadline: the rollout of revision {dep.revision} failed",
            )
            if dep.failed
            else ()
        ),
        limits={"deployments": 1},
    )


@executors.register(UNDO_ACTION)
def undo(change: Change, *, api) -> ChangeOutcome:
    """Patch the pod template to the target's, only if the deployment is still at the planned
    revision (someone else's deploy in between means: plan again)."""
    p = change.params
    dep = read_deployment(api=api, namespace=p["namespace"], name=p["name"])
    if dep.revision != int(p["from_revision"]):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"revision changed since the plan ({p['from_revision']} -> {dep.revision}); plan again",
        )
    _apps(api).patch_namespaced_deployment(
        p["name"],
        p["namespace"],
        [  # what kubectl rollout undo sends: the template, and the target's change-cause
            {"op": "replace", "path": "/spec/template", "value": p["template"]},
            {
                "op": "add",
                "path": "/metadata/annotations/" + CHANGE_CAUSE.replace("/", "~1"),
                "value": p["change_cause"],
            },
        ],
        _request_timeout=TIMEOUT,
    )
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"pod template set to revision {p['to_revision']}'s ({', '.join(p['to_images'])})",
        {"to_revision": int(p["to_revision"])},
    )


@dataclass(frozen=True)
class RolloutResult:
    """How a wait for a rollout ended: complete, failed, or timed out (and what is left)."""

    namespace: str
    name: str
    complete: bool
    failed: bool
    timed_out: bool
    state: DeploymentState
    message: str

    @property
    def resume(self) -> str:
        return (
            f"kubectl -n {self.namespace} rollout status deployment/{self.name}; to go back: "
            f"kubectl -n {self.namespace} rollout undo deployment/{self.name}"
        )


def wait_rollout(
    *,
    api,
    namespace: str,
    name: str,
    timeout_s: float,
    poll_s: float = 1.0,
    progress: ProgressFactory = default_progress,
) -> RolloutResult:
    """Poll until the rollout completes or fails (ProgressDeadlineExceeded), at most ``timeout_s``.

    Never raises on timeout: the result says what state is left and how to resume.
    """
    last: list[DeploymentState] = []

    def check():
        st = read_deployment(api=api, namespace=namespace, name=name)
        last[:] = [st]
        return st.complete or st.failed, st, st.status_text()

    try:
        st = poll_until(
            check,
            timeout_s=timeout_s,
            poll_s=poll_s,
            desc=f"rollout {namespace}/{name}",
            on_timeout=lambda st, text: text,
            progress=progress,
        )
    except RunbookTimeoutError:
        st = last[0]
        return RolloutResult(
            namespace,
            name,
            False,
            False,
            True,
            st,
            f"{namespace}/{name}: not complete after {timeout_s:.0f}s ({st.status_text()}); "
            f"revision {st.revision}, {st.updated} updated, {st.available} available of "
            f"{st.replicas}, {st.total} pods in all",
        )
    if st.failed:
        return RolloutResult(
            namespace,
            name,
            False,
            True,
            False,
            st,
            f"{namespace}/{name}: rollout of revision {st.revision} failed ({st.status_text()})",
        )
    return RolloutResult(namespace, name, True, False, False, st, st.status_text())
