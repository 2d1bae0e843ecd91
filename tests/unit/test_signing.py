"""Ed25519 signatures and named verify failures: changed, removed, reordered, forked, bad or other key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opslib.cli import main
from opslib.core.errors import BadInputError
from opslib.evidence import signing
from opslib.evidence.manifest import MANIFEST, SIGNATURE, canonical, sha256, verify

from .test_manifest import make_bundle


@pytest.fixture
def keys(tmp_path):
    assert main(["evidence", "keygen", str(tmp_path / "keys" / "ops.key")]) == 0
    priv, pub = tmp_path / "keys" / "ops.key", tmp_path / "keys" / "ops.key.pub"
    assert priv.stat().st_mode & 0o777 == 0o600
    return priv, pub


@pytest.fixture
def signed(evidence_dir, keys, monkeypatch):
    monkeypatch.setenv(signing.SIGNING_KEY_ENV, str(keys[0]))
    bundles = [make_bundle(evidence_dir, n, second=n) for n in (1, 2, 3)]
    return bundles, keys[1]


def run_verify(path, pub) -> int:
    return main(["evidence", "verify", str(path), "--public-key", str(pub)])


def test_every_manifest_is_signed_and_verifies(signed, evidence_dir, capsys):
    bundles, pub = signed
    for b in bundles:
        assert (Path(b.location) / SIGNATURE).is_file()
        assert b.manifest["signing_key_id"] == signing.key_id(signing.load_public_key(pub))
        assert run_verify(b.location, pub) == 0
    assert run_verify(evidence_dir, pub) == 0
    assert "3 signatures ok" in capsys.readouterr().out
    # without --public-key the signature is noted, not required
    res = verify(bundles[0].location)
    assert res.ok and any("pass --public-key" in n for n in res.notes)


def test_keygen_refuses_to_overwrite(keys):
    with pytest.raises(BadInputError, match="already exists"):
        signing.generate(keys[0])


def test_changed_file_named(signed, capsys):
    bundles, pub = signed
    p = Path(bundles[1].location) / "record.json"
    p.write_text(p.read_text().replace('"succeeded"', '"failed"'))
    assert run_verify(bundles[1].location, pub) == 1
    out = capsys.readouterr().out
    assert "first bad file record.json" in out and "changed" in out


def test_removed_file_named(signed, capsys):
    bundles, pub = signed
    (Path(bundles[1].location) / "demo-book.html").unlink()
    assert run_verify(bundles[1].location, pub) == 1
    assert "first bad file demo-book.html" in capsys.readouterr().out


def test_bad_signature_named(signed, capsys):
    """A writer of the store re-seals a manifest it edited: the hashes agree, the signature does not."""
    bundles, pub = signed
    base = Path(bundles[2].location)
    rec = base / "record.json"
    data = rec.read_bytes().replace(b'"succeeded"', b'"failed"')
    rec.write_bytes(data)
    manifest = json.loads((base / MANIFEST).read_text())
    manifest["files"]["record.json"] = sha256(data)
    (base / MANIFEST).write_bytes(canonical(manifest))
    head_path = base.parent.parent / ".chain-head"
    head = json.loads(head_path.read_text())
    head["manifest_sha256"] = sha256(canonical(manifest))
    head_path.write_bytes(canonical(head))
    assert verify(str(base)).ok  # hashes alone are fooled ...
    assert run_verify(base, pub) == 1  # ... the signature is not
    out = capsys.readouterr().out
    assert f"first bad file {SIGNATURE}" in out and "bad signature" in out


def test_other_key_named(signed, tmp_path, capsys):
    bundles, _pub = signed
    other_priv, other_pub = signing.generate(tmp_path / "other.key")
    assert run_verify(bundles[0].location, other_pub) == 1
    out = capsys.readouterr().out
    assert "signed by another key" in out


def test_unsigned_bundle_fails_when_a_key_is_given(evidence_dir, keys, capsys):
    b = make_bundle(evidence_dir, 1)
    assert run_verify(b.location, keys[1]) == 1
    assert "not signed" in capsys.readouterr().out


def _reseal(base: Path, **changes):
    manifest = json.loads((base / MANIFEST).read_text())
    manifest.update(changes)
    data = canonical(manifest)
    (base / MANIFEST).write_bytes(data)
    return sha256(data)


def test_reordered_chain_named(evidence_dir):
    """Links rewritten consistently so that run 3 follows run 1 and run 2 follows run 3."""
    b1, b2, b3 = (make_bundle(evidence_dir, n, second=n) for n in (1, 2, 3))
    r1, r2, r3 = (Path(b.location).relative_to(evidence_dir).as_posix() for b in (b1, b2, b3))
    s1 = sha256((Path(b1.location) / MANIFEST).read_bytes())
    s3 = _reseal(Path(b3.location), previous=s1, previous_bundle=r1)
    s2 = _reseal(Path(b2.location), previous=s3, previous_bundle=r3)
    (evidence_dir / ".chain-head").write_bytes(
        canonical({"bundle": r2, "manifest_sha256": s2, "sequence": 2})
    )
    res = verify(str(evidence_dir))
    assert not res.ok and "chain reordered" in str(res), str(res)
    assert main(["evidence", "verify", str(evidence_dir)]) == 1


def test_forked_chain_named(evidence_dir):
    """The head moved back (the old race): runs 2 and 3 both follow run 1."""
    make_bundle(evidence_dir, 1, second=1)
    head_after_1 = (evidence_dir / ".chain-head").read_bytes()
    make_bundle(evidence_dir, 2, second=2)
    (evidence_dir / ".chain-head").write_bytes(head_after_1)
    make_bundle(evidence_dir, 3, second=3)
    res = verify(str(evidence_dir))
    assert not res.ok and "chain forked after demo-book/20261123T100001Z_run1" in str(res), str(res)


def test_removed_bundle_breaks_the_chain(evidence_dir):
    bundles = [make_bundle(evidence_dir, n, second=n) for n in (1, 2, 3)]
    shutil.rmtree(bundles[1].location)
    res = verify(str(evidence_dir))
    assert not res.ok and "missing" in str(res)


def test_bad_signing_key_refuses_the_run_before_the_kernel(evidence_dir, tmp_path, monkeypatch):
    import opslib

    bad = tmp_path / "not-a-key"
    bad.write_text("hello")
    monkeypatch.setenv(signing.SIGNING_KEY_ENV, str(bad))
    tiny = str(Path(__file__).parents[1] / "fixtures" / "notebooks" / "tiny.ipynb")
    with pytest.raises(BadInputError, match="signing key"):
        opslib.run(tiny, evidence_dir=evidence_dir)
