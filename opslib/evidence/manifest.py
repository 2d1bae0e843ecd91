"""manifest.json: SHA-256 of every bundle file plus a hash link to the previous run's manifest.

The link makes an evidence dir an append-only chain: editing an old bundle (or its manifest)
breaks the link recorded by the run after it, and ``EVIDENCE_DIR/.chain-head`` pins the
latest manifest. The manifest is written canonically (sorted keys, 2-space indent), so any
byte changed in it is detected too. Each manifest also carries its ``sequence`` on the chain
and when it was sealed, so a chain whose links were rewritten into another order is named
as reordered, and two bundles claiming one predecessor as forked.

Sealing moves the head by compare-and-swap (see :mod:`opslib.evidence.store`): the head is
written first, conditionally, naming the manifest about to be written; the loser of a race
re-reads the head and builds its manifest again on top of the winner. With
``OPSLIB_SIGNING_KEY`` set, ``manifest.sig`` (Ed25519) is written beside each manifest.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from opslib.core.errors import EvidenceError
from opslib.evidence import signing
from opslib.evidence.store import CHAIN_HEAD, Store, open_store, split_bundle_location

MANIFEST = "manifest.json"
SIGNATURE = signing.SIGNATURE
FORMAT = "opslib-evidence/1"
#: Bound on compare-and-swap attempts when many runs seal into one store at once.
SEAL_ATTEMPTS = 200
#: Files of a bundle folder that the manifest does not (cannot) list.
UNLISTED = {MANIFEST, SIGNATURE}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(obj: dict[str, Any]) -> bytes:
    """The exact bytes a manifest (or chain head) is written as."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _parse_head(raw: bytes | None, store: Store) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        head = json.loads(raw)
    except ValueError as exc:
        raise EvidenceError(f"Corrupt chain head {store.url(CHAIN_HEAD)}: {exc}") from exc
    return head if isinstance(head, dict) and head.get("bundle") else None


def read_head(store: Store) -> dict[str, Any] | None:
    """The chain head ({"bundle", "manifest_sha256", "sequence"}) or None for an empty store."""
    return _parse_head(store.read_head()[0], store)


def _latest_other(store: Store, bundle: str) -> dict[str, Any] | None:
    """Fallback when no head file exists: the newest listed bundle other than ``bundle``."""
    others = [b for b in store.list_bundles() if b != bundle]
    if not others:
        return None
    prev = others[-1]
    raw = store.read_bytes(f"{prev}/{MANIFEST}")
    seq = json.loads(raw).get("sequence")
    return {"bundle": prev, "manifest_sha256": sha256(raw), "sequence": seq}


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def seal(
    store: Store,
    bundle: str,
    files: dict[str, bytes],
    *,
    signer: signing.Signer | None = None,
) -> dict[str, Any]:
    """Write ``files`` (name -> redacted bytes) into ``bundle``, then move the head, then the manifest.

    The head moves by compare-and-swap, so concurrent runs into one evidence dir (local or
    S3) form one linear chain; each attempt re-reads the head. Raises EvidenceError when the
    head could not be moved after :data:`SEAL_ATTEMPTS` tries.
    """
    hashes = {}
    for name in sorted(files):
        store.write_new(f"{bundle}/{name}", files[name])
        hashes[name] = sha256(files[name])
    for attempt in range(SEAL_ATTEMPTS):
        raw, token = store.read_head()
        head = _parse_head(raw, store)
        if head is None and raw is None:
            head = _latest_other(store, bundle)
        prev_seq = head.get("sequence") if head else 0
        manifest = {
            "format": FORMAT,
            "bundle": bundle,
            "algorithm": "sha256",
            "files": hashes,
            "previous": head["manifest_sha256"] if head else None,
            "previous_bundle": head["bundle"] if head else None,
            "sequence": prev_seq + 1 if isinstance(prev_seq, int) else None,
            "sealed_at": _now_iso(),
        }
        if signer is not None:
            manifest["signing_key_id"] = signer.key_id
        data = canonical(manifest)
        new_head = canonical(
            {
                "bundle": bundle,
                "manifest_sha256": sha256(data),
                "sequence": manifest["sequence"],
                "sealed_at": manifest["sealed_at"],
            }
        )
        if store.put_head(new_head, token):
            store.write_new(f"{bundle}/{MANIFEST}", data)
            if signer is not None:
                store.write_new(f"{bundle}/{SIGNATURE}", signer.sign(data))
            return manifest
        time.sleep(min(0.5, 0.01 * (attempt + 1)) * random.random())  # noqa: S311  jitter only
    raise EvidenceError(
        f"Could not move the chain head of {store.root} after {SEAL_ATTEMPTS} attempts "
        "(other runs kept sealing first); the bundle files are written, its manifest is not."
    )


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of verifying one bundle (or a whole evidence dir)."""

    location: str
    ok: bool
    first_bad: str = ""
    problems: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        if self.ok:
            extra = f" ({'; '.join(self.notes)})" if self.notes else ""
            return f"OK {self.location}: {len(self.checked)} files verified{extra}"
        return f"FAILED {self.location}: first bad file {self.first_bad}: " + "; ".join(
            self.problems
        )


def _check_signature(
    store: Store, bundle: str, raw: bytes, public_key: Any
) -> tuple[tuple[str, str] | None, str]:
    """(problem or None, note) for the bundle's manifest.sig."""
    srel = f"{bundle}/{SIGNATURE}"
    present = store.exists(srel)
    if public_key is None:
        if present:
            kid = json.loads(store.read_bytes(srel)).get("key_id", "?")
            return None, f"signed (key id {kid}); pass --public-key to check the signature"
        return None, ""
    if not present:
        return (SIGNATURE, "not signed (no manifest.sig), but a public key was given"), ""
    why = signing.check(raw, store.read_bytes(srel), public_key)
    if why:
        return (SIGNATURE, why), ""
    return None, f"signature ok (key id {signing.key_id(public_key)})"


