"""X.509 certificates as typed rows: subject, SANs, issuer, validity, and hostname matching.

Parsing is `cryptography`'s (never a regex over PEM text). Hostname matching follows RFC 6125
as browsers apply it: DNS SANs first (the subject CN only when there are no SANs), a wildcard
only as the whole left-most label, IP addresses only against IP SANs. It is written here
because the standard library's ``ssl.match_hostname`` was removed in Python 3.12 and the check
must also run on certificates that fail verification (expired, self-signed), which is exactly
when an engineer needs to know whether the name also mismatches.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID, NameOID


@dataclass(frozen=True)
class CertInfo:
    """One certificate's public facts (never its key): who it names, who issued it, until when."""

    subject: str  # RFC 4514, e.g. "CN=api.fintech.example"
    common_name: str
    sans: tuple[str, ...]  # DNS names and IP addresses
    issuer: str
    not_before: _dt.datetime
    not_after: _dt.datetime
    serial: str  # hex
    sha256: str  # fingerprint of the DER, hex
    self_signed: bool
    is_ca: bool

    def days_left(self, now: _dt.datetime | None = None) -> float:
        """Days until ``not_after`` (negative once expired), to one decimal in tables."""
        now = now or _dt.datetime.now(_dt.UTC)
        return (self.not_after - now).total_seconds() / 86400

    def expired(self, now: _dt.datetime | None = None) -> bool:
        return self.days_left(now) < 0


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def info(cert: x509.Certificate) -> CertInfo:
    """The typed facts of one parsed certificate."""
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        sans += [str(n) for n in ext.get_values_for_type(x509.DNSName)]
        sans += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    try:
        is_ca = bool(cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca)
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        common_name=_cn(cert.subject),
        sans=tuple(sans),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=f"{cert.serial_number:x}",
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        self_signed=cert.issuer == cert.subject,
        is_ca=is_ca,
    )


def parse_pem_chain(pem: bytes | str) -> tuple[CertInfo, ...]:
    """Every certificate in a PEM bundle (``tls.crt`` holds the leaf then its intermediates).

    Only CERTIFICATE blocks are read; a private key in the same data is ignored (never parsed,
    never returned). Raises ``ValueError`` when there is no certificate in it.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    return tuple(info(c) for c in x509.load_pem_x509_certificates(data))


def parse_der(der: bytes) -> CertInfo:
    return info(x509.load_der_x509_certificate(der))


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    # the wildcard stands for exactly one whole left-most label, never for a public suffix
    suffix = pattern[1:]
    head, dot, rest = host.partition(".")
    return bool(head) and bool(dot) and "." + rest == suffix and suffix.count(".") >= 2


def hostname_matches(cert: CertInfo, host: str) -> bool:
    """Whether ``host`` (a DNS name or an IP address) is a name the certificate is valid for."""
    host = host.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return any(_ip_eq(s, ip) for s in cert.sans)
    dns = [s for s in cert.sans if not _is_ip(s)]
    names = dns or ([cert.common_name] if cert.common_name and not cert.sans else [])
    return any(_dns_match(n, host) for n in names)


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def _ip_eq(s: str, ip) -> bool:
    try:
        return ipaddress.ip_address(s) == ip
    except ValueError:
        return False
