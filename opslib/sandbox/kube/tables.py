"""Server-side printing: the ``Table`` that ``kubectl get`` asks for and prints as columns.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever
columns the server returns; a plain list makes it print names only. The columns and cell
formats follow the API server's printers (READY ``1/3``, pod STATUS from the container
states, AGE as ``5m30s``), for the kinds the runbooks use; other kinds get NAME and AGE.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable


def wants_table(accept: str) -> bool:
    return "as=Table" in (accept or "")


def _since(ts: str | None, now: dt.datetime) -> dt.timedelta | None:
    if not ts:
        return None
    try:
        when = dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return now - when


def human_duration(d: dt.timedelta | None) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``: 45s, 5m30s, 3h12m, 2d5h."""
    if d is None:
        return "<unknown>"
    s = int(d.total_seconds())
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    days = h // 24
    if days < 8:
        return f"{days}d{h % 24}h" if h % 24 else f"{days}d"
    return f"{days}d" if days < 730 else f"{days // 365}y"


def _age(obj: dict, now: dt.datetime) -> str:
    return human_duration(_since(obj.get("metadata", {}).get("creationTimestamp"), now))


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec") or {}
    if "template" in spec:
        spec = (spec.get("template") or {}).get("spec") or {}
    return list(spec.get("containers") or [])


def _selector(obj: dict) -> str:
    sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sel.items())


