"""A small deployment controller: ReplicaSets with revisions, pods with owner references.

What a real cluster's deployment and ReplicaSet controllers do, reduced to what rollback and
restart runbooks (and ``kubectl rollout``) read:

- a Deployment whose pod template matches none of its ReplicaSets gets a new one,
  ``<name>-<hash>``, annotated ``deployment.kubernetes.io/revision`` = highest + 1 (and the
  deployment's ``kubernetes.io/change-cause``); a template that matches an older ReplicaSet
  (an undo) moves that ReplicaSet to the next revision, as the real controller does;
- the RollingUpdate strategy (maxSurge / maxUnavailable, 25 % each by default) moves replicas
  from the old ReplicaSets to the new one, one step per ``step seconds`` (0 = all at once,
  synchronously, inside the request that changed the template); Recreate scales old to 0 first;
- each ReplicaSet keeps as many pods as it wants, named ``<rs>-<5 chars>``, owned by it
  (ownerReferences, controller=true); pods are Running and Ready at once, except pods whose
  image is listed in ``crashImages``: those are CrashLoopBackOff, never ready (a rollout that
  never completes), with a Warning BackOff event;
- status follows: replicas, updated, ready, available, unavailable, observedGeneration, and the
  Available / Progressing conditions, including ``ProgressDeadlineExceeded`` once
  ``progressDeadlineSeconds`` pass without progress (kept from the stored condition's
  lastUpdateTime, so a seeded deployment can say its rollout stalled 20 minutes ago);
- old ReplicaSets beyond ``revisionHistoryLimit`` are deleted.

Sandbox conveniences a real cluster does not have: the first ReplicaSet of a deployment adopts
orphan pods matching the deployment's selector (so a scenario can seed pods with chosen names
and states; their ``pod-template-hash`` label, when they share one, names the ReplicaSet), and
the ConfigMap ``kube-system/sandbox-controller`` sets ``crashImages`` (comma-separated) and
``stepSeconds``; the annotation ``sandbox.opslib.dev/step-seconds`` on a deployment overrides
the step for it. Not modelled: readiness probes and minReadySeconds, pod scheduling, nodes,
terminating pods (a deleted pod is gone at once), StatefulSets and DaemonSets (their status is
simply "all ready"), HPAs acting, ``collisionCount``.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
import time
from typing import Any, Protocol

from opslib.sandbox.kube.selectors import match_labels

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
STEP_ANNOTATION = "sandbox.opslib.dev/step-seconds"
CONFIG_NAMESPACE, CONFIG_NAME = "kube-system", "sandbox-controller"
SAFE = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString
DEPLOYMENTS = ("apps", "v1", "deployments")
REPLICASETS = ("apps", "v1", "replicasets")
PODS = ("", "v1", "pods")
EVENTS = ("", "v1", "events")
MAX_SYNC_ROUNDS = 60


class Store(Protocol):
    """What the controller needs from the API server's object store."""

    def objects(
        self, key: tuple[str, str, str], ns: str, *, owner_uid: str | None = None
    ) -> list[dict]: ...

    def get(self, key: tuple[str, str, str], ns: str, name: str) -> dict | None: ...

    def create(self, key: tuple[str, str, str], ns: str, body: dict) -> dict: ...

    def update(self, key: tuple[str, str, str], obj: dict) -> dict: ...

    def delete(self, key: tuple[str, str, str], ns: str, name: str) -> None: ...


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str | None) -> dt.datetime | None:
    if not ts:
        return None
    try:
        when = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def template_hash(template: dict) -> str:
    """FNV-32a of the template, encoded like the real controller's ``pod-template-hash``."""
    import json

    h = 0x811C9DC5
    for b in json.dumps(template, sort_keys=True).encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE[int(c) % len(SAFE)] for c in str(h))


