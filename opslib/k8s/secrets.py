"""Kubernetes secrets: the certificates of TLS secrets, and updating one key of a secret.

Reading: ``kubernetes.io/tls`` secrets carry the served chain in ``tls.crt``; only that key is
decoded and returned (``tls.key`` is never read, decoded or returned). Parsing the PEM is the
caller's (see :mod:`opslib.net.certs`), so this adapter stays independent of the others.

Writing: a rotation sets one key of a secret to the new value (a JSON patch of ``/data/KEY``).
The value never travels in a :class:`~opslib.core.plans.Change` (plans are evidence): the
change names the Secrets Manager secret and version, and the handler gets the value at apply
time from a ``fetch_value`` callable the runbook binds. The handler registers the value with
:func:`opslib.core.redact.register_secret` before anything else touches it.
"""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from opslib.core import executors
from opslib.core.errors import BadInputError, NotFoundError
from opslib.core.findings import Finding, error_finding
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus
from opslib.core.redact import register_secret

TLS_TYPE = "kubernetes.io/tls"
UPDATE_ACTION = "k8s:patch secrets/data"
TIMEOUT_S = 15


@dataclass(frozen=True)
class TlsSecret:
    """A TLS secret's certificate chain (PEM, public) and where it lives."""

    namespace: str
    name: str
    cert_pem: bytes
    created: _dt.datetime | None = None


@dataclass(frozen=True)
class SecretRef:
    """``namespace/name[:key]`` as a runbook parameter gives it."""

    namespace: str
    name: str
    key: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" + (f":{self.key}" if self.key else "")


def parse_ref(value: str, *, parameter: str = "k8s_secret") -> SecretRef:
    """``"fintech-banking/db-credentials:password"`` -> SecretRef; BadInputError without a namespace."""
    v = value.strip()
    path, _, key = v.partition(":")
    ns, sep, name = path.partition("/")
    if not sep or not ns.strip() or not name.strip() or "/" in name:
        raise BadInputError(
            f"{parameter}={value!r}: give namespace/name[:key], e.g. fintech-banking/db-credentials:password "
            "(the namespace is required: a secret is never looked up in a default namespace)"
        )
    return SecretRef(ns.strip(), name.strip(), key.strip())


def tls_secrets(*, api, namespace: str) -> tuple[list[TlsSecret], list[Finding]]:
    """The ``kubernetes.io/tls`` secrets of ``namespace`` with their ``tls.crt``; errors as findings."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api)
    try:
        items = core.list_namespaced_secret(
            namespace, field_selector=f"type={TLS_TYPE}", _request_timeout=TIMEOUT_S
        ).items
    except ApiException as exc:
        return [], [
            error_finding(
                f"k8s:{namespace}",
                exc,
                next_action=(
                    f"Check that namespace {namespace} exists and that you may list secrets in it "
                    f"(kubectl auth can-i list secrets -n {namespace})."
                ),
            )
        ]
    out = []
    for s in sorted(items, key=lambda s: s.metadata.name):
        if s.type != TLS_TYPE:  # a server that ignores the field selector
            continue
        crt = (s.data or {}).get("tls.crt", "")
        out.append(
            TlsSecret(
                namespace,
                s.metadata.name,
                base64.b64decode(crt) if crt else b"",
                s.metadata.creation_timestamp,
            )
        )
    return out, []


def secret_keys(ref: SecretRef, *, api) -> tuple[list[str], str]:
    """The key names (never the values) of a secret and its resourceVersion; NotFoundError when absent."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        s = client.CoreV1Api(api).read_namespaced_secret(
            ref.name, ref.namespace, _request_timeout=TIMEOUT_S
        )
    except ApiException as exc:
        if exc.status == 404:
            raise NotFoundError(
                f"Kubernetes secret {ref.namespace}/{ref.name} not found; check k8s_secret "
                f"(kubectl get secrets -n {ref.namespace})."
            ) from exc
        raise
    return sorted((s.data or {}).keys()), s.metadata.resource_version or ""


def plan_update_key(
    ref: SecretRef, *, key: str, secret_id: str, version_id: str, field: str
) -> Change:
    """One change: set ``key`` of the Kubernetes secret to ``field`` of a Secrets Manager version."""
    return Change(
        action=UPDATE_ACTION,
        target=f"{ref.namespace}/{ref.name}:{key}",
        effect=f"set key {key} to the new {field} (version {version_id[:8]})",
        params={
            "namespace": ref.namespace,
            "name": ref.name,
            "key": key,
            "secret_id": secret_id,
            "version_id": version_id,
            "field": field,
        },
    )


@executors.register(UPDATE_ACTION)
def update_key(
    change: Change, *, api, fetch_value: Callable[[str, str, str], str]
) -> ChangeOutcome:
    """Set one key of a secret (JSON patch; ``add`` replaces an existing key too)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    p = change.params
    value = register_secret(fetch_value(p["secret_id"], p["version_id"], p["field"]))
    body = [
        {
            "op": "add",
            "path": f"/data/{_pointer(p['key'])}",
            "value": base64.b64encode(value.encode()).decode(),
        }
    ]
    try:
        client.CoreV1Api(api).patch_namespaced_secret(
            p["name"],
            p["namespace"],
            body,
            _request_timeout=TIMEOUT_S,
            _content_type="application/json-patch+json",
        )
    except ApiException as exc:
        # the response body could echo the patch: say only the status
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            f"patch refused: HTTP {exc.status} {exc.reason}",
        )
    now = _dt.datetime.now(_dt.UTC)
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"key {p['key']} updated",
        {"updated_at": now.isoformat()},
    )


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
