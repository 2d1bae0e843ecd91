"""Ingresses without an address (the quick health check: ``kubectl get ingress``, ADDRESS empty).

An ingress whose controller never gave it a load balancer serves nothing, while its pods and
services look healthy: the morning check lists every ingress of a namespace whose
``status.loadBalancer.ingress`` is empty, with the hosts it was meant to serve.
"""

from __future__ import annotations

from dataclasses import dataclass

from opslib.core.findings import Finding, Severity

SOURCE = "k8s"
TIMEOUT_S = 15


@dataclass(frozen=True)
class IngressState:
    """One ingress, the hosts it routes and the addresses its controller gave it."""

    namespace: str
    name: str
    hosts: tuple[str, ...]
    addresses: tuple[str, ...]

    @property
    def has_address(self) -> bool:
        return bool(self.addresses)


def ingresses(*, api, namespace: str) -> list[IngressState]:
    """Every ingress of ``namespace`` (networking.k8s.io/v1), sorted by name."""
    from kubernetes import client

    items = client.NetworkingV1Api(api).list_namespaced_ingress(
        namespace, _request_timeout=TIMEOUT_S
    )
    out = []
    for ing in items.items:
        rules = (ing.spec.rules or []) if ing.spec else []
        lb = ing.status.load_balancer if ing.status and ing.status.load_balancer else None
        addrs = tuple(a.hostname or a.ip or "" for a in ((lb.ingress or []) if lb else []))
        out.append(
            IngressState(
                namespace,
                ing.metadata.name,
                tuple(r.host for r in rules if r.host),
                tuple(a for a in addrs if a),
            )
        )
    return sorted(out, key=lambda i: i.name)


def findings(items: list[IngressState]) -> list[Finding]:
    """A WARNING per ingress without an address: nothing reaches its hosts."""
    return [
        Finding(
            Severity.WARNING,
            f"ingress {i.namespace}/{i.name} has no address",
            SOURCE,
            f"hosts: {', '.join(i.hosts) or '(any)'}; the ingress controller gave it no load balancer",
            f"kubectl -n {i.namespace} describe ingress {i.name}; check the ingress controller's "
            "pods and logs and the ingressClassName",
        )
        for i in items
        if not i.has_address
    ]