def pod_status(pod: dict) -> str:
    """The STATUS column: the phase, unless a container says why it is not running."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            t = state["terminated"]
            reason = t.get("reason") or f"ExitCode:{t.get('exitCode', 0)}"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_row(pod: dict, now: dt.datetime) -> list:
    status = pod.get("status") or {}
    cs = status.get("containerStatuses") or []
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in cs)
    last = max(
        (((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or "" for c in cs),
        default="",
    )
    restarts_cell = str(restarts)
    if restarts and last:
        restarts_cell += f" ({human_duration(_since(last, now))} ago)"
    spec = pod.get("spec") or {}
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(spec.get('containers') or cs)}",
        pod_status(pod),
        restarts_cell,
        _age(pod, now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _deployment_row(d: dict, now: dt.datetime) -> list:
    spec, st = d.get("spec") or {}, d.get("status") or {}
    cs = _containers(d)
    return [
        d["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        _age(d, now),
        ",".join(c.get("name", "") for c in cs),
        ",".join(c.get("image", "") for c in cs),
        _selector(d),
    ]


def _replicaset_row(rs: dict, now: dt.datetime) -> list:
    spec, st = rs.get("spec") or {}, rs.get("status") or {}
    cs = _containers(rs)
    return [
        rs["metadata"]["name"],
        spec.get("replicas", 0),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        _age(rs, now),
        ",".join(c.get("name", "") for c in cs),
        ",".join(c.get("image", "") for c in cs),
        _selector(rs),
    ]


def _event_row(e: dict, now: dt.datetime) -> list:
    obj = e.get("involvedObject") or {}
    last = e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp")
    first = e.get("firstTimestamp") or last
    src = e.get("source") or {}
    return [
        human_duration(_since(last, now)),
        e.get("type", ""),
        e.get("reason", ""),
        f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}",
        e.get("message", ""),
        obj.get("fieldPath", ""),
        ", ".join(v for v in (src.get("component"), src.get("host")) if v),
        human_duration(_since(first, now)),
        int(e.get("count") or 1),
        e["metadata"]["name"],
    ]


def _service_row(s: dict, now: dt.datetime) -> list:
    spec = s.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    ext = ",".join(
        i.get("ip") or i.get("hostname", "")
        for i in ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    )
    sel = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
    return [
        s["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or "<none>",
        ext or "<none>",
        ports or "<none>",
        _age(s, now),
        sel or "<none>",
    ]


def _hpa_row(h: dict, now: dt.datetime) -> list:
    spec, st = h.get("spec") or {}, h.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    targets = []
    for m in spec.get("metrics") or []:
        res = m.get("resource") or {}
        want = (res.get("target") or {}).get("averageUtilization")
        have = next(
            (
                (c.get("resource") or {}).get("current", {}).get("averageUtilization")
                for c in st.get("currentMetrics") or []
                if (c.get("resource") or {}).get("name") == res.get("name")
            ),
            None,
        )
        targets.append(
            f"{res.get('name', '')}: {'<unknown>' if have is None else f'{have}%'}/{want}%"
        )
    return [
        h["metadata"]["name"],
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        ", ".join(targets) or "<none>",
        spec.get("minReplicas", 1),
        spec.get("maxReplicas", 0),
        st.get("currentReplicas", 0),
        _age(h, now),
    ]


def _node_row(n: dict, now: dt.datetime) -> list:
    conds = {
        c.get("type"): c.get("status") for c in (n.get("status") or {}).get("conditions") or []
    }
    ready = "Ready" if conds.get("Ready", "True") == "True" else "NotReady"
    roles = sorted(
        k.split("/", 1)[1]
        for k in (n["metadata"].get("labels") or {})
        if k.startswith("node-role.kubernetes.io/")
    )
    info = (n.get("status") or {}).get("nodeInfo") or {}
    return [
        n["metadata"]["name"],
        ready,
        ",".join(roles) or "<none>",
        _age(n, now),
        info.get("kubeletVersion", ""),
    ]


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


NAME = _col("Name", fmt="name")
AGE = _col("Age")
Printer = tuple[list[dict], Callable[[dict, dt.datetime], list]]
PRINTERS: dict[str, Printer] = {
    "Pod": (
        [
            NAME,
            _col("Ready"),
            _col("Status"),
            _col("Restarts"),
            AGE,
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ],
        _pod_row,
    ),
    "Deployment": (
        [
            NAME,
            _col("Ready"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            AGE,
            _col("Containers", priority=1),
            _col("Images", priority=1),
            _col("Selector", priority=1),
        ],
        _deployment_row,
    ),
    "ReplicaSet": (
        [
            NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            AGE,
            _col("Containers", priority=1),
            _col("Images", priority=1),
            _col("Selector", priority=1),
        ],
        _replicaset_row,
    ),
    "Event": (
        [
            _col("Last Seen"),
            _col("Type"),
            _col("Reason"),
            _col("Object"),
            _col("Message"),
            _col("Subobject", priority=1),
            _col("Source", priority=1),
            _col("First Seen", priority=1),
            _col("Count", "integer", 1),
            _col("Name", priority=1),
        ],
        _event_row,
    ),
    "Service": (
        [
            NAME,
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            AGE,
            _col("Selector", priority=1),
        ],
        _service_row,
    ),
    "Secret": (
        [NAME, _col("Type"), _col("Data", "integer"), AGE],
        lambda s, now: [
            s["metadata"]["name"],
            s.get("type", "Opaque"),
            len(s.get("data") or {}) + len(s.get("stringData") or {}),
            _age(s, now),
        ],
    ),
    "ConfigMap": (
        [NAME, _col("Data", "integer"), AGE],
        lambda c, now: [c["metadata"]["name"], len(c.get("data") or {}), _age(c, now)],
    ),
    "HorizontalPodAutoscaler": (
        [
            NAME,
            _col("Reference"),
            _col("Targets"),
            _col("MinPods", "integer"),
            _col("MaxPods", "integer"),
            _col("Replicas", "integer"),
            AGE,
        ],
        _hpa_row,
    ),
    "Namespace": (
        [NAME, _col("Status"), AGE],
        lambda n, now: [
            n["metadata"]["name"],
            (n.get("status") or {}).get("phase", "Active"),
            _age(n, now),
        ],
    ),
    "Node": ([NAME, _col("Status"), _col("Roles"), AGE, _col("Version")], _node_row),
}


def _partial(obj: dict) -> dict:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(kind: str, objects: list[dict], *, resource_version: str, include: str = "") -> dict:
    """A ``meta.k8s.io/v1`` Table of ``objects``; rows carry the object as ``includeObject`` says."""
    now = dt.datetime.now(dt.UTC)
    columns, row = PRINTERS.get(
        kind, ([NAME, AGE], lambda o, n: [o["metadata"]["name"], _age(o, n)])
    )
    rows = []
    for obj in objects:
        if include == "None":
            embedded = None
        elif include == "Object":
            embedded = obj
        else:
            embedded = _partial(obj)
        rows.append({"cells": row(obj, now), "object": embedded})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }
