"""Evidence in S3 (the sandbox's moto server): write, verify, tamper, list, load_results."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

import opslib
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
