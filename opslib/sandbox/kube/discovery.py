"""The resources the emulator serves and the discovery documents that describe them.

kubectl resolves ``kubectl get pods`` through discovery (``/api``, ``/api/v1``, ``/apis``,
``/apis/<group>/<version>``) before it sends a single resource request: a wrong
``groupVersion`` (kmock 0.8 answers ``"/v1"`` for the core group) makes every core resource
unknown to it. These documents are written here, in the shape a real API server sends, with
the short names (``po``, ``deploy``, ``rs``, ...) engineers type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One served resource: its kind, scope, subresources and the names kubectl accepts."""

    kind: str
    namespaced: bool
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


ALL = ("all",)
# (group, version, plural) -> Resource. events.k8s.io is not served: kubectl's ``get events``
# reads core v1 events, the only ones stored here.
RESOURCES: dict[tuple[str, str, str], Resource] = {
    ("", "v1", "namespaces"): Resource("Namespace", False, ("status",), ("ns",)),
    ("", "v1", "nodes"): Resource("Node", False, ("status",), ("no",)),
    ("", "v1", "pods"): Resource("Pod", True, ("status", "log"), ("po",), ALL),
    ("", "v1", "events"): Resource("Event", True, (), ("ev",)),
    ("", "v1", "services"): Resource("Service", True, ("status",), ("svc",), ALL),
    ("", "v1", "configmaps"): Resource("ConfigMap", True, (), ("cm",)),
    ("", "v1", "secrets"): Resource("Secret", True),
    ("", "v1", "endpoints"): Resource("Endpoints", True, (), ("ep",)),
    ("", "v1", "persistentvolumeclaims"): Resource(
        "PersistentVolumeClaim", True, ("status",), ("pvc",)
    ),
    ("apps", "v1", "deployments"): Resource(
        "Deployment", True, ("status", "scale"), ("deploy",), ALL
    ),
    ("apps", "v1", "replicasets"): Resource("ReplicaSet", True, ("status", "scale"), ("rs",), ALL),
    ("apps", "v1", "statefulsets"): Resource(
        "StatefulSet", True, ("status", "scale"), ("sts",), ALL
    ),
    ("apps", "v1", "daemonsets"): Resource("DaemonSet", True, ("status",), ("ds",), ALL),
    ("batch", "v1", "jobs"): Resource("Job", True, ("status",), (), ALL),
    ("batch", "v1", "cronjobs"): Resource("CronJob", True, ("status",), ("cj",), ALL),
    ("networking.k8s.io", "v1", "ingresses"): Resource("Ingress", True, ("status",), ("ing",), ALL),
    ("autoscaling", "v2", "horizontalpodautoscalers"): Resource(
        "HorizontalPodAutoscaler", True, ("status",), ("hpa",), ALL
    ),
    ("autoscaling", "v1", "horizontalpodautoscalers"): Resource(
        "HorizontalPodAutoscaler", True, ("status",), ("hpa",), ALL
    ),
}
VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
#: the preferred version of each group (the first listed wins)
PREFERRED = {"apps": "v1", "batch": "v1", "autoscaling": "v2", "networking.k8s.io": "v1"}
VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-opslib-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T00:00:00Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _group_versions() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for group, version, _ in RESOURCES:
        if group and version not in groups.setdefault(group, []):
            groups[group].append(version)
    for group, versions in groups.items():
        versions.sort(key=lambda v: v != PREFERRED.get(group))
    return groups


def _group_doc(group: str, versions: list[str]) -> dict:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def document(path: str) -> dict | None:
    """The discovery document at ``path``, or None when there is none (a 404)."""
    parts = [p for p in path.split("/") if p]
    if parts == ["version"]:
        return VERSION
    if parts == ["api"]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }
    if parts == ["apis"]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group_doc(g, vs) for g, vs in sorted(_group_versions().items())],
        }
    if len(parts) == 2 and parts[0] == "apis" and parts[1] in _group_versions():
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            **_group_doc(parts[1], _group_versions()[parts[1]]),
        }
    if parts == ["api", "v1"]:
        return resource_list("", "v1")
    if len(parts) == 3 and parts[0] == "apis" and parts[2] in _group_versions().get(parts[1], []):
        return resource_list(parts[1], parts[2])
    if not parts:
        paths = {"/api", "/api/v1", "/apis", "/version"}
        for group, versions in _group_versions().items():
            paths |= {f"/apis/{group}"} | {f"/apis/{group}/{v}" for v in versions}
        return {"paths": sorted(paths)}
    return None


def resource_list(group: str, version: str) -> dict:
    """``APIResourceList`` for one group version (``groupVersion`` is ``v1`` for the core)."""
    entries = []
    for (g, v, plural), res in RESOURCES.items():
        if (g, v) != (group, version):
            continue
        entries.append(
            {
                "name": plural,
                "singularName": res.kind.lower(),
                "namespaced": res.namespaced,
                "kind": res.kind,
                "verbs": list(VERBS),
                "shortNames": list(res.short_names),
                "categories": list(res.categories),
            }
        )
        for sub in res.subresources:
            entries.append(
                {
                    "name": f"{plural}/{sub}",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "kind": "Scale" if sub == "scale" else res.kind,
                    "group": "autoscaling" if sub == "scale" else None,
                    "version": "v1" if sub == "scale" else None,
                    "verbs": ["get"] if sub == "log" else ["get", "patch", "update"],
                }
            )
    for e in entries:
        for k in [k for k, val in e.items() if val is None]:
            del e[k]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }
