"""opslib.net: real TLS handshakes on 127.0.0.1 (a stdlib ssl server in a thread), the served
chain, the SNI the server received, hostname matching, expired and refused endpoints."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from opslib.core.errors import BadInputError
from opslib.net import certs, tls
from opslib.sandbox.scenarios.certs import key_pem, make_cert, pem, sandbox_ca

pytestmark = pytest.mark.timeout(60)


class Server:
    """One TLS listener serving ``chain`` and recording the SNI names clients sent."""

    def __init__(self, tmp_path, chain_pem: bytes, key: bytes):
        (tmp_path / "c.pem").write_bytes(chain_pem)
        (tmp_path / "k.pem").write_bytes(key)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
        self.sni: list[str | None] = []
        self.ctx.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                s, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            s.settimeout(3)
            try:
                with self.ctx.wrap_socket(s, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                s.close()

    def close(self):
        self.stop.set()
        self.t.join(3)
        self.sock.close()


@pytest.fixture(scope="module")
def ca():
    return sandbox_ca()


def serve(tmp_path, ca, host, days):
    leaf, key = make_cert(host, days=days, issuer=ca[1])
    return Server(tmp_path, pem(leaf) + pem(ca[1][0]), key_pem(key))


def test_handshake_reads_the_served_chain_with_sni(tmp_path, ca):
    srv = serve(tmp_path, ca, "localhost", 3)
    try:
        h = tls.handshake(f"localhost:{srv.port}")
    finally:
        srv.close()
    assert h.error == ""
    assert "localhost" in srv.sni  # SNI was sent, with the host name
    assert [c.common_name for c in h.chain] == ["localhost", "opslib sandbox intermediate CA"]
    assert h.leaf.sans == ("localhost",) and h.intermediates[0].is_ca
    assert h.hostname_ok is True
    assert 2.9 < h.leaf.days_left() <= 3.0
    assert h.trusted is False and "unable to get local issuer" in h.trust_error  # private root
    assert h.protocol.startswith("TLSv1.")


def test_handshake_works_with_descriptors_above_1024(tmp_path, ca):
    """A long-lived process holds many sockets; select() would refuse fd >= 1024."""
    import os
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.fail(f"RLIMIT_NOFILE {soft} is too low for this check; raise it to 1200+")
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    srv = serve(tmp_path, ca, "localhost", 30)
    try:
        h = tls.handshake(f"localhost:{srv.port}")
    finally:
        srv.close()
        for fd in held:
            os.close(fd)
    assert h.error == "" and h.leaf is not None, h.error


def test_hostname_mismatch_and_ip_without_sni(tmp_path, ca):
    srv = serve(tmp_path, ca, "legacy.fintech.example", 90)
    try:
        h = tls.handshake(f"localhost:{srv.port}")
        by_ip = tls.handshake(f"127.0.0.1:{srv.port}")
    finally:
        srv.close()
    assert h.hostname_ok is False and h.leaf.common_name == "legacy.fintech.example"
    assert by_ip.endpoint.sni == "" and by_ip.hostname_ok is False
    assert None in srv.sni  # no SNI for an IP address


def test_expired_certificate_is_still_read(tmp_path, ca):
    srv = serve(tmp_path, ca, "localhost", -2)
    try:
        h = tls.handshake(f"localhost:{srv.port}")
    finally:
        srv.close()
    assert h.error == "" and h.leaf.expired() and h.leaf.days_left() < -1.9


def test_refused_and_silent_endpoints_are_errors_not_exceptions():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    h = tls.handshake(f"127.0.0.1:{port}", timeout_s=2)
    assert h.leaf is None and "Refused" in h.error
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers the ClientHello
    try:
        t0 = time.monotonic()
        h2 = tls.handshake(f"127.0.0.1:{silent.getsockname()[1]}", timeout_s=1)
        assert time.monotonic() - t0 < 5
        assert h2.leaf is None and "timed out" in h2.error
    finally:
        silent.close()


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("*.fintech.example", "api.fintech.example", True),
        ("*.fintech.example", "a.b.fintech.example", False),
        ("*.fintech.example", "fintech.example", False),
        ("*.example", "fintech.example", False),  # never a wildcard over a public suffix
        ("API.Fintech.Example", "api.fintech.example.", True),
    ],
)
def test_hostname_rules(pattern, host, ok):
    cert, _ = make_cert("x", days=1, sans=(pattern,))
    assert certs.hostname_matches(certs.info(cert), host) is ok


def test_ip_san_and_pem_bundle_parsing():
    cert, key = make_cert("svc", days=10, sans=("svc.local", "10.0.0.7"))
    info = certs.parse_pem_chain(pem(cert) + key_pem(key))  # the key block is ignored
    assert len(info) == 1 and info[0].sans == ("svc.local", "10.0.0.7")
    assert certs.hostname_matches(info[0], "10.0.0.7") and not certs.hostname_matches(
        info[0], "10.0.0.8"
    )
    with pytest.raises(ValueError):
        certs.parse_pem_chain(b"not a certificate")


@pytest.mark.parametrize("bad", ["localhost", "localhost:0", ":443", "host:https", "h:70000"])
def test_bad_endpoints_are_refused(bad):
    with pytest.raises(BadInputError, match="host:port"):
        tls.parse_endpoint(bad)
