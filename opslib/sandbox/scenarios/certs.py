"""Sandbox scenario for cert-expiry: certificates about to expire in every place they live.

What it seeds (certificates made with `cryptography` at seed time, so "days left" is always
relative to now):

- ACM (the local AWS server): three imported certificates for ``payments.fintech.example``,
  ``api.fintech.example`` and ``www.fintech.example`` expiring in 5, 20 and 200 days, and a
  CloudWatch ``DaysToExpiry`` alarm for the 200-day one only (so the alarms plan has two to add);
- Kubernetes (namespace ``fintech-banking``): a ``kubernetes.io/tls`` secret
  ``account-service-tls`` whose certificate expires in 25 days;
- two real TLS endpoints on 127.0.0.1, served by a background Python ``ssl`` process
  (``python -m opslib.sandbox.scenarios.certs serve DIR``) with a chain leaf + intermediate
  under a sandbox root: ``localhost:<p1>`` whose certificate expires in 3 days, and
  ``localhost:<p2>`` serving a certificate for ``legacy.fintech.example`` (hostname mismatch).

What the local servers simulate: moto's ACM stores the imported certificate and reports its
real NotAfter, but ``InUseBy`` is empty and ``RenewalEligibility`` is INELIGIBLE for imported
certificates (as on AWS); no metric ``DaysToExpiry`` is published by the local CloudWatch, so
the alarms exist but never change state. Reseeding replaces every certificate and restarts
the TLS process on new ports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opslib.core.errors import SandboxError

RUNBOOKS: tuple[str, ...] = ("cert-expiry",)

TAG = {"Key": "sandbox.opslib.dev/scenario", "Value": "certs"}
ACM_CERTS = (
    ("payments.fintech.example", 5),
    ("api.fintech.example", 20),
    ("www.fintech.example", 200),
)
ALARMED_DOMAIN = "www.fintech.example"
K8S_NAMESPACE = "fintech-banking"
K8S_SECRET = "account-service-tls"
K8S_DAYS = 25
ENDPOINTS = (("expiring", "localhost", 3), ("mismatch", "legacy.fintech.example", 90))
SERVE_SECONDS = 8 * 3600  # the TLS process exits after this, so a forgotten sandbox heals
PORTS_WAIT_S = 20.0


# --- certificates ----------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "opslib sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_cert(
    cn: str,
    *,
    days: float,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    sans: tuple[str, ...] = (),
    key: ec.EllipticCurvePrivateKey | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for ``cn`` valid from a day ago (earlier for an expired one) until ``days`` from now (self-signed when
    ``issuer`` is None); a leaf gets ``sans`` (default: ``cn``) as DNS/IP SANs."""
    key = key or _key()
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer[0].subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=max(1.0, 30 - days)))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names: list[x509.GeneralName] = []
        for s in sans or (cn,):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def sandbox_ca() -> tuple[tuple, tuple]:
    """A root and an intermediate CA (fresh each seed); returns ((root, key), (inter, key))."""
    root = make_cert("opslib sandbox root CA", days=3650, ca=True)
    inter = make_cert("opslib sandbox intermediate CA", days=1825, ca=True, issuer=root)
    return root, inter


# --- ACM and alarms --------------------------------------------------------------------------


def seed_acm(ctx, inter) -> dict[str, str]:
    """Replace the scenario's ACM certificates; returns {domain: arn}."""
    acm = ctx.aws("acm")
    domains = {d for d, _ in ACM_CERTS}
    for page in acm.get_paginator("list_certificates").paginate():
        for c in page["CertificateSummaryList"]:
            if c.get("DomainName") in domains:
                acm.delete_certificate(CertificateArn=c["CertificateArn"])
    arns = {}
    for domain, days in ACM_CERTS:
        cert, key = make_cert(domain, days=days, issuer=inter, sans=(domain, f"*.{domain}"))
        arns[domain] = acm.import_certificate(
            Certificate=pem(cert),
            PrivateKey=key_pem(key),
            CertificateChain=pem(inter[0]),
            Tags=[TAG],
        )["CertificateArn"]
    cw = ctx.aws("cloudwatch")
    old = [
        a["AlarmName"]
        for a in cw.describe_alarms(AlarmNamePrefix="acm-days-to-expiry-")["MetricAlarms"]
    ]
    if old:
        cw.delete_alarms(AlarmNames=old)
    arn = arns[ALARMED_DOMAIN]
    cw.put_metric_alarm(
        AlarmName=f"acm-days-to-expiry-{ALARMED_DOMAIN}",
        Namespace="AWS/CertificateManager",
        MetricName="DaysToExpiry",
        Dimensions=[{"Name": "CertificateArn", "Value": arn}],
        Statistic="Minimum",
        Period=86400,
        EvaluationPeriods=1,
        Threshold=30,
        ComparisonOperator="LessThanOrEqualToThreshold",
    )
    return arns


