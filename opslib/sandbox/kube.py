"""The sandbox's Kubernetes API: a small stateful layer on kmock's server.

Why not kmock's own ``KubernetesEmulator``: it stores objects, but has no label or field
selectors, treats every PATCH as a plain dict merge (JSON patches break it), knows no
``scale`` subresource, no PUT, no metadata bookkeeping (uid, resourceVersion, generation)
and no namespace deletion. Runbooks call ``list_namespaced_pod(ns, label_selector=...)``
and ``patch_namespaced_deployment_scale`` through the official ``kubernetes`` client, so
this module keeps kmock for what it does well (the aiohttp server, API discovery, Status
errors) and serves the resources from its own store, persisted to ``objects.json`` in
the state dir so a restarted server keeps the seeded incident.

Run as ``python -m opslib.sandbox.kube --port 0 --state DIR``; the bound port is written
to ``DIR/port`` once the server accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import datetime as dt
import json
import os
import re
import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp.web
import jsonpatch
import kmock

# (group, version, plural) -> (kind, namespaced, subresources)
RESOURCES: dict[tuple[str, str, str], tuple[str, bool, tuple[str, ...]]] = {
    ("", "v1", "namespaces"): ("Namespace", False, ("status",)),
    ("", "v1", "nodes"): ("Node", False, ("status",)),
    ("", "v1", "pods"): ("Pod", True, ("status", "log")),
    ("", "v1", "events"): ("Event", True, ()),
    ("", "v1", "services"): ("Service", True, ("status",)),
    ("", "v1", "configmaps"): ("ConfigMap", True, ()),
    ("", "v1", "secrets"): ("Secret", True, ()),
    ("", "v1", "endpoints"): ("Endpoints", True, ()),
    ("", "v1", "persistentvolumeclaims"): ("PersistentVolumeClaim", True, ("status",)),
    ("apps", "v1", "deployments"): ("Deployment", True, ("status", "scale")),
    ("apps", "v1", "replicasets"): ("ReplicaSet", True, ("status", "scale")),
    ("apps", "v1", "statefulsets"): ("StatefulSet", True, ("status", "scale")),
    ("apps", "v1", "daemonsets"): ("DaemonSet", True, ("status",)),
    ("batch", "v1", "jobs"): ("Job", True, ("status",)),
    ("batch", "v1", "cronjobs"): ("CronJob", True, ("status",)),
    ("events.k8s.io", "v1", "events"): ("Event", True, ()),
}
VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SCALABLE = {"deployments", "replicasets", "statefulsets"}
#: annotation whose value ``read_namespaced_pod_log`` returns (scenarios set it to seed logs)
LOG_ANNOTATION = "sandbox.opslib.dev/log"
PRESET_NAMESPACES = ("default", "kube-system", "kube-public")


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


# --- selectors -----------------------------------------------------------------------------

_LABEL_TERM = re.compile(
    r"""^\s*(?:
        (?P<neg>!)\s*(?P<nkey>[\w./-]+)                                  # !key
      | (?P<skey>[\w./-]+)\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\)   # key in (a,b)
      | (?P<key>[\w./-]+)\s*(?P<op>==|=|!=)\s*(?P<val>[\w./-]*)         # key=value
      | (?P<ekey>[\w./-]+)                                               # key
    )\s*$""",
    re.VERBOSE,
)


class SelectorError(ValueError):
    """Raised when a label or field selector cannot be parsed (answered with HTTP 400)."""


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )`` (``a in (x,y),b=c``)."""
    terms, depth, cur = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def match_labels(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics: every comma-separated term must hold."""
    terms = [(_LABEL_TERM.match(t), t) for t in _split_terms(selector or "")]
    for m, term in terms:  # all parsed first: a malformed term is an error even after a miss
        if not m:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    for m, _ in terms:
        if m["nkey"]:
            ok = m["nkey"] not in labels
        elif m["skey"]:
            vals = {v.strip() for v in m["vals"].split(",") if v.strip()}
            ok = (
                labels.get(m["skey"]) in vals
                if m["setop"] == "in"
                else labels.get(m["skey"]) not in vals
            )
        elif m["key"]:
            have = labels.get(m["key"])
            ok = have == m["val"] if m["op"] in ("=", "==") else have != m["val"]
        else:
            ok = m["ekey"] in labels
        if not ok:
            return False
    return True


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def match_fields(selector: str, obj: dict) -> bool:
    """Field selectors (``status.phase=Running,metadata.name!=x``) on any dotted path."""
    terms = [
        (re.match(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$", t), t)
        for t in _split_terms(selector or "")
    ]
    for m, term in terms:
        if not m:
            raise SelectorError(f"invalid field selector: {term!r}")
    for m, _ in terms:
        path, op, want = m.groups()
        have = _dig(obj, path)
        have = "" if have is None else str(have)
        if (have == want) != (op in ("=", "==")):
            return False
    return True


# --- patches -------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``null`` deletes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """An approximation of strategic merge: lists of named dicts (containers, env, ports)
    merge item by item on ``name``; other lists are replaced, as in a merge patch."""
    if isinstance(patch, list) and isinstance(target, list):
        if all(isinstance(i, dict) and "name" in i for i in patch + target):
            merged = [copy.deepcopy(i) for i in target]
            index = {i["name"]: n for n, i in enumerate(merged)}
            for item in patch:
                if item["name"] in index:
                    merged[index[item["name"]]] = strategic_merge_patch(
                        merged[index[item["name"]]], item
                    )
                else:
                    merged.append(copy.deepcopy(item))
            return merged
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


# --- the server ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Req:
    method: str
    params: dict[str, str]
    data: Any
    content_type: str
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
    """kmock's scaffold (discovery, errors, aiohttp plumbing) plus a stateful object store."""

    def __init__(self, state_file: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self._rv = 0
        self._state_file = state_file
        self._changed = asyncio.Condition()
        self._log: list[tuple[int, tuple[str, str], str, dict]] = []  # for watches
        for (group, version, plural), (kind, namespaced, subs) in RESOURCES.items():
            key = f"{group}/{version}/{plural}" if group else f"{version}/{plural}"
            self.resources[key] = kmock.ResourceInfo(
                kind=kind,
                namespaced=namespaced,
                singular=kind.lower(),
                verbs=VERBS,
                subresources=subs,
            )
        self._load()
        for ns in PRESET_NAMESPACES:
            if ("", ns) not in self._bucket("", "namespaces"):
                self._insert(("", "v1", "namespaces"), "", {"metadata": {"name": ns}})

    # persistence: the whole store is small; rewrite it atomically after each change
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

    def _insert(self, res: tuple[str, str, str], namespace: str, body: dict) -> dict:
        group, version, plural = res
        kind, namespaced, _ = RESOURCES[res]
        obj = copy.deepcopy(body)
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["resourceVersion"] = self._next_rv()
        meta["generation"] = 1
        self._default(plural, obj)
        self._bucket(group, plural)[(namespace if namespaced else "", meta["name"])] = obj
        return obj

    @staticmethod
    def _default(plural: str, obj: dict) -> None:
        """The bits a controller would fill in, so reads look like a live cluster's."""
        if plural in SCALABLE:
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            n = spec["replicas"]
            status = obj.setdefault("status", {})
            status.update(
                observedGeneration=obj["metadata"].get("generation", 1),
                replicas=n,
                updatedReplicas=n,
                readyReplicas=n,
                availableReplicas=n,
            )
            status.pop("unavailableReplicas", None)
            if plural == "deployments" and "conditions" not in status:
                status["conditions"] = [
                    {
                        "type": "Available",
                        "status": "True",
                        "reason": "MinimumReplicasAvailable",
                        "lastUpdateTime": _now(),
                        "lastTransitionTime": _now(),
                    },
                ]
        elif plural == "pods":
            obj.setdefault("status", {}).setdefault("phase", "Running")
        elif plural == "namespaces":
            obj.setdefault("status", {}).setdefault("phase", "Active")

    async def _notify(self, res_key: tuple[str, str], kind: str, obj: dict) -> None:
        """Record a change for watchers (each event has its own resourceVersion) and persist."""
        if kind == "DELETED":
            obj.setdefault("metadata", {})["resourceVersion"] = self._next_rv()
        self._log.append((self._rv, res_key, kind, copy.deepcopy(obj)))
        del self._log[:-2000]
        self._save()
        async with self._changed:
            self._changed.notify_all()

    # --- dispatch ----------------------------------------------------------------------
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Resource paths go to the store; the rest (discovery, /version) to kmock.

        The path is parsed here because kmock 0.8 cannot parse ``/api/v1/namespaces``
        (it expects a namespace name after ``namespaces``).
        """
        parsed = parse_resource_path(raw.path)
        if parsed is None:
            # kmock's RawHandler keeps every request for assertions; a long-lived server must not.
            self._requests.clear()
            return await super().__call__(raw)
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
            raw=raw,
            namespace=ns,
            name=name,
            subresource=sub,
        )
        try:
            return await self._serve(req, key)
        except SelectorError as exc:
            return _status(400, "BadRequest", str(exc))
        except jsonpatch.JsonPatchException as exc:
            return _status(422, "Invalid", f"json patch failed: {exc}")
        except (jsonpatch.JsonPointerException, ValueError, TypeError, KeyError) as exc:
            return _status(400, "BadRequest", f"cannot handle the request body: {exc!r}")

    async def _serve(self, request: _Req, key: tuple[str, str, str]):
        group, version, plural = key
        kind, namespaced, subresources = RESOURCES[key]
        ns = (request.namespace or "") if namespaced else ""
        name, sub = request.name, request.subresource
        method = request.method
        params = request.params
        bucket = self._bucket(group, plural)

        if sub and sub not in subresources:
            return _status(404, "NotFound", f"{plural} has no subresource {sub!r}")
        if (
            namespaced
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
                return aiohttp.web.json_response(
                    {
                        "apiVersion": f"{group}/{version}" if group else version,
                        "kind": f"{kind}List",
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
                    return _status(422, "Invalid", f"{kind}: metadata.name: Required value")
                if namespaced and not ns:
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
                obj = self._insert(key, ns, body)
                await self._notify((group, plural), "ADDED", obj)
                return aiohttp.web.json_response(obj, status=201)
            if method == "DELETE":  # deletecollection
                doomed = self._select(bucket, ns, params)
                for obj in doomed:
                    meta = obj["metadata"]
                    del bucket[(meta.get("namespace", ""), meta["name"])]
                    await self._notify((group, plural), "DELETED", obj)
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
            return aiohttp.web.json_response(obj)
        if method == "DELETE":
            del bucket[(ns, name)]
            if plural == "namespaces":
                await self._drop_namespace(name)
            await self._notify((group, plural), "DELETED", obj)
            return aiohttp.web.json_response(obj)
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
            await self._notify((group, plural), "MODIFIED", updated)
            return aiohttp.web.json_response(self._scale(updated) if sub == "scale" else updated)
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
        gen = old_meta.get("generation", 1)
        meta["generation"] = gen + 1 if merged.get("spec") != old.get("spec") else gen
        meta["resourceVersion"] = self._next_rv()
        if plural in SCALABLE and merged.get("spec") != old.get("spec"):
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

    async def _drop_namespace(self, ns: str) -> None:
        for (group, plural), bucket in self._store.items():
            for obj_key in [k for k in bucket if k[0] == ns]:
                obj = bucket.pop(obj_key)
                await self._notify((group, plural), "DELETED", obj)

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
        tmp = state / "port.tmp"
        tmp.write_text(str(server.port))
        os.replace(tmp, state / "port")
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m opslib.sandbox.kube",
        description="The opslib sandbox's Kubernetes API emulator.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state", required=True, type=Path, help="dir for objects.json and port")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.state))


if __name__ == "__main__":
    main()
