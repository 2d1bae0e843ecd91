"""The sandbox's Kubernetes API server: a stateful store on kmock's aiohttp plumbing.

Why not kmock's own ``KubernetesEmulator``: it stores objects, but has no label or field
selectors, treats every PATCH as a plain dict merge (JSON patches break it), knows no
``scale`` subresource, no PUT, no metadata bookkeeping (uid, resourceVersion, generation),
no namespace deletion, and its discovery says ``groupVersion: "/v1"`` for the core group,
which makes the real kubectl blind to pods. So this module serves discovery
(:mod:`.discovery`), resources from its own store, ``Table`` responses for ``kubectl get``
(:mod:`.tables`), garbage collection through ownerReferences, and runs a small deployment
controller (:mod:`.controller`) after every write and on a 0.25 s tick. The store persists to
``objects.json`` in the state dir so a restarted server keeps the seeded incident.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime as dt
import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp.web
import jsonpatch
import kmock

from opslib.sandbox.kube import discovery, tables
from opslib.sandbox.kube.controller import Controller, controller_uid
from opslib.sandbox.kube.selectors import (
    SelectorError,
    match_fields,
    match_labels,
    merge_patch,
    strategic_merge_patch,
)

RESOURCES = discovery.RESOURCES
#: annotation whose value ``read_namespaced_pod_log`` returns (scenarios set it to seed logs)
LOG_ANNOTATION = "sandbox.opslib.dev/log"
PRESET_NAMESPACES = ("default", "kube-system", "kube-public")
#: writes to these resources wake the deployment controller for the namespace
CONTROLLED = {"deployments", "replicasets", "pods", "configmaps"}
TICK_S = 0.25


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str, details: dict | None = None):
    """A Kubernetes ``Status`` error, which the official client turns into ``ApiException``."""
    return aiohttp.web.json_response(
        {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details or {},
            "code": code,
        },
        status=code,
    )


@dataclasses.dataclass(frozen=True)
class _Req:
    method: str
    params: dict[str, str]
    data: Any
    content_type: str
    accept: str
    raw: aiohttp.web.BaseRequest
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_resource_path(path: str):
    """``/api/v1/namespaces/ns/pods/name/log`` -> ((group, version, plural), ns, name, sub).

    None for non-resource paths (discovery: ``/api``, ``/apis/apps/v1``, ``/version``).
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        ns, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return (group, version, plural), ns, name, sub