# --- Kubernetes ------------------------------------------------------------------------------


def seed_k8s(ctx, inter) -> None:
    import base64

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(ctx.k8s())
    try:
        core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": K8S_NAMESPACE}}
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    cert, key = make_cert("account-service.fintech-banking.svc", days=K8S_DAYS, issuer=inter)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": K8S_SECRET,
            "namespace": K8S_NAMESPACE,
            "labels": {TAG["Key"]: TAG["Value"]},
        },
        "data": {
            "tls.crt": base64.b64encode(pem(cert) + pem(inter[0])).decode(),
            "tls.key": base64.b64encode(key_pem(key)).decode(),
        },
    }
    try:
        core.delete_namespaced_secret(K8S_SECRET, K8S_NAMESPACE)
    except ApiException as exc:
        if exc.status != 404:
            raise
    core.create_namespaced_secret(K8S_NAMESPACE, body)


# --- TLS endpoints ---------------------------------------------------------------------------


def seed_endpoints(ctx, inter) -> list[str]:
    """Write the endpoint certificates, (re)start the TLS process, wait for its ports."""
    d = ctx.scenario_dir("certs")
    specs = []
    for name, host, days in ENDPOINTS:
        cert, key = make_cert(host, days=days, issuer=inter)
        (d / f"{name}.crt").write_bytes(pem(cert) + pem(inter[0]))
        kp = d / f"{name}.key"
        kp.touch(mode=0o600)
        kp.write_bytes(key_pem(key))
        specs.append({"name": name, "cert": str(d / f"{name}.crt"), "key": str(kp)})
    (d / "endpoints.json").write_text(json.dumps(specs))
    ports_file = d / "ports.json"
    ports_file.unlink(missing_ok=True)
    ctx.spawn(
        "certs-tls", [sys.executable, "-m", "opslib.sandbox.scenarios.certs", "serve", str(d)]
    )
    deadline = time.monotonic() + PORTS_WAIT_S
    while time.monotonic() < deadline:
        try:
            ports = json.loads(ports_file.read_text())
            return [f"localhost:{ports[name]}" for name, _, _ in ENDPOINTS]
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.1)
    raise SandboxError(
        f"The certs TLS process wrote no ports within {PORTS_WAIT_S:.0f}s; see "
        f"{ctx.info.state_dir}/logs/spawn-certs-tls.log"
    )


def seed(ctx) -> dict[str, dict]:
    """(Re)create every certificate; returns the presets of ``cert-expiry``."""
    _root, inter = sandbox_ca()
    seed_acm(ctx, inter)
    seed_k8s(ctx, inter)
    endpoints = seed_endpoints(ctx, inter)
    return {
        "cert-expiry": {
            "k8s_namespaces": K8S_NAMESPACE,
            "endpoints": ",".join(endpoints),
            "region": ctx.info.region,
        }
    }


# --- the TLS serving process -----------------------------------------------------------------


def _serve_one(listener: socket.socket, context: ssl.SSLContext, stop: threading.Event) -> None:
    listener.settimeout(0.5)
    while not stop.is_set():
        try:
            sock, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        sock.settimeout(5)
        try:
            with context.wrap_socket(sock, server_side=True) as tls:
                tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        except (OSError, ssl.SSLError):
            sock.close()  # a client that aborts the handshake (a probe) is normal here


def serve(directory: str, *, seconds: float = SERVE_SECONDS) -> int:
    """Serve each certificate of ``endpoints.json`` on its own 127.0.0.1 port until ``seconds``."""
    d = Path(directory)
    specs = json.loads((d / "endpoints.json").read_text())
    stop = threading.Event()
    ports: dict[str, int] = {}
    threads = []
    for spec in specs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(spec["cert"], spec["key"])
        listener = socket.create_server(("127.0.0.1", 0))
        ports[spec["name"]] = listener.getsockname()[1]
        t = threading.Thread(target=_serve_one, args=(listener, context, stop), daemon=True)
        t.start()
        threads.append(t)
    tmp = d / "ports.json.tmp"
    tmp.write_text(json.dumps(ports))
    tmp.replace(d / "ports.json")
    print(f"serving TLS on {ports}", flush=True)
    time.sleep(seconds)
    stop.set()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m opslib.sandbox.scenarios.certs")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve the scenario's TLS endpoints on 127.0.0.1")
    s.add_argument("directory")
    s.add_argument("--seconds", type=float, default=SERVE_SECONDS)
    a = ap.parse_args(argv)
    return serve(a.directory, seconds=a.seconds)


if __name__ == "__main__":
    sys.exit(main())
