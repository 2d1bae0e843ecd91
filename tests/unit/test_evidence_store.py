"""Evidence in S3 (the sandbox's moto server): write, verify, tamper, list, load_results."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest

import opslib
import opslib.runner
from opslib.cli import main
from opslib.clients import aws_client
from opslib.evidence import list_runs, load_results, verify
from opslib.evidence.bundle import write_bundle
from opslib.evidence.store import DirStore, S3Store, open_store

from .test_manifest import executed_nb

TINY = str(Path(__file__).parents[1] / "fixtures" / "notebooks" / "tiny.ipynb")
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def s3_evidence(sandbox):
    bucket = f"evidence-{uuid.uuid4().hex[:8]}"
    aws_client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/team/runs"


def write(location, n):
    start = dt.datetime(2026, 11, 23, 9, 0, n, tzinfo=dt.UTC)
    return write_bundle(
        executed_nb(n),
        runbook="demo-book",
        run_id=f"r{n}",
        started=start,
        finished=start,
        status="succeeded",
        evidence_dir=location,
        parameters={"n": n},
    )


def test_open_store_kinds(tmp_path, sandbox):
    assert isinstance(open_store(tmp_path), DirStore)
    store = open_store("s3://some-bucket/a/b/")
    assert isinstance(store, S3Store) and store.bucket == "some-bucket" and store.prefix == "a/b"


def test_s3_bundles_chain_and_verify(s3_evidence):
    b1 = write(s3_evidence, 1)
    b2 = write(s3_evidence, 2)
    assert b1.location == f"{s3_evidence}/demo-book/20261123T090001Z_r1"
    assert b2.manifest["previous_bundle"] == "demo-book/20261123T090001Z_r1"
    assert verify(b1.location).ok and verify(b2.location).ok
    assert verify(s3_evidence).ok
    assert main(["evidence", "verify", b2.location]) == 0

    rows = list_runs(s3_evidence)
    assert [r["key_results"] for r in rows] == ["n=1", "n=2"]
    df = load_results(s3_evidence)
    assert list(df["n"]) == [1, 2]


def test_s3_tamper_named(s3_evidence):
    b = write(s3_evidence, 3)
    store = open_store(s3_evidence)
    rel = b.location[len(s3_evidence) + 1 :]
    data = bytearray(store.read_bytes(f"{rel}/record.json"))
    data[10] ^= 1
    store.write_bytes(f"{rel}/record.json", bytes(data))
    res = verify(b.location)
    assert not res.ok and res.first_bad == "record.json"
    assert main(["evidence", "verify", b.location]) == 1


def test_run_writes_bundle_to_s3(s3_evidence):
    r = opslib.run(TINY, {"count": 1}, evidence_dir=s3_evidence)
    assert r.status == "succeeded"
    assert r.bundle.startswith(f"{s3_evidence}/tiny/")
    assert verify(r.bundle).ok
    keys = open_store(s3_evidence).list_files(r.bundle[len(s3_evidence) + 1 :])
    assert {k.rsplit("/", 1)[-1] for k in keys} >= {
        "tiny.ipynb",
        "tiny.html",
        "record.json",
        "manifest.json",
    }


def test_unwritable_s3_store_keeps_bundle_locally(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = opslib.run(TINY, {"count": 1}, evidence_dir=f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/p")
    assert r.status == "succeeded"
    assert Path(r.bundle).resolve().parent.parent == (tmp_path / "evidence").resolve()
    assert "could not write" in r.record["evidence_store_error"]
    assert verify(r.bundle).ok


# --------------------------------------------------------------------------- locked, one chain


def _seal_one(location: str, n: int, start_at: float) -> str:
    """One bundle written by its own process, all starting at the same instant (contention)."""
    import time

    time.sleep(max(0.0, start_at - time.time()))
    return write(location, n).location


def test_parallel_runs_on_one_prefix_form_one_linear_chain(s3_evidence):
    """8 processes seal into one S3 prefix at once: the conditional head gives one chain of 8."""
    import time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    start_at = time.time() + 2.0
    with ProcessPoolExecutor(8, mp_context=get_context("spawn")) as pool:
        locs = list(pool.map(_seal_one, [s3_evidence] * 8, range(1, 9), [start_at] * 8))
    assert len(set(locs)) == 8
    res = verify(s3_evidence)
    assert res.ok, str(res)
    assert "chain of 8" in " ".join(res.notes)
    from opslib.evidence.manifest import chain_order

    order = chain_order(open_store(s3_evidence))
    assert sorted(order) == sorted(loc[len(s3_evidence) + 1 :] for loc in locs)
    store = open_store(s3_evidence)
    seqs = [json.loads(store.read_bytes(f"{b}/manifest.json"))["sequence"] for b in order]
    assert seqs == list(range(1, 9))


@pytest.fixture
def locked_bucket(sandbox):
    bucket = f"locked-{uuid.uuid4().hex[:8]}"
    aws_client("s3").create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    return bucket


def test_locked_bundle_cannot_be_deleted_or_overwritten(locked_bucket):
    import botocore.exceptions

    from opslib.core.errors import EvidenceError

    store = S3Store(f"s3://{locked_bucket}/runs", lock_mode="COMPLIANCE", retention_days=1)
    store.check_writable()
    b = write(store, 1)
    rel = b.location.split("/runs/", 1)[1]
    s3 = aws_client("s3")
    key = f"runs/{rel}/record.json"
    head = s3.head_object(Bucket=locked_bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"]
    # the store never overwrites a bundle object
    with pytest.raises(EvidenceError, match="never overwritten"):
        store.write_new(f"{rel}/record.json", b"{}")
    # nobody deletes the locked version, not even with the governance bypass
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.delete_object(
            Bucket=locked_bucket,
            Key=key,
            VersionId=head["VersionId"],
            BypassGovernanceRetention=True,
        )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # a raw PUT over the key only adds a newer version: the sealed one stays, verify names it
    s3.put_object(Bucket=locked_bucket, Key=key, Body=b'{"status": "succeeded"}')
    res = verify(b.location)
    assert not res.ok and res.first_bad == "record.json"
    original = s3.get_object(Bucket=locked_bucket, Key=key, VersionId=head["VersionId"])
    assert json.loads(original["Body"].read())["run_id"] == "r1"


def test_governance_lock_is_recorded(locked_bucket):
    store = S3Store(f"s3://{locked_bucket}/g", lock_mode="governance", retention_days=2)
    b = write(store, 2)
    rel = b.location.split("/g/", 1)[1]
    head = aws_client("s3").head_object(Bucket=locked_bucket, Key=f"g/{rel}/manifest.json")
    assert head["ObjectLockMode"] == "GOVERNANCE"


def test_lock_mode_on_bucket_without_object_lock_refused_exit_2(s3_evidence, monkeypatch, capsys):
    from opslib.core.errors import BadInputError

    with pytest.raises(BadInputError, match="no S3 Object Lock"):
        opslib.runner.run(
            TINY, {"count": 1}, evidence_dir=s3_evidence, object_lock_mode="COMPLIANCE"
        )
    monkeypatch.setenv("OPSLIB_OBJECT_LOCK_MODE", "COMPLIANCE")
    assert main(["run", TINY, "--evidence-dir", s3_evidence]) == 2
    assert "Object Lock" in capsys.readouterr().err
    assert open_store(s3_evidence).list_bundles() == []


def test_lock_mode_refused_for_local_dir_and_bad_mode(tmp_path):
    from opslib.core.errors import BadInputError

    with pytest.raises(BadInputError, match="s3://"):
        open_store(tmp_path, lock_mode="COMPLIANCE")
    with pytest.raises(BadInputError, match="COMPLIANCE or GOVERNANCE"):
        open_store("s3://b/p", lock_mode="forever")


def test_run_into_locked_bucket_records_the_lock(locked_bucket):
    loc = f"s3://{locked_bucket}/runs"
    r = opslib.runner.run(
        TINY, {"count": 1}, evidence_dir=loc, object_lock_mode="COMPLIANCE", retention_days=3
    )
    assert r.status == "succeeded", r.record.get("error")
    assert r.record["object_lock"] == {"mode": "COMPLIANCE", "retention_days": 3}
    assert verify(r.bundle).ok
    rel = r.bundle.split("/runs/", 1)[1]
    head = aws_client("s3").head_object(Bucket=locked_bucket, Key=f"runs/{rel}/tiny.ipynb")
    assert head["ObjectLockMode"] == "COMPLIANCE"