class SandboxKube(kmock.KubernetesScaffold):
    """kmock's aiohttp plumbing plus discovery, a stateful object store and a controller."""

    def __init__(self, state_file: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self._rv = 0
        self._state_file = state_file
        self._changed = asyncio.Condition()
        self._log: list[tuple[int, tuple[str, str], str, dict]] = []  # for watches
        self._dirty = False
        self.controller = Controller(self)
        self._load()
        for ns in PRESET_NAMESPACES:
            if ("", ns) not in self._bucket("", "namespaces"):
                self.create(("", "v1", "namespaces"), "", {"metadata": {"name": ns}})

    # --- persistence: the whole store is small; rewrite it atomically after each change ---
    def _load(self) -> None:
        if self._state_file and self._state_file.exists():
            data = json.loads(self._state_file.read_text())
            self._rv = int(data.get("resourceVersion", 0))
            for entry in data.get("objects", []):
                group, plural = entry["group"], entry["plural"]
                obj = entry["object"]
                meta = obj.get("metadata", {})
                self._bucket(group, plural)[(meta.get("namespace", ""), meta["name"])] = obj

    def _save(self) -> None:
        if not self._state_file:
            return
        objects = [
            {"group": g, "plural": p, "object": o}
            for (g, p), bucket in self._store.items()
            for o in bucket.values()
        ]
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"resourceVersion": self._rv, "objects": objects}))
        os.replace(tmp, self._state_file)

    def _bucket(self, group: str, plural: str) -> dict[tuple[str, str], dict]:
        return self._store.setdefault((group, plural), {})

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _record(self, key: tuple[str, str], kind: str, obj: dict) -> None:
        """Log a change for watchers (each event has its own resourceVersion)."""
        if kind == "DELETED":
            obj.setdefault("metadata", {})["resourceVersion"] = self._next_rv()
        self._log.append((self._rv, key, kind, copy.deepcopy(obj)))
        del self._log[:-5000]
        self._dirty = True

    async def _commit(self) -> None:
        """Persist and wake the watchers, once per request or tick."""
        if not self._dirty:
            return
        self._dirty = False
        self._save()
        async with self._changed:
            self._changed.notify_all()

    # --- the synchronous store API (also what the controller uses) ----------------------
    def objects(
        self, key: tuple[str, str, str], ns: str, *, owner_uid: str | None = None
    ) -> list[dict]:
        """Copies of the objects in ``ns`` (every namespace when empty); with ``owner_uid``,
        only those that object controls (``""``: orphans, controlled by nothing), filtered
        before copying (the controller asks for a
        ReplicaSet's pods on every pass: copying every pod of the namespace to keep a few
        was most of its time)."""
        group, _, plural = key
        return [
            copy.deepcopy(o)
            for (o_ns, _), o in sorted(self._bucket(group, plural).items())
            if (not ns or o_ns == ns)
            and (owner_uid is None or (controller_uid(o) or "") == owner_uid)
        ]

    def get(self, key: tuple[str, str, str], ns: str, name: str) -> dict | None:
        obj = self._bucket(key[0], key[2]).get((ns if RESOURCES[key].namespaced else "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def create(self, key: tuple[str, str, str], ns: str, body: dict) -> dict:
        group, version, plural = key
        res = RESOURCES[key]
        obj = copy.deepcopy(body)
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = res.kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if res.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["resourceVersion"] = self._next_rv()
        meta["generation"] = 1
        self._default(plural, obj)
        if plural == "events":
            self._link_event(obj, ns)
        self._bucket(group, plural)[(ns if res.namespaced else "", meta["name"])] = obj
        self._record((group, plural), "ADDED", obj)
        return copy.deepcopy(obj)

    def update(self, key: tuple[str, str, str], obj: dict) -> dict:
        """Store ``obj`` as the new version (controller writes: no generation change)."""
        group, _, plural = key
        meta = obj["metadata"]
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = self._next_rv()
        self._bucket(group, plural)[(meta.get("namespace", ""), meta["name"])] = stored
        self._record((group, plural), "MODIFIED", stored)
        return copy.deepcopy(stored)

    def delete(
        self, key: tuple[str, str, str], ns: str, name: str, *, orphan: bool = False
    ) -> dict | None:
        """Remove an object and (background cascade) everything it controls."""
        group, _, plural = key
        obj = self._bucket(group, plural).pop((ns if RESOURCES[key].namespaced else "", name), None)
        if obj is None:
            return None
        if plural == "namespaces":
            self._drop_namespace(name)
        self._record((group, plural), "DELETED", obj)
        if not orphan:
            uid = obj["metadata"]["uid"]
            for dep_key in RESOURCES:
                if not RESOURCES[dep_key].namespaced:
                    continue
                for child in self.objects(dep_key, ns):
                    refs = child["metadata"].get("ownerReferences") or []
                    if any(r.get("uid") == uid for r in refs):
                        self.delete(dep_key, ns, child["metadata"]["name"])
        return obj

    def _link_event(self, event: dict, ns: str) -> None:
        """Fill ``involvedObject.uid`` (what ``kubectl describe`` selects events by)."""
        inv = event.get("involvedObject") or {}
        if inv.get("uid") or not inv.get("kind") or not inv.get("name"):
            return
        for key, res in RESOURCES.items():
            if res.kind == inv["kind"]:
                target = self.get(key, inv.get("namespace") or ns, inv["name"])
                if target:
                    inv["uid"] = target["metadata"]["uid"]
                return

    @staticmethod
    def _default(plural: str, obj: dict) -> None:
        """Fill in what a controller would, for kinds the sandbox controller does not run."""
        controlled = plural == "deployments" and (obj.get("spec") or {}).get("template")
        if plural in ("statefulsets",) or (plural == "deployments" and not controlled):
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            n = spec["replicas"]
            obj["status"] = {
                "observedGeneration": obj["metadata"].get("generation", 1),
                "replicas": n,
                "updatedReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
            }
        elif plural in ("deployments", "replicasets"):
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            if plural == "deployments":
                strategy = spec.setdefault("strategy", {})
                strategy.setdefault("type", "RollingUpdate")
                if strategy["type"] == "RollingUpdate":
                    rolling = strategy.setdefault("rollingUpdate", {})
                    rolling.setdefault("maxSurge", "25%")
                    rolling.setdefault("maxUnavailable", "25%")
                spec.setdefault("revisionHistoryLimit", 10)
                spec.setdefault("progressDeadlineSeconds", 600)
            obj.setdefault("status", {})
        elif plural == "pods":
            obj.setdefault("status", {}).setdefault("phase", "Running")
        elif plural == "namespaces":
            obj.setdefault("status", {}).setdefault("phase", "Active")

    def _drop_namespace(self, ns: str) -> None:
        for (group, plural), bucket in self._store.items():
            for obj_key in [k for k in bucket if k[0] == ns]:
                self._record((group, plural), "DELETED", bucket.pop(obj_key))

    # --- the controller: after each write, and on a tick while server runs ---------------
    def reconcile(self, namespaces: list[str] | None = None) -> None:
        if namespaces is None:
            namespaces = sorted(
                {
                    ns
                    for (g, p), b in self._store.items()
                    if p in ("deployments", "replicasets")
                    for ns, _ in b
                }
            )
        self.controller.reconcile(namespaces)

    def namespaces_in_motion(self) -> list[str]:
        """Namespaces where the clock alone can change something: a deployment whose rollout
        is not complete (a step due, a progress deadline to pass) or has no status yet.

        Every write already reconciles its namespace; the tick only has to move time-driven
        state. Reconciling every namespace four times a second deep-copied every deployment
        and ReplicaSet each time: 15 % of a core for an idle emulator, taken from the tests.
        """
        moving: set[str] = set()
        for (ns, _name), d in self._bucket("apps", "deployments").items():
            conds = (d.get("status") or {}).get("conditions") or []
            reasons = {c.get("reason") for c in conds if c.get("type") == "Progressing"}
            if "NewReplicaSetAvailable" not in reasons:
                moving.add(ns)
        return sorted(moving)

    async def tick(self) -> None:
        """Advance stepped rollouts and progress deadlines (see opslib.sandbox.kube.controller)."""
        while True:
            await asyncio.sleep(TICK_S)
            moving = self.namespaces_in_motion()
            if moving:
                self.reconcile(moving)
            await self._commit()

    # --- dispatch ----------------------------------------------------------------------
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Resource paths go to the store; discovery documents are answered here."""
        parsed = parse_resource_path(raw.path)
        if parsed is None:
            doc = discovery.document(raw.path)
            if doc is not None and raw.method.upper() == "GET":
                return aiohttp.web.json_response(doc)
            return _status(
                404, "NotFound", f"the server could not find the requested resource ({raw.path})"
            )
        key, ns, name, sub = parsed
        if key not in RESOURCES:
            return _status(
                404, "NotFound", f"the server could not find the requested resource ({key[2]})"
            )
        body = await raw.read()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return _status(400, "BadRequest", "the request body is not valid JSON")
        req = _Req(
            method=raw.method.upper(),
            params=dict(raw.query),
            data=data,
            content_type=raw.headers.get("Content-Type", ""),
            accept=raw.headers.get("Accept", ""),
            raw=raw,
            namespace=ns,
            name=name,
            subresource=sub,
        )
        try:
            resp = await self._serve(req, key)
        except SelectorError as exc:
            return _status(400, "BadRequest", str(exc))
        except jsonpatch.JsonPatchException as exc:
            return _status(422, "Invalid", f"json patch failed: {exc}")
        except (jsonpatch.JsonPointerException, ValueError, TypeError, KeyError) as exc:
            return _status(400, "BadRequest", f"cannot handle the request body: {exc!r}")
        finally:
            await self._commit()
        return resp

    def _after_write(self, key: tuple[str, str, str], ns: str) -> None:
        if key[2] in CONTROLLED and ns:
            self.reconcile(sorted({ns}) if key[2] != "configmaps" else None)

    def _respond(self, req: _Req, kind: str, objs: list[dict], *, single: bool = False):
        if tables.wants_table(req.accept):
            return aiohttp.web.json_response(
                tables.table(
                    kind,
                    objs,
                    resource_version=str(self._rv),
                    include=req.params.get("includeObject", ""),
                )
            )
        return aiohttp.web.json_response(objs[0]) if single else None

    async def _serve(self, request: _Req, key: tuple[str, str, str]):
        group, version, plural = key
        res = RESOURCES[key]
        ns = (request.namespace or "") if res.namespaced else ""
        name, sub = request.name, request.subresource
        method = request.method
        params = request.params
        bucket = self._bucket(group, plural)

        if sub and sub not in res.subresources:
            return _status(404, "NotFound", f"{plural} has no subresource {sub!r}")
        if (
            res.namespaced
            and ns
            and method in ("POST", "PUT", "PATCH")
            and ("", ns) not in self._bucket("", "namespaces")
        ):
            return _status(
                404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
            )

        if name is None:
            if method == "GET" and params.get("watch") in ("true", "1"):
                return await self._watch(request, key, ns)
            if method == "GET":
                items = self._select(bucket, ns, params)
                table = self._respond(request, res.kind, items)
                if table is not None:
                    return table
                return aiohttp.web.json_response(
                    {
                        "apiVersion": f"{group}/{version}" if group else version,
                        "kind": f"{res.kind}List",
                        "metadata": {"resourceVersion": str(self._rv)},
                        "items": items,
                    }
                )
            if method == "POST":
                body = request.data if isinstance(request.data, dict) else None
                if not body:
                    return _status(400, "BadRequest", "the request body must be a JSON object")
                meta = body.get("metadata") or {}
                if not meta.get("name") and not meta.get("generateName"):
                    return _status(422, "Invalid", f"{res.kind}: metadata.name: Required value")
                if res.namespaced and not ns:
                    ns = meta.get("namespace") or "default"
                if meta.get("name") and (ns, meta["name"]) in bucket:
                    return _status(
                        409,
                        "AlreadyExists",
                        f'{plural} "{meta["name"]}" already exists',
                        {"name": meta["name"], "kind": plural},
                    )
                if params.get("dryRun"):
                    return aiohttp.web.json_response(body, status=201)
                obj = self.create(key, ns, body)
                self._after_write(key, ns)
                return aiohttp.web.json_response(
                    self.get(key, ns, obj["metadata"]["name"]) or obj, status=201
                )
            if method == "DELETE":  # deletecollection
                doomed = self._select(bucket, ns, params)
                for obj in doomed:
                    meta = obj["metadata"]
                    self.delete(key, meta.get("namespace", ""), meta["name"])
                self._after_write(key, ns)
                return aiohttp.web.json_response(
                    {
                        "apiVersion": "v1",
                        "kind": "Status",
                        "metadata": {},
                        "status": "Success",
                        "details": {"count": len(doomed)},
                    }
                )
            return _status(405, "MethodNotAllowed", f"{method} is not allowed on a collection")

        obj = bucket.get((ns, name))
        if obj is None:
            return _status(
                404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural}
            )

        if method == "GET":
            if sub == "scale":
                return aiohttp.web.json_response(self._scale(obj))
            if sub == "log":
                text = (obj["metadata"].get("annotations") or {}).get(LOG_ANNOTATION, "")
                tail = int(params.get("tailLines") or 0)
                if tail > 0:
                    text = "".join(text.splitlines(keepends=True)[-tail:])
                return aiohttp.web.Response(text=text, content_type="text/plain")
            return self._respond(request, res.kind, [copy.deepcopy(obj)], single=True)
        if method == "DELETE":
            body = request.data if isinstance(request.data, dict) else {}
            policy = body.get("propagationPolicy") or params.get("propagationPolicy") or ""
            gone = self.delete(key, ns, name, orphan=policy == "Orphan")
            self._after_write(key, ns)
            return aiohttp.web.json_response(gone)
        if method in ("PATCH", "PUT"):
            body = request.data
            if method == "PATCH":
                ctype = request.content_type.split(";")[0].strip()
                current = self._scale(obj) if sub == "scale" else obj
                if ctype == "application/json-patch+json":
                    new = jsonpatch.apply_patch(current, body)
                elif ctype == "application/merge-patch+json":
                    new = merge_patch(current, body)
                elif ctype in ("application/strategic-merge-patch+json", "application/json", ""):
                    new = strategic_merge_patch(current, body)
                else:
                    return _status(415, "UnsupportedMediaType", f"unsupported patch type {ctype!r}")
            else:
                if not isinstance(body, dict):
                    return _status(400, "BadRequest", "the request body must be a JSON object")
                want_rv = (body.get("metadata") or {}).get("resourceVersion")
                if want_rv and want_rv != obj["metadata"]["resourceVersion"]:
                    return _status(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {plural} "{name}": '
                        "the object has been modified; please apply your changes to the latest "
                        "version and try again",
                    )
                new = copy.deepcopy(body)
            updated = self._apply_update(key, obj, new, sub)
            bucket[(ns, name)] = updated
            self._record((group, plural), "MODIFIED", updated)
            self._after_write(key, ns)
            fresh = bucket.get((ns, name), updated)
            return aiohttp.web.json_response(self._scale(fresh) if sub == "scale" else fresh)
        return _status(405, "MethodNotAllowed", f"{method} is not allowed on {plural}/{name}")

    def _apply_update(
        self, key: tuple[str, str, str], old: dict, new: dict, sub: str | None
    ) -> dict:
        """Keep identity fields, bump resourceVersion, and generation when the spec changed."""
        plural = key[2]
        if sub == "scale":
            merged = copy.deepcopy(old)
            merged.setdefault("spec", {})["replicas"] = int(
                (new.get("spec") or {}).get("replicas", 0)
            )
        elif sub == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status", {})
            merged["metadata"]["resourceVersion"] = self._next_rv()
            return merged
        else:
            merged = new
        meta = merged.setdefault("metadata", {})
        old_meta = old["metadata"]
        for field in ("name", "namespace", "uid", "creationTimestamp"):
            if field in old_meta:
                meta[field] = old_meta[field]
        merged["apiVersion"], merged["kind"] = old["apiVersion"], old["kind"]
        if "status" not in merged and "status" in old:
            merged["status"] = copy.deepcopy(old["status"])
        gen = old_meta.get("generation", 1)
        meta["generation"] = gen + 1 if merged.get("spec") != old.get("spec") else gen
        meta["resourceVersion"] = self._next_rv()
        if merged.get("spec") != old.get("spec"):
            self._default(plural, merged)
        return merged

    @staticmethod
    def _scale(obj: dict) -> dict:
        meta = obj["metadata"]
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in selector.items()),
            },
        }

    def _select(self, bucket: dict, ns: str, params: dict) -> list[dict]:
        label_sel, field_sel = params.get("labelSelector", ""), params.get("fieldSelector", "")
        match_labels(label_sel, {})  # a malformed selector is a 400 even when nothing is stored
        match_fields(field_sel, {})
        items = []
        for (obj_ns, _), obj in sorted(bucket.items()):
            if ns and obj_ns != ns:
                continue
            if label_sel and not match_labels(label_sel, obj["metadata"].get("labels") or {}):
                continue
            if field_sel and not match_fields(field_sel, obj):
                continue
            items.append(obj)
        limit = int(params.get("limit") or 0)
        return items[:limit] if limit > 0 else items

    async def _watch(self, request: _Req, key: tuple[str, str, str], ns: str):
        """A watch stream: the current objects as ADDED (unless resourceVersion is given),
        then changes as they happen, until ``timeoutSeconds`` (default 30 s)."""
        group, _, plural = key
        params = request.params
        resp = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request.raw)
        since = int(params.get("resourceVersion") or 0)
        if not since:
            since = self._rv  # before any await: later changes come from the log
            for obj in self._select(self._bucket(group, plural), ns, params):
                await resp.write(json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(params.get("timeoutSeconds") or 30)
        try:
            while True:
                for rv, res_key, kind, obj in [e for e in self._log if e[0] > since]:
                    since = rv
                    if res_key != (group, plural):
                        continue
                    if ns and obj["metadata"].get("namespace", "") != ns:
                        continue
                    if not self._select({("", obj["metadata"]["name"]): obj}, "", params):
                        continue
                    await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                left = deadline - loop.time()
                if left <= 0:
                    break
                async with self._changed:
                    if self._log and self._log[-1][0] > since:
                        continue  # changed while we were writing
                    try:
                        await asyncio.wait_for(self._changed.wait(), timeout=left)
                    except TimeoutError:
                        break
        except (ConnectionError, asyncio.CancelledError):
            return resp
        await resp.write_eof()
        return resp


def write_kubeconfig(path: Path, url: str, *, namespace: str = "default") -> Path:
    """A kubeconfig with one context, ``opslib-sandbox``, pointing at ``url`` (no credentials)."""
    import yaml

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "opslib-sandbox", "cluster": {"server": url}}],
        "users": [{"name": "opslib-sandbox", "user": {}}],
        "contexts": [
            {
                "name": "opslib-sandbox",
                "context": {
                    "cluster": "opslib-sandbox",
                    "user": "opslib-sandbox",
                    "namespace": namespace,
                },
            }
        ],
        "current-context": "opslib-sandbox",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def serve(host: str, port: int, state: Path) -> None:
    """Serve until SIGTERM/SIGINT; write the bound port to ``state/port`` once listening."""
    state.mkdir(parents=True, exist_ok=True)
    handler = SandboxKube(state_file=state / "objects.json")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with handler, kmock.Server(handler, host=host, port=port or None) as server:
        ticker = asyncio.create_task(handler.tick())
        tmp = state / "port.tmp"
        tmp.write_text(str(server.port))
        os.replace(tmp, state / "port")
        await stop.wait()
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
