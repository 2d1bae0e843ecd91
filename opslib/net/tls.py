"""A real TLS handshake to ``host:port``: the chain the server serves, SNI, trust and hostname.

What a client sees is what matters when a certificate expires: the file in a secret may
already be renewed while the load balancer or the pod still serves the old one. So the
endpoint is asked directly, with SNI set to the host name, and the whole served chain (leaf
and intermediates) is read, even when it would not verify (expired, self-signed, wrong name):
those are the cases to report, not to refuse. The chain comes from pyOpenSSL because the
standard library returns only the leaf before Python 3.13; trust is then checked separately
with the standard library's default context (the machine's trust store, or ``cafile``).

Every network wait is bounded by ``timeout_s``.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import ssl
import time
from dataclasses import dataclass, field

from OpenSSL import SSL

from opslib.core.errors import BadInputError
from opslib.net.certs import CertInfo, hostname_matches, parse_der

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Endpoint:
    """``host:port`` as given (``[v6]:port`` for IPv6), with the name sent as SNI."""

    host: str
    port: int

    @property
    def sni(self) -> str:
        """The SNI name: the host, unless it is an IP address (TLS sends no SNI for those)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return self.host
        return ""

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(value: str) -> Endpoint:
    """``"api.example.com:443"`` -> Endpoint; BadInputError naming the expected form."""
    v = value.strip()
    host, sep, port = v.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInputError(
            f"endpoint {value!r}: give host:port, e.g. api.fintech.example:443 (IPv6: [::1]:443)"
        )
    return Endpoint(host, int(port))


@dataclass(frozen=True)
class Handshake:
    """What one TLS handshake showed: the served chain, protocol, trust and the name check."""

    endpoint: Endpoint
    chain: tuple[CertInfo, ...] = ()
    protocol: str = ""
    cipher: str = ""
    hostname_ok: bool | None = None  # None when no certificate was received
    trusted: bool | None = None  # None when the trust check could not run
    trust_error: str = ""
    error: str = ""  # the handshake failed: unreachable, refused, not TLS
    checked_at: float = field(default_factory=time.time)

    @property
    def leaf(self) -> CertInfo | None:
        return self.chain[0] if self.chain else None

    @property
    def intermediates(self) -> tuple[CertInfo, ...]:
        return self.chain[1:]


def _wait(sock: socket.socket, deadline: float, *, write: bool = False) -> None:
    """Wait until the socket is readable (or writable), at most until ``deadline``.

    ``selectors`` (epoll/poll), not ``select.select``: select() refuses a descriptor numbered
    1024 or more, which a long-lived process (``opslib serve``, a test session) reaches.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("TLS handshake timed out")
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
        if not sel.select(left):
            raise TimeoutError("TLS handshake timed out")


def _served_chain(ep: Endpoint, timeout_s: float) -> tuple[tuple[CertInfo, ...], str, str]:
    deadline = time.monotonic() + timeout_s
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(
        SSL.VERIFY_NONE, lambda *a: True
    )  # read whatever is served; trust is checked apart
    with socket.create_connection((ep.host, ep.port), timeout=timeout_s) as raw:
        raw.setblocking(False)
        conn = SSL.Connection(ctx, raw)
        if ep.sni:
            conn.set_tlsext_host_name(ep.sni.encode("idna"))
        conn.set_connect_state()
        while True:
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                _wait(raw, deadline)
            except SSL.WantWriteError:
                _wait(raw, deadline, write=True)
        certs = conn.get_peer_cert_chain(as_cryptography=True) or []
        chain = tuple(parse_der(_der(c)) for c in certs)
        protocol = conn.get_protocol_version_name()
        cipher = conn.get_cipher_name() or ""
        try:
            conn.shutdown()
        except SSL.Error:
            pass  # the peer may close first; the chain is already read
    return chain, protocol, cipher


def _der(cert) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)


def _trust(ep: Endpoint, timeout_s: float, cafile: str | None) -> tuple[bool | None, str]:
    ctx = ssl.create_default_context(cafile=cafile or None)
    ctx.check_hostname = False  # the name is checked on the served leaf, also when untrusted
    try:
        with socket.create_connection((ep.host, ep.port), timeout=timeout_s) as raw:
            with ctx.wrap_socket(raw, server_hostname=ep.sni or None):
                return True, ""
    except ssl.SSLCertVerificationError as exc:
        return False, exc.verify_message or str(exc)
    except (OSError, ssl.SSLError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def handshake(
    endpoint: Endpoint | str, *, timeout_s: float = DEFAULT_TIMEOUT_S, cafile: str | None = None
) -> Handshake:
    """Connect, handshake with SNI, and report the served chain; never raises for the endpoint.

    A refused connection, a timeout or a server that does not speak TLS comes back as a
    :class:`Handshake` with ``error`` set, so one bad endpoint never hides the others.
    """
    ep = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    try:
        chain, protocol, cipher = _served_chain(ep, timeout_s)
    except (OSError, SSL.Error, TimeoutError) as exc:
        return Handshake(
            ep, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        )
    if not chain:
        return Handshake(
            ep, protocol=protocol, cipher=cipher, error="the server sent no certificate"
        )
    trusted, trust_error = _trust(ep, timeout_s, cafile)
    return Handshake(
        ep,
        chain=chain,
        protocol=protocol,
        cipher=cipher,
        hostname_ok=hostname_matches(chain[0], ep.host),
        trusted=trusted,
        trust_error=trust_error,
    )
