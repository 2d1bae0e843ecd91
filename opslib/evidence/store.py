"""Where bundles live: a local directory or an S3 prefix, behind one small interface.

Bundle writing, verification and listing all go through a :class:`Store`, so
``--evidence-dir s3://bucket/prefix`` works for ``run``, ``evidence verify`` and ``evidence
list`` alike. Paths inside a store are POSIX relative paths (``runbook/<stamp>_<id>/file``).

Two properties make the store fit for audit evidence:

- **No overwrite.** Bundle files are written with :meth:`Store.write_new`, which refuses a key
  that exists (S3 ``If-None-Match: *``), and on S3 optionally under Object Lock (COMPLIANCE or
  GOVERNANCE, retained N days), so a written bundle cannot be deleted or replaced in place.
- **One chain.** The chain head (``.chain-head``) moves only by compare-and-swap:
  :meth:`Store.read_head` returns a token (the S3 ETag), :meth:`Store.put_head` writes only if
  the head still carries it (``If-Match``; ``If-None-Match: *`` for the first head). Two runs
  sealing at once never fork the chain: the loser re-reads the head and chains after the winner.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from opslib.clients import AwsErrorKind, aws_client, aws_error_code, aws_error_kind
from opslib.core.errors import BadInputError, EvidenceError

#: File at the store root naming the latest bundle and its manifest hash (head of the chain).
CHAIN_HEAD = ".chain-head"
#: Environment defaults for ``--object-lock-mode`` and ``--retention-days``.
LOCK_MODE_ENV = "OPSLIB_OBJECT_LOCK_MODE"
RETENTION_ENV = "OPSLIB_RETENTION_DAYS"
#: Retention used when a lock mode is given without a number of days.
DEFAULT_RETENTION_DAYS = 365


class LockMode(StrEnum):
    """S3 Object Lock modes: COMPLIANCE (nobody can delete before expiry) or GOVERNANCE
    (only a principal with ``s3:BypassGovernanceRetention`` can)."""

    COMPLIANCE = "COMPLIANCE"
    GOVERNANCE = "GOVERNANCE"


class HeadConflict(EvidenceError):
    """Raised when the chain head moved between read and write (another run sealed first)."""


class Store:
    """Abstract evidence store; ``root`` is shown to users (a path or an ``s3://`` URL)."""

    root: str

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write (or replace) ``rel``: for files that are not evidence (pending approvals)."""
        raise NotImplementedError

    def write_new(self, rel: str, data: bytes) -> None:
        """Write a bundle file; refuses (EvidenceError) if ``rel`` exists. Locked where supported."""
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def list_files(self, prefix: str) -> list[str]:
        """Relative paths of every file under ``prefix`` (a bundle folder), sorted."""
        raise NotImplementedError

    def list_bundles(self) -> list[str]:
        """Relative paths of every bundle folder (one holding manifest.json), oldest first."""
        raise NotImplementedError

    def read_head(self) -> tuple[bytes | None, str | None]:
        """(chain head bytes or None, token to pass to :meth:`put_head`)."""
        raise NotImplementedError

    def put_head(self, data: bytes, token: str | None) -> bool:
        """Replace the head only if it still carries ``token`` (None: only if there is none).

        False when another writer got there first; the caller re-reads and retries.
        """
        raise NotImplementedError

    def check_writable(self) -> None:
        """Refuse (BadInputError) settings the backend cannot honour, before a run starts."""

    def url(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}" if rel else self.root

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise chain-head updates locally (a no-op where compare-and-swap does the job)."""
        yield


def _token(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


class DirStore(Store):
    """Evidence in a local directory (the default ``./evidence``).

    The head's compare-and-swap runs under an ``flock`` of ``.chain.lock``, so runs on one
    machine (or one NFS mount with working locks) serialise their seals.
    """

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
        tmp = p.with_name(f"{p.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)

    def write_new(self, rel: str, data: bytes) -> None:
        p = self._p(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f"{p.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        try:
            os.link(tmp, p)  # atomic create: fails if the file exists
        except FileExistsError as exc:
            raise EvidenceError(
                f"Evidence file {p} already exists; bundles are never overwritten"
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, rel: str) -> bool:
        return self._p(rel).exists()

    def list_files(self, prefix: str) -> list[str]:
        base = self._p(prefix)
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.path).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        )

    def list_bundles(self) -> list[str]:
        if not self.path.is_dir():
            return []
        found = [
            m.parent.relative_to(self.path).as_posix() for m in self.path.glob("*/*/manifest.json")
        ]
        return sorted(found, key=lambda rel: (rel.rsplit("/", 1)[-1], rel))

    def read_head(self) -> tuple[bytes | None, str | None]:
        try:
            data = self._p(CHAIN_HEAD).read_bytes()
        except FileNotFoundError:
            return None, None
        return data, _token(data)

    def put_head(self, data: bytes, token: str | None) -> bool:
        with self.lock():
            current, now = self.read_head()
            if now != token:
                return False
            self.write_bytes(CHAIN_HEAD, data)
            return True

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
    """Evidence under ``s3://bucket/prefix``, through the client that opslib.clients builds.

    With ``lock_mode`` every bundle object is written with that Object Lock mode and a
    retain-until date ``retention_days`` ahead; :meth:`check_writable` refuses a bucket
    created without Object Lock (it could not honour the lock).
    """

    def __init__(
        self,
        url: str,
        *,
        s3=None,
        lock_mode: LockMode | str | None = None,
        retention_days: int | None = None,
    ) -> None:
        rest = url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise EvidenceError(f"Not an S3 evidence location: {url!r}; use s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.lock_mode = parse_lock_mode(lock_mode)
        if retention_days is not None and retention_days < 1:
            raise BadInputError(
                f"retention_days={retention_days}: give a whole number of days >= 1."
            )
        self.retention_days = retention_days
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

    def lock_args(self) -> dict[str, object]:
        """PutObject arguments for the configured Object Lock ({} without one)."""
        if self.lock_mode is None:
            return {}
        days = self.retention_days or DEFAULT_RETENTION_DAYS
        until = _dt.datetime.now(_dt.UTC) + _dt.timedelta(days=days)
        return {"ObjectLockMode": self.lock_mode.value, "ObjectLockRetainUntilDate": until}

    def write_new(self, rel: str, data: bytes) -> None:
        import botocore.exceptions

        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self._key(rel),
                Body=data,
                IfNoneMatch="*",
                **self.lock_args(),
            )
        except botocore.exceptions.ClientError as exc:
            if aws_error_code(exc) in {"PreconditionFailed", "412"}:
                raise EvidenceError(
                    f"Evidence object {self.url(rel)} already exists; bundles are never overwritten"
                ) from exc
            raise

    def exists(self, rel: str) -> bool:
        import botocore.exceptions

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._key(rel))
            return True
        except botocore.exceptions.ClientError as exc:
            if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
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

    def read_head(self) -> tuple[bytes | None, str | None]:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self._key(CHAIN_HEAD))
        except self.s3.exceptions.NoSuchKey:
            return None, None
        return obj["Body"].read(), obj["ETag"]

    def put_head(self, data: bytes, token: str | None) -> bool:
        import botocore.exceptions

        cond = {"IfNoneMatch": "*"} if token is None else {"IfMatch": token}
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self._key(CHAIN_HEAD), Body=data, **cond)
        except botocore.exceptions.ClientError as exc:
            # 412: someone moved the head; 409: a concurrent conditional write; 404: the head
            # named by the ETag is gone. Each means "re-read and try again".
            if aws_error_code(exc) in {
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
                "409",
                "NoSuchKey",
                "404",
            }:
                return False
            raise
        return True

    def object_lock_enabled(self) -> bool:
        """Whether the bucket was created with Object Lock (its configuration says Enabled)."""
        import botocore.exceptions

        try:
            conf = self.s3.get_object_lock_configuration(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if aws_error_code(exc) == "ObjectLockConfigurationNotFoundError":
                return False
            raise
        return (conf.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"

    def check_writable(self) -> None:
        if self.lock_mode is None:
            return
        import botocore.exceptions

        try:
            enabled = self.object_lock_enabled()
        except botocore.exceptions.ClientError as exc:
            raise BadInputError(
                f"Cannot read the Object Lock configuration of bucket {self.bucket} "
                f"({aws_error_code(exc) or exc}); check the bucket name and s3:GetBucketObjectLockConfiguration."
            ) from exc
        if not enabled:
            raise BadInputError(
                f"Bucket {self.bucket} has no S3 Object Lock, so --object-lock-mode "
                f"{self.lock_mode.value} cannot be honoured. Use a bucket created with Object Lock "
                "enabled (aws s3api create-bucket --object-lock-enabled-for-bucket), or drop "
                "--object-lock-mode."
            )


def parse_lock_mode(value: LockMode | str | None) -> LockMode | None:
    """``COMPLIANCE``/``GOVERNANCE`` (any case) -> LockMode; "" or None -> None; else BadInputError."""
    if value is None or value == "":
        return None
    try:
        return LockMode(str(value).upper())
    except ValueError as exc:
        raise BadInputError(
            f"object lock mode {value!r}: use COMPLIANCE or GOVERNANCE (or leave it empty)."
        ) from exc


def open_store(
    location: str | os.PathLike[str],
    *,
    lock_mode: LockMode | str | None = None,
    retention_days: int | None = None,
) -> Store:
    """A store for a directory path or an ``s3://bucket/prefix`` URL.

    ``lock_mode``/``retention_days`` apply to S3 only (a local directory refuses them).
    """
    loc = str(location)
    if loc.startswith("s3://"):
        return S3Store(loc, lock_mode=lock_mode, retention_days=retention_days)
    if parse_lock_mode(lock_mode) is not None:
        raise BadInputError(
            f"--object-lock-mode needs an s3:// evidence dir; {loc} is a local directory."
        )
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
