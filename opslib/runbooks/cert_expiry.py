"""Certificate expiry: every certificate from every place it lives, soonest first.

The certificate procedure lists the ACM certificates with their NotAfter and status and keeps a
``DaysToExpiry`` alarm at 30 days on each; the Kubernetes TLS secrets and the endpoints
themselves are checked beside it, because the one that matters is the certificate a client is
actually served (a renewed file in a secret does nothing until the server reloads it).

Sources, each optional: ACM in the region (``acm``), the ``kubernetes.io/tls`` secrets of
``k8s_namespaces``, and ``endpoints`` (a real TLS handshake with SNI: the served leaf and
intermediates, trust and hostname match). One table, soonest first; findings at
``critical_days`` and ``warn_days``; expired and hostname-mismatch are critical. The only
change it can make is the alarms plan (``create_alarms``), applied through the gate.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from opslib import clients
from opslib.aws import acm as acm_mod
from opslib.core import executors
from opslib.core.errors import BadInputError, OpslibError
from opslib.core.findings import Finding, Severity, error_finding, rank, skipped_finding
from opslib.core.findings import to_frame as findings_frame
from opslib.core.plans import ApplyResult, ChangeStatus, Plan, parse_csv, unique
from opslib.k8s import secrets as k8s_secrets
from opslib.net import certs as x509info
from opslib.net import tls

RUNBOOK = "cert-expiry"
ACTIONS = (acm_mod.ALARM_ACTION,)
MAX_ENDPOINTS = 50
HANDSHAKE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Inputs:
    """The validated parameters."""

    warn_days: int = 30
    critical_days: int = 7
    acm: bool = True
    k8s_namespaces: tuple[str, ...] = ()
    endpoints: tuple[tls.Endpoint, ...] = ()
    create_alarms: bool = False
    region: str = ""
    now: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))


def inputs(
    *,
    warn_days: int = 30,
    critical_days: int = 7,
    acm: bool = True,
    k8s_namespaces: str = "",
    endpoints: str = "",
    create_alarms: bool = False,
    region: str = "",
) -> Inputs:
    """Validate every parameter before anything is read (one BadInputError listing each problem)."""
    problems = []
    if int(critical_days) < 0:
        problems.append(f"critical_days={critical_days}: use 0 or more days")
    if int(warn_days) < int(critical_days):
        problems.append(f"warn_days={warn_days} must be >= critical_days={critical_days}")
    eps: list[tls.Endpoint] = []
    for e in unique(parse_csv(endpoints)):
        try:
            eps.append(tls.parse_endpoint(e))
        except BadInputError as exc:
            problems.append(str(exc))
    if len(eps) > MAX_ENDPOINTS:
        problems.append(f"{len(eps)} endpoints: check at most {MAX_ENDPOINTS} per run")
    if create_alarms and not acm:
        problems.append("create_alarms needs acm=True (the alarms are for ACM certificates)")
    namespaces = tuple(unique(parse_csv(k8s_namespaces)))
    bad_ns = [n for n in namespaces if "/" in n or " " in n]
    if bad_ns:
        problems.append(
            f"k8s_namespaces: {', '.join(bad_ns)} are not namespace names (give ns1,ns2)"
        )
    if problems:
        raise BadInputError(
            "Bad parameters, nothing was read or changed: " + "; ".join(problems) + "."
        )
    return Inputs(
        warn_days=int(warn_days),
        critical_days=int(critical_days),
        acm=bool(acm),
        k8s_namespaces=namespaces,
        endpoints=tuple(eps),
        create_alarms=bool(create_alarms),
        region=region.strip(),
    )


@dataclass(frozen=True)
class Connections:
    acm: Any = None
    cloudwatch: Any = None
    k8s: Any = None
    findings: tuple[Finding, ...] = ()


def connect(inp: Inputs) -> Connections:
    """Clients for the sources asked for; one that cannot connect is None plus an error finding."""
    out: dict[str, Any] = {}
    found: list[Finding] = []
    if inp.acm:
        try:
            session = clients.aws_session(region=inp.region)
            out["acm"] = clients.aws_client("acm", session=session, region=inp.region)
            out["cloudwatch"] = clients.aws_client("cloudwatch", session=session, region=inp.region)
        except OpslibError as exc:
            found.append(error_finding("acm", exc))
    if inp.k8s_namespaces:
        try:
            out["k8s"] = clients.k8s_api()
        except OpslibError as exc:
            found.append(error_finding("k8s", exc))
    return Connections(findings=tuple(found), **out)


@dataclass(frozen=True)
class CertRow:
    """One certificate in the table, whatever its source."""

    source: str  # "acm", "k8s", "endpoint"
    name: str  # ARN's domain / namespace/secret / host:port
    subject: str
    sans: tuple[str, ...]
    issuer: str
    not_after: _dt.datetime | None
    days_left: float | None
    status: str = ""  # ACM status, "served", "in secret"
    in_use_by: tuple[str, ...] = ()
    detail: str = ""  # renewal, chain, trust, hostname
    hostname_ok: bool | None = None
    ref: str = ""  # the ARN for ACM rows

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "days_left": None if self.days_left is None else round(self.days_left, 1),
        }


@dataclass(frozen=True)
class Inventory:
    """Every certificate found, soonest first, with the findings of the thresholds."""

    rows: tuple[CertRow, ...]
    findings: tuple[Finding, ...]
    acm_certs: tuple[acm_mod.AcmCertificate, ...] = ()
    alarmed: frozenset[str] = frozenset()

    @property
    def soonest_days(self) -> float | None:
        days = [r.days_left for r in self.rows if r.days_left is not None]
        return round(min(days), 1) if days else None

    def records(self) -> list[dict[str, Any]]:
        return [r.to_record() for r in self.rows]

    def to_frame(self):
        import pandas as pd

        cols = [
            "days_left",
            "source",
            "name",
            "subject / SANs",
            "issuer",
            "not_after",
            "status",
            "detail",
        ]
        rows = [
            {
                "days_left": None if r.days_left is None else round(r.days_left, 1),
                "source": r.source,
                "name": r.name,
                "subject / SANs": ", ".join(r.sans) or r.subject,
                "issuer": r.issuer,
                "not_after": r.not_after.strftime("%Y-%m-%d %H:%M UTC") if r.not_after else "",
                "status": r.status,
                "detail": r.detail,
            }
            for r in self.rows
        ]
        return pd.DataFrame(rows, columns=cols)

    def findings_frame(self):
        return findings_frame(self.findings)


def _acm_rows(
    inp: Inputs, conns: Connections
) -> tuple[list[CertRow], list[Finding], list, set[str]]:
    if not inp.acm:
        return [], [skipped_finding("acm", "acm=True")], [], set()
    if conns.acm is None:
        return [], [], [], set()
    certs, found = acm_mod.certificates(acm=conns.acm)
    alarmed, f2 = acm_mod.alarmed_certificates(cloudwatch=conns.cloudwatch)
    rows = []
    for c in certs:
        detail = f"{c.type or 'type ?'}; renewal {c.renewal_eligibility or '?'}"
        if c.renewal_status:
            detail += f" ({c.renewal_status})"
        detail += "; alarm: yes" if c.arn in alarmed else "; alarm: none"
        rows.append(
            CertRow(
                "acm",
                c.domain,
                f"CN={c.domain}",
                c.sans,
                c.issuer,
                c.not_after,
                c.days_left(inp.now),
                c.status,
                c.in_use_by,
                detail,
                ref=c.arn,
            )
        )
    return rows, found + f2, certs, alarmed


def _k8s_rows(inp: Inputs, conns: Connections) -> tuple[list[CertRow], list[Finding]]:
    if not inp.k8s_namespaces:
        return [], [skipped_finding("k8s", "k8s_namespaces")]
    if conns.k8s is None:
        return [], []
    rows: list[CertRow] = []
    found: list[Finding] = []
    for ns in inp.k8s_namespaces:
        secrets, f = k8s_secrets.tls_secrets(api=conns.k8s, namespace=ns)
        found += f
        for s in secrets:
            name = f"{s.namespace}/{s.name}"
            try:
                chain = x509info.parse_pem_chain(s.cert_pem)
            except ValueError as exc:
                found.append(
                    Finding(
                        Severity.ERROR,
                        f"k8s {name}: tls.crt is not a PEM certificate",
                        f"k8s:{name}",
                        str(exc)[:200],
                        "Look at the secret (kubectl get secret -o yaml, the tls.crt key) and replace it.",
                    )
                )
                continue
            leaf = chain[0]
            detail = f"chain of {len(chain)}" + ("; self-signed" if leaf.self_signed else "")
            rows.append(
                CertRow(
                    "k8s",
                    name,
                    leaf.subject,
                    leaf.sans,
                    leaf.issuer,
                    leaf.not_after,
                    leaf.days_left(inp.now),
                    "in secret",
                    detail=detail,
                )
            )
    return rows, found


def _endpoint_rows(inp: Inputs) -> tuple[list[CertRow], list[Finding]]:
    if not inp.endpoints:
        return [], [skipped_finding("endpoint", "endpoints")]
    rows: list[CertRow] = []
    found: list[Finding] = []
    for ep in inp.endpoints:
        h = tls.handshake(ep, timeout_s=HANDSHAKE_TIMEOUT_S)
        if h.error or h.leaf is None:
            found.append(
                Finding(
                    Severity.ERROR,
                    f"{ep}: no TLS handshake",
                    f"endpoint:{ep}",
                    h.error,
                    "Check the host and port, that the service is up, and that it speaks TLS on that port.",
                )
            )
            continue
        leaf = h.leaf
        parts = [
            f"{h.protocol}",
            f"SNI {ep.sni or '(none: IP address)'}",
            f"served chain of {len(h.chain)}",
        ]
        parts.append("hostname OK" if h.hostname_ok else f"HOSTNAME MISMATCH for {ep.host}")
        if h.trusted is False:
            parts.append(f"untrusted: {h.trust_error}")
        elif h.trusted is None and h.trust_error:
            parts.append(f"trust not checked: {h.trust_error}")
        rows.append(
            CertRow(
                "endpoint",
                str(ep),
                leaf.subject,
                leaf.sans,
                leaf.issuer,
                leaf.not_after,
                leaf.days_left(inp.now),
                "served",
                detail="; ".join(parts),
                hostname_ok=h.hostname_ok,
            )
        )
        if h.hostname_ok is False:
            found.append(
                Finding(
                    Severity.CRITICAL,
                    f"{ep}: certificate does not name {ep.host}",
                    f"endpoint:{ep}",
                    f"served leaf {leaf.subject}, SANs {', '.join(leaf.sans) or '(none)'}",
                    f"Clients connecting to {ep.host} reject this certificate: serve one whose SANs include {ep.host} "
                    "(check the listener's or ingress's certificate and the SNI routing).",
                    {"name": str(ep)},
                )
            )
        if h.trusted is False:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"{ep}: served chain is not trusted by this machine",
                    f"endpoint:{ep}",
                    h.trust_error,
                    "Serve the full chain (leaf and intermediates) from a CA your clients trust; a private CA needs its root "
                    "in the clients' trust store.",
                )
            )
    return rows, found


def _threshold_findings(inp: Inputs, rows: list[CertRow]) -> list[Finding]:
    out = []
    for r in rows:
        if r.days_left is None:
            continue
        where = f"{r.source} {r.name}"
        when = r.not_after.strftime("%Y-%m-%d %H:%M UTC") if r.not_after else "?"
        if r.days_left < 0:
            sev, title = Severity.CRITICAL, f"{where}: EXPIRED {-r.days_left:.1f} days ago"
        elif r.days_left <= inp.critical_days:
            sev, title = (
                Severity.CRITICAL,
                f"{where}: expires in {r.days_left:.1f} days (<= {inp.critical_days})",
            )
        elif r.days_left <= inp.warn_days:
            sev, title = (
                Severity.WARNING,
                f"{where}: expires in {r.days_left:.1f} days (<= {inp.warn_days})",
            )
        else:
            continue
        out.append(
            Finding(
                sev,
                title,
                f"{r.source}:{r.name}",
                f"NotAfter {when}; issuer {r.issuer}; {r.detail}",
                _next_action(r),
                {"name": r.name, "days_left": round(r.days_left, 1)},
            )
        )
    return out


def _next_action(r: CertRow) -> str:
    if r.source == "acm":
        if "INELIGIBLE" in r.detail or "IMPORTED" in r.detail:
            return (
                "Imported or ineligible: ACM will not renew it. Re-import a renewed certificate "
                "(aws acm import-certificate --certificate-arn ...) or replace it with an ACM-issued one."
            )
        return "ACM renews issued certificates once validation passes: check the DNS validation records (describe-certificate)."
    if r.source == "k8s":
        return (
            "Renew the certificate (cert-manager: kubectl describe certificate; by hand: update tls.crt/tls.key), "
            "then restart or reload what mounts the secret."
        )
    return "Renew the certificate on the server and reload it; then run this check again to see the served one."


def inventory(inp: Inputs, conns: Connections) -> Inventory:
    """Read every source (read only) into one table, soonest first, with its findings."""
    acm_rows, f1, certs, alarmed = _acm_rows(inp, conns)
    k8s_rows, f2 = _k8s_rows(inp, conns)
    ep_rows, f3 = _endpoint_rows(inp)
    rows = sorted(
        acm_rows + k8s_rows + ep_rows, key=lambda r: (r.days_left is None, r.days_left or 0.0)
    )
    found = list(conns.findings) + f1 + f2 + f3 + _threshold_findings(inp, rows)
    if not any(f.severity in (Severity.CRITICAL, Severity.WARNING, Severity.ERROR) for f in found):
        found.append(
            Finding(
                Severity.OK,
                f"{len(rows)} certificate(s), none expiring within {inp.warn_days} days",
                "summary",
            )
        )
    return Inventory(tuple(rows), tuple(rank(found)), tuple(certs), frozenset(alarmed))


def plan_alarms(inp: Inputs, inv: Inventory) -> Plan:
    """Plan ``DaysToExpiry`` alarms at ``warn_days`` for ACM certificates without one (read only)."""
    if not inp.create_alarms:
        missing = sum(c.arn not in inv.alarmed for c in inv.acm_certs)
        note = f"create_alarms=False: no alarms planned ({missing} ACM certificate(s) have no DaysToExpiry alarm)"
        return Plan(title="CloudWatch DaysToExpiry alarms", warnings=(note,))
    return acm_mod.plan_alarms(list(inv.acm_certs), set(inv.alarmed), warn_days=inp.warn_days)


def executor(conns: Connections):
    return executors.bind(cloudwatch=conns.cloudwatch, allowed=ACTIONS)


def alarms_created(applied: ApplyResult | None) -> list[str]:
    """Names of the alarms the apply created (empty on a dry run)."""
    if applied is None:
        return []
    return [
        o.data.get("alarm", o.target) for o in applied.outcomes if o.status is ChangeStatus.APPLIED
    ]
