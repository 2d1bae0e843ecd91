"""Where bundles live: a local directory or an S3 prefix, behind one small interface.

Bundle writing, verification and listing all go through a :class:`Store`, so
``--evidence-dir s3://bucket/prefix`` works for ``run``, ``evidence verify`` and ``evidence
list`` alike. Paths inside a store are POSIX relative paths (``runbook/<stamp>_<id>/file``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from opslib.clients import aws_client
from opslib.core.errors import EvidenceError

#: File at the store root naming the latest bundle and its manifest hash (head of the chain).
CHAIN_HEAD = ".chain-head"


class Store:
    """Abstract evidence store; ``root`` is shown to users (a path or an ``s3://`` URL)."""

    root: str

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def list_files(self, prefix: str) -> list[str]:
        """Relative paths of every file under ``prefix`` (a bundle folder), sorted."""
        raise NotImplementedError

    def list_bundles(self) -> list[str]:
        """Relative paths of every bundle folder (one holding manifest.json), oldest first."""
        raise NotImplementedError

    def url(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}" if rel else self.root

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise chain-head updates (a no-op where the backend cannot lock)."""
        yield


class DirStore(Store):
    """Evidence in a local directory (the default ``./evidence``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = Path(root)
        self.root = str(self.path)

    def _p(self, rel: str) -> Path:
        return self.path / rel if rel else self.path

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self._p(rel).read_bytes()
        except FileNotFoundError as exc:
            raise EvidenceError(f"Missing evidence file {self._p(rel)}") from exc

    def write_bytes(self, rel: str, data: bytes) -> None:
        p = self._p(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)

    def exists(self, rel: str) -> bool:
        return self._p(rel).exists()

    def list_files(self, prefix: str) -> list[str]:
        base = self._p(prefix)
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.path).as_posix() for p in base.rglob("*") if p.is_file())

    def list_bundles(self) -> list[str]:
        if not self.path.is_dir():
            return []
        found = [
            m.parent.relative_to(self.path).as_posix() for m in self.path.glob("*/*/manifest.json")
        ]
        return sorted(found, key=lambda rel: (rel.rsplit("/", 1)[-1], rel))

    def url(self, rel: str) -> str:
        return str(self._p(rel))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".chain.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class S3Store(Store):
    """Evidence under ``s3://bucket/prefix``, through the client that opslib.clients builds."""

    def __init__(self, url: str, *, s3=None) -> None:
        rest = url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise EvidenceError(f"Not an S3 evidence location: {url!r}; use s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        if s3 is None:
            s3 = aws_client("s3")
        self.s3 = s3

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()
        except self.s3.exceptions.NoSuchKey as exc:
            raise EvidenceError(f"Missing evidence file {self.url(rel)}") from exc

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)

    def exists(self, rel: str) -> bool:
        import botocore.exceptions

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._key(rel))
            return True
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise

    def _keys(self, rel_prefix: str) -> list[str]:
        pfx = self._key(rel_prefix)
        if pfx and not pfx.endswith("/"):
            pfx += "/"
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=pfx
        ):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[strip:] for k in keys)

    def list_files(self, prefix: str) -> list[str]:
        return self._keys(prefix)

    def list_bundles(self) -> list[str]:
        found = [
            k[: -len("/manifest.json")] for k in self._keys("") if k.endswith("/manifest.json")
        ]
        found = [rel for rel in found if rel.count("/") == 1]
        return sorted(found, key=lambda rel: (rel.rsplit("/", 1)[-1], rel))


def open_store(location: str | os.PathLike[str]) -> Store:
    """A store for a directory path or an ``s3://bucket/prefix`` URL."""
    loc = str(location)
    if loc.startswith("s3://"):
        return S3Store(loc)
    return DirStore(loc)


def split_bundle_location(location: str | os.PathLike[str]) -> tuple[Store, str]:
    """(store of the evidence dir, bundle rel path) for a bundle path or URL.

    A bundle lives at ``EVIDENCE_DIR/RUNBOOK/STAMP_ID``; its evidence dir (where the chain
    head is) is two levels up.
    """
    loc = str(location).rstrip("/")
    if loc.startswith("s3://"):
        parts = loc.split("/")
        if len(parts) < 5:
            raise EvidenceError(
                f"Not a bundle location: {loc!r} (expected s3://bucket/[prefix/]RUNBOOK/RUN)"
            )
        return S3Store("/".join(parts[:-2])), "/".join(parts[-2:])
    p = Path(loc).resolve()
    return DirStore(p.parent.parent), f"{p.parent.name}/{p.name}"