def _check_bundle(
    store: Store, bundle: str, public_key: Any = None
) -> tuple[list[tuple[str, str]], list[str], list[str], str]:
    """(problems as (file, why), checked files, notes, manifest sha) for one bundle."""
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    mrel = f"{bundle}/{MANIFEST}"
    try:
        raw = store.read_bytes(mrel)
    except EvidenceError:
        return [(MANIFEST, "manifest.json is missing")], [], notes, ""
    msha = sha256(raw)
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or canonical(manifest) != raw:
            raise ValueError("not in canonical form")
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return [(MANIFEST, f"manifest.json was modified ({exc})")], [], notes, msha
    sig_problem, sig_note = _check_signature(store, bundle, raw, public_key)
    if sig_note:
        notes.append(sig_note)
    if (
        manifest.get("bundle") not in (None, bundle)
        and manifest.get("bundle", "").split("/")[-1] != bundle.split("/")[-1]
    ):
        problems.append((MANIFEST, f"manifest names bundle {manifest.get('bundle')!r}"))
    checked = []
    present = {rel[len(bundle) + 1 :] for rel in store.list_files(bundle)}
    for name in sorted(files):
        if name not in present:
            problems.append((name, "missing (removed after sealing)"))
            continue
        actual = sha256(store.read_bytes(f"{bundle}/{name}"))
        if actual != files[name]:
            problems.append(
                (
                    name,
                    f"changed: sha256 {actual[:12]}... does not match manifest {files[name][:12]}...",
                )
            )
        checked.append(name)
    for name in sorted(present - set(files) - UNLISTED):
        problems.append((name, "not listed in the manifest (added after sealing)"))
    if sig_problem:  # after the file checks: a changed file is the more precise finding
        problems.append(sig_problem)
    prev, prev_bundle = manifest.get("previous"), manifest.get("previous_bundle")
    if prev and prev_bundle:
        prel = f"{prev_bundle}/{MANIFEST}"
        if store.exists(prel):
            praw = store.read_bytes(prel)
            if sha256(praw) != prev:
                problems.append(
                    (
                        MANIFEST,
                        f"chain broken: previous manifest {prev_bundle}/{MANIFEST} was changed",
                    )
                )
            else:
                notes.append(f"chain link to {prev_bundle} ok")
                problems += _order_problems(manifest, json.loads(praw), prev_bundle)
        else:
            notes.append(f"previous bundle {prev_bundle} not present here; chain link not checked")
    head = read_head(store)
    if head and head.get("bundle") == bundle and head.get("manifest_sha256") != msha:
        problems.append((MANIFEST, "chain broken: manifest.json does not match the chain head"))
    return problems, checked, notes, msha


def _order_problems(
    manifest: dict[str, Any], previous: dict[str, Any], prev_bundle: str
) -> list[tuple[str, str]]:
    """A link whose sequence does not follow its predecessor's, or that was sealed before it."""
    out = []
    seq, pseq = manifest.get("sequence"), previous.get("sequence")
    if isinstance(seq, int) and isinstance(pseq, int) and seq != pseq + 1:
        out.append(
            (
                MANIFEST,
                f"chain reordered: sequence {seq} follows {prev_bundle} (sequence {pseq})",
            )
        )
    at, pat = manifest.get("sealed_at"), previous.get("sealed_at")
    if isinstance(at, str) and isinstance(pat, str) and at < pat:
        out.append(
            (
                MANIFEST,
                f"chain reordered: sealed at {at}, before its predecessor {prev_bundle} ({pat})",
            )
        )
    return out


