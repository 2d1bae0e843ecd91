"""Ed25519 signatures over manifests, so a writer of the bucket cannot rewrite and re-chain history.

The hash chain alone shows that nothing changed *unless* someone rewrote every manifest after
the one they edited; a signature by a key the writer does not hold closes that gap. The
private key is a PEM file named by ``OPSLIB_SIGNING_KEY`` (``opslib evidence keygen`` makes
one); every manifest sealed while it is set gets ``manifest.sig`` beside it, and
``opslib evidence verify PATH --public-key KEY.pub`` checks each one against the key the
auditor trusts. All the cryptography is the ``cryptography`` package's; nothing here is
hand-written crypto.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from opslib.core.errors import BadInputError

#: Environment variable naming the private key (a path to a PEM file, never the key itself).
SIGNING_KEY_ENV = "OPSLIB_SIGNING_KEY"
#: The signature file written beside manifest.json (not listed in the manifest it signs).
SIGNATURE = "manifest.sig"
ALGORITHM = "ed25519"


def _serialization():
    from cryptography.hazmat.primitives import serialization

    return serialization


def key_id(public_key) -> str:
    """A short fingerprint of a public key: SHA-256 of its raw 32 bytes, first 16 hex digits."""
    ser = _serialization()
    raw = public_key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(path: str | os.PathLike[str], *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new Ed25519 private key to ``path`` (mode 0600) and its public key to ``path.pub``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ser = _serialization()
    priv_path = Path(path)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    if not overwrite and (priv_path.exists() or pub_path.exists()):
        raise BadInputError(
            f"{priv_path} (or {pub_path}) already exists; choose another path or pass --force."
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    priv_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_bytes(
        key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    )
    return priv_path, pub_path


def load_private_key(path: str | os.PathLike[str]):
    """The Ed25519 private key in a PEM file; BadInputError naming the file when it is not one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = _serialization().load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BadInputError(
            f"Cannot read the signing key {path} ({exc}); {SIGNING_KEY_ENV} must name an "
            "unencrypted Ed25519 PEM file (make one with `opslib evidence keygen PATH`)."
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInputError(f"{path} is not an Ed25519 private key; use `opslib evidence keygen`.")
    return key


def load_public_key(path: str | os.PathLike[str]):
    """The Ed25519 public key in a PEM file (the ``.pub`` that keygen wrote)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = _serialization().load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise BadInputError(
            f"Cannot read the public key {path} ({exc}); give the .pub file `opslib evidence "
            "keygen` wrote."
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BadInputError(f"{path} is not an Ed25519 public key.")
    return key


@dataclass(frozen=True)
class Signer:
    """Signs manifest bytes with one private key."""

    private_key: object

    @property
    def key_id(self) -> str:
        return key_id(self.private_key.public_key())  # type: ignore[attr-defined]

    def sign(self, data: bytes) -> bytes:
        """The ``manifest.sig`` document for ``data`` (canonical JSON bytes)."""
        ser = _serialization()
        pub = self.private_key.public_key()  # type: ignore[attr-defined]
        doc = {
            "algorithm": ALGORITHM,
            "key_id": key_id(pub),
            "public_key": base64.b64encode(
                pub.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
            ).decode(),
            "signed": "manifest.json",
            "signature": base64.b64encode(self.private_key.sign(data)).decode(),  # type: ignore[attr-defined]
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def signer_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> Signer | None:
    """The signer named by ``OPSLIB_SIGNING_KEY`` (None when unset)."""
    env = os.environ if environ is None else environ
    path = env.get(SIGNING_KEY_ENV, "").strip()
    return Signer(load_private_key(path)) if path else None


def check(data: bytes, sig: bytes, public_key) -> str:
    """ "" when ``sig`` is a valid signature of ``data`` by ``public_key``, else why not."""
    from cryptography.exceptions import InvalidSignature

    try:
        doc = json.loads(sig)
        signature = base64.b64decode(doc["signature"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        return f"bad signature: manifest.sig is unreadable ({exc})"
    if doc.get("algorithm") != ALGORITHM:
        return f"bad signature: algorithm {doc.get('algorithm')!r}, expected {ALGORITHM}"
    expected = key_id(public_key)
    if doc.get("key_id") != expected:
        return (
            f"signed by another key (key id {doc.get('key_id')}), not the given public key "
            f"(key id {expected})"
        )
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return "bad signature: manifest.json does not match its signature"
    return ""
