"""manifest.json: SHA-256 of every bundle file plus a hash link to the previous run's manifest.

The link makes an evidence dir an append-only chain: editing an old bundle (or its manifest)
breaks the link recorded by the run after it, and ``EVIDENCE_DIR/.chain-head`` pins the
latest manifest. The manifest is written canonically (sorted keys, 2-space indent), so any
byte changed in it is detected too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from opslib.core.errors import EvidenceError
from opslib.evidence.store import CHAIN_HEAD, Store, open_store, split_bundle_location

MANIFEST = "manifest.json"
FORMAT = "opslib-evidence/1"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(obj: dict[str, Any]) -> bytes:
    """The exact bytes a manifest (or chain head) is written as."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def read_head(store: Store) -> dict[str, str] | None:
    """The chain head ({"bundle", "manifest_sha256"}) or None for an empty evidence dir."""
    if not store.exists(CHAIN_HEAD):
        return None
    try:
        head = json.loads(store.read_bytes(CHAIN_HEAD))
    except ValueError as exc:
        raise EvidenceError(f"Corrupt chain head {store.url(CHAIN_HEAD)}: {exc}") from exc
    return head if isinstance(head, dict) and head.get("bundle") else None


def _latest_other(store: Store, bundle: str) -> dict[str, str] | None:
    """Fallback when no head file exists: the newest listed bundle other than ``bundle``."""
    others = [b for b in store.list_bundles() if b != bundle]
    if not others:
        return None
    prev = others[-1]
    return {"bundle": prev, "manifest_sha256": sha256(store.read_bytes(f"{prev}/{MANIFEST}"))}


def seal(store: Store, bundle: str, files: dict[str, bytes]) -> dict[str, Any]:
    """Write ``files`` (name -> redacted bytes) into ``bundle``, then its manifest, then move the head.

    Under the store's lock, so concurrent runs into one evidence dir still form one chain.
    """
    hashes = {}
    for name in sorted(files):
        store.write_bytes(f"{bundle}/{name}", files[name])
        hashes[name] = sha256(files[name])
    with store.lock():
        head = read_head(store) or _latest_other(store, bundle)
        manifest = {
            "format": FORMAT,
            "bundle": bundle,
            "algorithm": "sha256",
            "files": hashes,
            "previous": head["manifest_sha256"] if head else None,
            "previous_bundle": head["bundle"] if head else None,
        }
        data = canonical(manifest)
        store.write_bytes(f"{bundle}/{MANIFEST}", data)
        store.write_bytes(
            CHAIN_HEAD, canonical({"bundle": bundle, "manifest_sha256": sha256(data)})
        )
    return manifest


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


def _check_bundle(
    store: Store, bundle: str
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
    if (
        manifest.get("bundle") not in (None, bundle)
        and manifest.get("bundle", "").split("/")[-1] != bundle.split("/")[-1]
    ):
        problems.append((MANIFEST, f"manifest names bundle {manifest.get('bundle')!r}"))
    checked = []
    present = {rel[len(bundle) + 1 :] for rel in store.list_files(bundle)}
    for name in sorted(files):
        if name not in present:
            problems.append((name, "missing"))
            continue
        actual = sha256(store.read_bytes(f"{bundle}/{name}"))
        if actual != files[name]:
            problems.append(
                (name, f"sha256 {actual[:12]}... does not match manifest {files[name][:12]}...")
            )
        checked.append(name)
    for name in sorted(present - set(files) - {MANIFEST}):
        problems.append((name, "not listed in the manifest (added after sealing)"))
    prev, prev_bundle = manifest.get("previous"), manifest.get("previous_bundle")
    if prev and prev_bundle:
        prel = f"{prev_bundle}/{MANIFEST}"
        if store.exists(prel):
            if sha256(store.read_bytes(prel)) != prev:
                problems.append(
                    (
                        MANIFEST,
                        f"chain broken: previous manifest {prev_bundle}/{MANIFEST} was changed",
                    )
                )
            else:
                notes.append(f"chain link to {prev_bundle} ok")
        else:
            notes.append(f"previous bundle {prev_bundle} not present here; chain link not checked")
    head = read_head(store) if store.exists(CHAIN_HEAD) else None
    if head and head.get("bundle") == bundle and head.get("manifest_sha256") != msha:
        problems.append((MANIFEST, "chain broken: manifest.json does not match the chain head"))
    return problems, checked, notes, msha


def verify(location: str) -> VerifyResult:
    """Verify a bundle (folder or s3:// URL) or, given an evidence dir, every bundle and the chain.

    The result names the first file that does not match; the CLI exits non-zero on it.
    """
    loc = str(location).rstrip("/")
    store0 = open_store(loc)
    if not store0.exists(MANIFEST) and (store0.exists(CHAIN_HEAD) or store0.list_bundles()):
        return _verify_dir(store0)
    store, bundle = split_bundle_location(loc)
    problems, checked, notes, _ = _check_bundle(store, bundle)
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


def _verify_dir(store: Store) -> VerifyResult:
    """Every bundle in an evidence dir, then the chain from the head back to the first run."""
    bundles = store.list_bundles()
    all_checked: list[str] = []
    shas: dict[str, str] = {}
    manifests: dict[str, dict[str, Any]] = {}
    for bundle in bundles:
        problems, checked, _, msha = _check_bundle(store, bundle)
        all_checked += [f"{bundle}/{c}" for c in checked]
        if problems:
            f, _why = problems[0]
            return VerifyResult(
                store.root,
                False,
                f"{bundle}/{f}",
                tuple(f"{bundle}/{f}: {w}" for f, w in problems),
                tuple(all_checked),
            )
        shas[bundle] = msha
        manifests[bundle] = json.loads(store.read_bytes(f"{bundle}/{MANIFEST}"))
    head = read_head(store)
    seen = set()
    cur = head["bundle"] if head else None
    while cur:
        if cur not in manifests:
            return VerifyResult(
                store.root,
                False,
                f"{cur}/{MANIFEST}",
                (f"chain broken: bundle {cur} is missing",),
                tuple(all_checked),
            )
        seen.add(cur)
        cur = manifests[cur].get("previous_bundle")
        if cur in seen:
            break
    orphans = [b for b in bundles if b not in seen]
    notes = (f"{len(bundles)} bundles, chain of {len(seen)}",) + (
        (f"not on the chain: {', '.join(orphans)}",) if orphans else ()
    )
    return VerifyResult(store.root, True, checked=tuple(all_checked), notes=notes)