def verify(location: str, *, public_key: Any = None) -> VerifyResult:
    """Verify a bundle (folder or s3:// URL) or, given an evidence dir, every bundle and the chain.

    ``public_key`` (an Ed25519 public key, see :func:`opslib.evidence.signing.load_public_key`)
    makes every bundle's ``manifest.sig`` required and checked against it. The result names the
    first file that does not match; the CLI exits 1 on it.
    """
    loc = str(location).rstrip("/")
    store0 = open_store(loc)
    if not store0.exists(MANIFEST) and (store0.exists(CHAIN_HEAD) or store0.list_bundles()):
        return _verify_dir(store0, public_key)
    store, bundle = split_bundle_location(loc)
    problems, checked, notes, _ = _check_bundle(store, bundle, public_key)
    if problems:
        return VerifyResult(
            loc,
            False,
            problems[0][0],
            tuple(f"{f}: {why}" for f, why in problems),
            tuple(checked),
            tuple(notes),
        )
    return VerifyResult(loc, True, checked=tuple(checked), notes=tuple(notes))


def _fail(store: Store, first: str, problems: list[str], checked: list[str]) -> VerifyResult:
    return VerifyResult(store.root, False, first, tuple(problems), tuple(checked))


def _verify_dir(store: Store, public_key: Any = None) -> VerifyResult:
    """Every bundle in an evidence dir, then the chain: one line from the head to the first run.

    Fails on a bundle that is missing from the chain, two bundles that follow one predecessor
    (a fork), two first runs, a cycle, or sequence numbers out of order (a reordered chain).
    """
    bundles = store.list_bundles()
    all_checked: list[str] = []
    manifests: dict[str, dict[str, Any]] = {}
    signed = 0
    for bundle in bundles:
        problems, checked, notes, _msha = _check_bundle(store, bundle, public_key)
        all_checked += [f"{bundle}/{c}" for c in checked]
        if problems:
            f, _why = problems[0]
            return _fail(
                store, f"{bundle}/{f}", [f"{bundle}/{f}: {w}" for f, w in problems], all_checked
            )
        signed += any(n.startswith("signature ok") for n in notes)
        manifests[bundle] = json.loads(store.read_bytes(f"{bundle}/{MANIFEST}"))
    followers: dict[str | None, list[str]] = {}
    for b, m in manifests.items():
        followers.setdefault(m.get("previous_bundle"), []).append(b)
    for prev, after in followers.items():
        if len(after) > 1:
            what = f"after {prev}" if prev else "at the start (two first runs)"
            return _fail(
                store,
                f"{sorted(after)[1]}/{MANIFEST}",
                [f"chain forked {what}: {', '.join(sorted(after))} all follow it"],
                all_checked,
            )
    head = read_head(store)
    seen: list[str] = []
    cur = head["bundle"] if head else None
    while cur:
        if cur not in manifests:
            return _fail(
                store,
                f"{cur}/{MANIFEST}",
                [f"chain broken: bundle {cur} is missing"],
                all_checked,
            )
        if cur in seen:
            return _fail(
                store,
                f"{cur}/{MANIFEST}",
                [f"chain reordered: {cur} appears twice (a cycle)"],
                all_checked,
            )
        seen.append(cur)
        cur = manifests[cur].get("previous_bundle")
    orphans = [b for b in bundles if b not in seen]
    if head and orphans:
        return _fail(
            store,
            f"{orphans[0]}/{MANIFEST}",
            [f"chain forked: not on the chain from the head: {', '.join(orphans)}"],
            all_checked,
        )
    notes = [f"{len(bundles)} bundles, chain of {len(seen)}"]
    if public_key is not None:
        notes.append(f"{signed} signatures ok")
    if orphans:
        notes.append(f"no chain head; not on a chain: {', '.join(orphans)}")
    return VerifyResult(store.root, True, checked=tuple(all_checked), notes=tuple(notes))


def chain_order(store: Store) -> list[str]:
    """The bundles of ``store`` in chain order, first run first (from the head backwards)."""
    head = read_head(store)
    out: list[str] = []
    cur = head["bundle"] if head else None
    while cur and cur not in out and store.exists(f"{cur}/{MANIFEST}"):
        out.append(cur)
        cur = json.loads(store.read_bytes(f"{cur}/{MANIFEST}")).get("previous_bundle")
    return out[::-1]