def revision(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def controller_uid(obj: dict) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def _prune(value: Any) -> Any:
    """Drop nulls and empty maps/lists: ``{"resources": {}, "creationTimestamp": null}`` is
    what a Go client (kubectl rollout undo) sends for an unset field."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def strip_hash(template: dict) -> dict:
    """The template without its ``pod-template-hash`` label, normalised for comparison."""
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return _prune(t)


def same_template(rs: dict, template: dict) -> bool:
    return strip_hash((rs.get("spec") or {}).get("template")) == strip_hash(template)


def pod_ready(pod: dict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _resolve(value: Any, total: int, *, round_up: bool) -> int:
    if value is None:
        value = "25%"
    if isinstance(value, str) and value.endswith("%"):
        frac = total * float(value[:-1]) / 100
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(value)


def _owner_ref(obj: dict) -> dict:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


class Controller:
    """Reconciles deployments, their ReplicaSets and pods in the store (see module doc)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._last_step: dict[str, float] = {}

    # --- configuration -------------------------------------------------------------------
    def _config(self) -> tuple[set[str], float]:
        cm = self.store.get(("", "v1", "configmaps"), CONFIG_NAMESPACE, CONFIG_NAME) or {}
        data = cm.get("data") or {}
        crash = {i.strip() for i in (data.get("crashImages") or "").split(",") if i.strip()}
        try:
            step = float(data.get("stepSeconds") or 0)
        except ValueError:
            step = 0.0
        return crash, step

    def _step_seconds(self, d: dict, default: float) -> float:
        raw = (d["metadata"].get("annotations") or {}).get(STEP_ANNOTATION)
        try:
            return float(raw) if raw is not None else default
        except ValueError:
            return default

    # --- entry point -----------------------------------------------------------------------
    def reconcile(self, namespaces: list[str]) -> None:
        """Bring every deployment and ReplicaSet in ``namespaces`` one step (or, with a step of
        0 seconds, all the way) towards its spec."""
        crash, step = self._config()
        for ns in namespaces:
            for _ in range(MAX_SYNC_ROUNDS):
                changed = False
                for d in self.store.objects(DEPLOYMENTS, ns):
                    if (d.get("spec") or {}).get("template"):
                        changed |= self._deployment(d, crash, step)
                for rs in self.store.objects(REPLICASETS, ns):
                    changed |= self._replicaset(rs, crash)
                if not changed:
                    break

    # --- deployments -----------------------------------------------------------------------
    def _owned_replicasets(self, d: dict) -> list[dict]:
        uid = d["metadata"]["uid"]
        ns = d["metadata"]["namespace"]
        return self.store.objects(REPLICASETS, ns, owner_uid=uid)

    def _deployment(self, d: dict, crash: set[str], default_step: float) -> bool:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        spec = d["spec"]
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        template = spec["template"]
        rss = self._owned_replicasets(d)
        changed = False
        new = next((rs for rs in rss if same_template(rs, template)), None)
        top = max((revision(rs) for rs in rss), default=0)
        cause = (d["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
        if new is None:
            new = self._new_replicaset(d, selector, template, top + 1, cause, adopt=not rss)
            rss.append(new)
            changed = True
        elif revision(new) < top or (cause and _annotation(new, CHANGE_CAUSE) != cause):
            if revision(new) < top:
                new["metadata"].setdefault("annotations", {})[REVISION] = str(top + 1)
            if cause:
                new["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = cause
            new = self.store.update(REPLICASETS, new)
            changed = True
        rev = str(revision(new))
        if _annotation(d, REVISION) != rev:
            d["metadata"].setdefault("annotations", {})[REVISION] = rev
            d = self.store.update(DEPLOYMENTS, d)
            changed = True
        if not spec.get("paused"):
            changed |= self._scale(d, new, [rs for rs in rss if rs is not new], crash, default_step)
        changed |= self._cleanup(d, new)
        d = self.store.get(DEPLOYMENTS, ns, name) or d
        changed |= self._deployment_status(d)
        return changed

    def _new_replicaset(
        self, d: dict, selector: dict, template: dict, rev: int, cause: str | None, *, adopt: bool
    ) -> dict:
        ns = d["metadata"]["namespace"]
        orphans = []
        if adopt:
            orphans = [
                p
                for p in self.store.objects(PODS, ns, owner_uid="")
                if selector
                and all(
                    (p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items()
                )
            ]
        hashes = {(p["metadata"].get("labels") or {}).get(HASH_LABEL) for p in orphans}
        h = (
            next(iter(hashes))
            if len(hashes) == 1 and None not in hashes
            else template_hash(template)
        )
        name = f"{d['metadata']['name']}-{h}"
        while self.store.get(REPLICASETS, ns, name) is not None:
            h = template_hash({"t": template, "salt": h})
            name = f"{d['metadata']['name']}-{h}"
        tmpl = copy.deepcopy(template)
        tmpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        annotations = {
            REVISION: str(rev),
            "deployment.kubernetes.io/desired-replicas": str(d["spec"].get("replicas", 1)),
        }
        if cause:
            annotations[CHANGE_CAUSE] = cause
        rs = self.store.create(
            REPLICASETS,
            ns,
            {
                "metadata": {
                    "name": name,
                    "labels": dict(tmpl["metadata"]["labels"]),
                    "annotations": annotations,
                    "ownerReferences": [_owner_ref(d)],
                },
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {**selector, HASH_LABEL: h}},
                    "template": tmpl,
                },
            },
        )
        for p in orphans:
            p["metadata"].setdefault("labels", {})[HASH_LABEL] = h
            p["metadata"]["ownerReferences"] = [_owner_ref(rs)]
            self.store.update(PODS, p)
        return rs

    def _scale(
        self, d: dict, new: dict, old: list[dict], crash: set[str], default_step: float
    ) -> bool:
        desired = int(d["spec"].get("replicas", 1))
        active = [rs for rs in old if int(rs["spec"].get("replicas", 0)) > 0]
        if not active:
            return self._set_replicas(new, desired)
        step = self._step_seconds(d, default_step)
        uid = d["metadata"]["uid"]
        now = time.monotonic()
        if step > 0 and now - self._last_step.get(uid, 0.0) < step:
            return False
        self._last_step[uid] = now
        strategy = d["spec"].get("strategy") or {}
        changed = False
        if strategy.get("type") == "Recreate":
            for rs in active:
                changed |= self._set_replicas(rs, 0)
            self._sync_pods_of(active, crash)
            return changed
        rolling = strategy.get("rollingUpdate") or {}
        surge = _resolve(rolling.get("maxSurge"), desired, round_up=True)
        unavailable = _resolve(rolling.get("maxUnavailable"), desired, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        every = [new, *old]
        total = sum(int(rs["spec"].get("replicas", 0)) for rs in every)
        want = int(new["spec"].get("replicas", 0))
        if want < desired:
            room = desired + surge - total
            if room > 0:
                changed |= self._set_replicas(new, want + min(room, desired - want))
        elif want > desired:
            changed |= self._set_replicas(new, desired)
        self._sync_pods_of([new], crash)
        new = self.store.get(REPLICASETS, new["metadata"]["namespace"], new["metadata"]["name"])
        min_available = desired - unavailable
        ready = {rs["metadata"]["uid"]: self._ready_count(rs) for rs in every}
        total = sum(int(rs["spec"].get("replicas", 0)) for rs in [new, *old])
        new_unavailable = int(new["spec"].get("replicas", 0)) - ready[new["metadata"]["uid"]]
        # first the old pods that are not ready anyway, as far as availability allows
        budget = total - min_available - new_unavailable
        for rs in sorted(active, key=revision):
            have = int(rs["spec"].get("replicas", 0))
            unready = have - ready[rs["metadata"]["uid"]]
            cut = min(unready, max(budget, 0))
            if cut > 0:
                changed |= self._set_replicas(rs, have - cut)
                budget -= cut
        available = sum(ready.values())
        down = available - min_available
        for rs in sorted(active, key=revision):
            if down <= 0:
                break
            fresh = self.store.get(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
            have = int(fresh["spec"].get("replicas", 0))
            cut = min(have, down)
            if cut > 0:
                changed |= self._set_replicas(fresh, have - cut)
                down -= cut
        return changed

    def _set_replicas(self, rs: dict, n: int) -> bool:
        rs = self.store.get(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs
        if int(rs["spec"].get("replicas", 0)) == n:
            return False
        rs["spec"]["replicas"] = n
        self.store.update(REPLICASETS, rs)
        return True

    def _cleanup(self, d: dict, new: dict) -> bool:
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        old = [
            rs
            for rs in self._owned_replicasets(d)
            if rs["metadata"]["uid"] != new["metadata"]["uid"]
            and int(rs["spec"].get("replicas", 0)) == 0
            and not self._pods(rs)
        ]
        old.sort(key=revision)
        doomed = old[: max(len(old) - limit, 0)]
        for rs in doomed:
            self.store.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
        return bool(doomed)

    def _deployment_status(self, d: dict) -> bool:
        spec = d["spec"]
        desired = int(spec.get("replicas", 1))
        rss = self._owned_replicasets(d)
        new_name = next(
            (rs["metadata"]["name"] for rs in rss if same_template(rs, spec["template"])),
            "",
        )
        pods = {rs["metadata"]["name"]: self._pods(rs) for rs in rss}
        replicas = sum(len(p) for p in pods.values())
        updated = len(pods.get(new_name, []))
        ready = sum(1 for ps in pods.values() for p in ps if pod_ready(p))
        old = d.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        if desired - ready > 0:
            status["unavailableReplicas"] = desired - ready
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        unavailable = _resolve(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable"),
            desired,
            round_up=False,
        )
        now = now_iso()
        conds = {c.get("type"): c for c in old.get("conditions") or []}
        avail_ok = ready >= desired - unavailable
        available = _condition(
            conds.get("Available"),
            "Available",
            "True" if avail_ok else "False",
            "MinimumReplicasAvailable" if avail_ok else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if avail_ok
            else "Deployment does not have minimum availability.",
            now,
        )
        counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
        progressed = any(old.get(k, 0) != status.get(k, 0) for k in counts)
        prev = conds.get("Progressing")
        complete = updated == desired and replicas == desired and ready == desired
        if complete:
            progressing = _condition(
                prev,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{new_name}" has successfully progressed.',
                now,
            )
        elif (
            progressed
            or prev is None
            or prev.get("reason") == "NewReplicaSetAvailable"
            or new_name not in (prev.get("message") or "")
        ):
            progressing = _condition(
                None,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{new_name}" is progressing.',
                now,
                transition=prev.get("lastTransitionTime")
                if prev and prev.get("status") == "True"
                else None,
            )
        elif prev.get("reason") == "ProgressDeadlineExceeded":
            progressing = prev
        else:
            since = _parse(prev.get("lastUpdateTime"))
            deadline = int(spec.get("progressDeadlineSeconds", 600))
            late = (
                since is not None and (dt.datetime.now(dt.UTC) - since).total_seconds() > deadline
            )
            progressing = (
                _condition(
                    prev,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{new_name}" has timed out progressing.',
                    now,
                )
                if late
                else prev
            )
        status["conditions"] = [available, progressing]
        if status == old:
            return False
        d["status"] = status
        self.store.update(DEPLOYMENTS, d)
        return True

    # --- ReplicaSets and pods ---------------------------------------------------------------
    def _pods(self, rs: dict) -> list[dict]:
        return self.store.objects(
            PODS, rs["metadata"]["namespace"], owner_uid=rs["metadata"]["uid"]
        )

    def _ready_count(self, rs: dict) -> int:
        return sum(1 for p in self._pods(rs) if pod_ready(p))

    def _sync_pods_of(self, rss: list[dict], crash: set[str]) -> None:
        for rs in rss:
            fresh = self.store.get(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
            if fresh is not None:
                self._replicaset(fresh, crash)

    def _replicaset(self, rs: dict, crash: set[str]) -> bool:
        ns = rs["metadata"]["namespace"]
        selector = (rs["spec"].get("selector") or {}).get("matchLabels") or {}
        sel = ",".join(f"{k}={v}" for k, v in selector.items())
        changed = False
        orphans = self.store.objects(PODS, ns, owner_uid="") if sel else []
        for p in orphans:  # adopt orphans that match the full selector
            if match_labels(sel, p["metadata"].get("labels") or {}):
                p["metadata"]["ownerReferences"] = [_owner_ref(rs)]
                self.store.update(PODS, p)
                changed = True
        pods = self._pods(rs)
        want = int(rs["spec"].get("replicas", 0))
        if len(pods) > want:  # unready first, then the newest
            pods.sort(
                key=lambda p: (pod_ready(p), p["metadata"].get("creationTimestamp", "")),
                reverse=False,
            )
            doomed = sorted(pods, key=lambda p: (pod_ready(p), _neg_ts(p)))[: len(pods) - want]
            for p in doomed:
                self.store.delete(PODS, ns, p["metadata"]["name"])
            changed = True
        for _ in range(want - len(pods)):
            self._new_pod(rs, crash)
            changed = True
        pods = self._pods(rs)
        ready = sum(1 for p in pods if pod_ready(p))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if rs.get("status") != status:
            rs = self.store.get(REPLICASETS, ns, rs["metadata"]["name"]) or rs
            rs["status"] = status
            self.store.update(REPLICASETS, rs)
            changed = True
        return changed

    def _new_pod(self, rs: dict, crash: set[str]) -> dict:
        ns = rs["metadata"]["namespace"]
        tmpl = copy.deepcopy(rs["spec"].get("template") or {})
        meta = tmpl.get("metadata") or {}
        for _ in range(20):
            name = f"{rs['metadata']['name']}-{''.join(random.choices(SAFE, k=5))}"
            if self.store.get(PODS, ns, name) is None:
                break
        spec = tmpl.get("spec") or {}
        spec.setdefault("nodeName", "sandbox-node-1")
        containers = spec.get("containers") or []
        crashing = any(c.get("image") in crash for c in containers)
        now = now_iso()
        statuses = []
        for c in containers:
            image = c.get("image", "")
            bad = image in crash
            st: dict[str, Any] = {
                "name": c.get("name", ""),
                "image": image,
                "imageID": f"docker-pullable://{image.split(':')[0]}@sha256:{template_hash({'i': image}) * 6}",
                "ready": not bad,
                "started": not bad,
                "restartCount": 3 if bad else 0,
                "state": {"running": {"startedAt": now}},
            }
            if bad:
                st["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 40s restarting failed container={c.get('name')} pod={name}",
                    }
                }
                st["lastState"] = {
                    "terminated": {
                        "reason": "Error",
                        "exitCode": 1,
                        "startedAt": now,
                        "finishedAt": now,
                    }
                }
            statuses.append(st)
        ready = "False" if crashing else "True"
        pod = self.store.create(
            PODS,
            ns,
            {
                "metadata": {
                    "name": name,
                    "labels": dict(meta.get("labels") or {}),
                    "annotations": dict(meta.get("annotations") or {}),
                    "ownerReferences": [_owner_ref(rs)],
                },
                "spec": spec,
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {"type": "Initialized", "status": "True"},
                        {"type": "Ready", "status": ready},
                        {"type": "ContainersReady", "status": ready},
                        {"type": "PodScheduled", "status": "True"},
                    ],
                    "containerStatuses": statuses,
                    "hostIP": "10.0.0.10",
                    "podIP": f"10.244.0.{random.randint(2, 254)}",
                    "startTime": now,
                    "qosClass": "BestEffort",
                },
            },
        )
        if crashing:
            bad = next(c.get("name", "") for c in containers if c.get("image") in crash)
            self.store.create(
                EVENTS,
                ns,
                {
                    "metadata": {"name": f"{name}.{template_hash({'e': name})}"},
                    "involvedObject": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": name,
                        "namespace": ns,
                        "uid": pod["metadata"]["uid"],
                        "fieldPath": f"spec.containers{{{bad}}}",
                    },
                    "reason": "BackOff",
                    "message": f"Back-off restarting failed container {bad} in pod {name}",
                    "type": "Warning",
                    "count": 3,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "source": {"component": "kubelet", "host": "sandbox-node-1"},
                },
            )
        return pod


def _neg_ts(p: dict) -> float:
    when = _parse(p["metadata"].get("creationTimestamp"))
    return -(when.timestamp() if when else 0.0)


def _annotation(obj: dict, key: str) -> str | None:
    return (obj["metadata"].get("annotations") or {}).get(key)


def _condition(
    prev: dict | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    *,
    transition: str | None = None,
) -> dict:
    """A condition that keeps its timestamps when nothing about it changed."""
    if prev and (prev.get("status"), prev.get("reason"), prev.get("message")) == (
        status,
        reason,
        message,
    ):
        return prev
    changed_status = not prev or prev.get("status") != status
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": transition
        or (now if changed_status else (prev or {}).get("lastTransitionTime", now)),
        "reason": reason,
        "message": message,
    }
