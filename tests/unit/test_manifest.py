"""Manifest + hash chain: any changed byte is named by verify; the chain links runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from opslib.cli import main
from opslib.core.recorder import RESULT_MIME
from opslib.evidence.bundle import write_bundle
from opslib.evidence.manifest import MANIFEST, canonical, sha256, verify


def executed_nb(n: int = 1):
    cell = new_code_cell("opslib.record('n', n)", execution_count=1)
    cell.outputs = [
        new_output("stream", name="stdout", text=f"hello {n}\n"),
        new_output(
            "display_data", data={RESULT_MIME: {"name": "n", "value": n}, "text/plain": f"n={n}"}
        ),
    ]
    return new_notebook(cells=[cell])


def make_bundle(evidence, n: int = 1, tmp_path=None, second: int = 0):
    attach = None
    if tmp_path is not None:
        attach = tmp_path / f"att{n}"
        attach.mkdir()
        (attach / "journal.txt").write_text(f"journal {n}\n")
    start = dt.datetime(2026, 11, 23, 10, 0, second, tzinfo=dt.UTC)
    return write_bundle(
        executed_nb(n),
        runbook="demo-book",
        run_id=f"run{n}",
        started=start,
        finished=start + dt.timedelta(seconds=2),
        status="succeeded",
        evidence_dir=evidence,
        parameters={"n": n},
        attachments_dir=attach,
    )


@pytest.fixture
def two_bundles(evidence_dir, tmp_path):
    b1 = make_bundle(evidence_dir, 1, tmp_path, second=0)
    b2 = make_bundle(evidence_dir, 2, tmp_path, second=1)
    return b1, b2


def test_layout_and_intact_verify(two_bundles, evidence_dir):
    b1, b2 = two_bundles
    assert b1.location.endswith("demo-book/20261123T100000Z_run1")
    files = sorted(
        p.relative_to(b1.location).as_posix() for p in Path(b1.location).rglob("*") if p.is_file()
    )
    assert files == [
        "attachments/journal.txt",
        "demo-book.html",
        "demo-book.ipynb",
        MANIFEST,
        "record.json",
    ]
    res = verify(b2.location)
    assert res.ok, str(res)
    assert any("chain link" in n for n in res.notes)
    assert verify(str(evidence_dir)).ok


def test_chain_links_previous_manifest(two_bundles, evidence_dir):
    b1, b2 = two_bundles
    assert b1.manifest["previous"] is None
    first = (evidence_dir / "demo-book/20261123T100000Z_run1" / MANIFEST).read_bytes()
    assert b2.manifest["previous"] == sha256(first)
    assert b2.manifest["previous_bundle"] == "demo-book/20261123T100000Z_run1"
    head = json.loads((evidence_dir / ".chain-head").read_text())
    assert head["bundle"] == "demo-book/20261123T100001Z_run2"


@pytest.mark.parametrize(
    "name",
    ["demo-book.ipynb", "demo-book.html", "record.json", "attachments/journal.txt", MANIFEST],
)
@pytest.mark.parametrize("where", [0, -2])
def test_one_byte_changed_is_named(two_bundles, name, where):
    _, b2 = two_bundles
    path = Path(b2.location) / name
    data = bytearray(path.read_bytes())
    data[where] = (data[where] + 1) % 256
    path.write_bytes(bytes(data))
    res = verify(b2.location)
    assert not res.ok
    assert res.first_bad == name, str(res)
    assert main(["evidence", "verify", b2.location]) == 1


def test_missing_and_added_files(two_bundles):
    _, b2 = two_bundles
    base = Path(b2.location)
    (base / "extra.txt").write_text("added later")
    res = verify(b2.location)
    assert not res.ok and res.first_bad == "extra.txt"
    (base / "extra.txt").unlink()
    (base / "record.json").unlink()
    res = verify(b2.location)
    assert not res.ok and res.first_bad == "record.json"


def test_rewritten_previous_bundle_breaks_chain(two_bundles, evidence_dir):
    """An attacker edits run 1 and re-seals its manifest: run 1 alone looks fine, the chain does not."""
    b1, b2 = two_bundles
    base = Path(b1.location)
    rec = json.loads((base / "record.json").read_text())
    rec["status"] = "failed"
    data = (json.dumps(rec) + "\n").encode()
    (base / "record.json").write_bytes(data)
    manifest = json.loads((base / MANIFEST).read_text())
    manifest["files"]["record.json"] = sha256(data)
    (base / MANIFEST).write_bytes(canonical(manifest))
    assert verify(b1.location).ok  # self-consistent ...
    res = verify(b2.location)  # ... but the next run's link no longer matches
    assert not res.ok
    assert res.first_bad == MANIFEST and "chain broken" in str(res)
    assert not verify(str(evidence_dir)).ok


def test_head_mismatch_detected(two_bundles, evidence_dir):
    _, b2 = two_bundles
    head = json.loads((evidence_dir / ".chain-head").read_text())
    head["manifest_sha256"] = "0" * 64
    (evidence_dir / ".chain-head").write_bytes(canonical(head))
    res = verify(b2.location)
    assert not res.ok and "chain head" in str(res)


def test_deleted_bundle_breaks_dir_chain(two_bundles, evidence_dir):
    import shutil

    b1, _ = two_bundles
    shutil.rmtree(b1.location)
    res = verify(str(evidence_dir))
    assert not res.ok and "missing" in str(res)


def test_notebook_metadata_holds_results(two_bundles):
    _, b2 = two_bundles
    nb = nbformat.read(Path(b2.location) / "demo-book.ipynb", as_version=4)
    assert nb.metadata.opslib.results == {"n": 2}
    assert b2.record["results"] == {"n": 2}


PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def test_html_has_plots_inline_and_no_cdn(evidence_dir):
    nb = executed_nb(1)
    nb.cells[0].outputs.append(
        new_output("display_data", data={"image/png": PNG_1PX, "text/plain": "<Figure>"})
    )
    start = dt.datetime(2026, 11, 23, 11, 0, 0, tzinfo=dt.UTC)
    b = write_bundle(
        nb,
        runbook="plot",
        run_id="p1",
        started=start,
        finished=start,
        status="succeeded",
        evidence_dir=evidence_dir,
    )
    html = (Path(b.location) / "plot.html").read_text()
    assert f"data:image/png;base64,{PNG_1PX}" in html
    assert "<title>plot</title>" in html
    assert '<script src=""' not in html and '<script src="http' not in html
    assert verify(b.location).ok


def test_huge_output_becomes_an_attachment_referenced_by_hash(evidence_dir):
    cell = new_code_cell("print(table)", execution_count=1)
    big = "row\n" * 200_000  # 800 kB of output
    cell.outputs = [
        new_output("stream", name="stdout", text=big),
        new_output(
            "display_data",
            data={RESULT_MIME: {"name": "rows", "value": 200000}, "text/plain": "rows"},
        ),
    ]
    start = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.UTC)
    b = write_bundle(
        new_notebook(cells=[cell]),
        runbook="big",
        run_id="b1",
        started=start,
        finished=start,
        status="succeeded",
        evidence_dir=evidence_dir,
        max_output_mb=0.5,
    )
    [moved] = b.record["outputs_moved"]
    att = Path(b.location) / moved["attachment"]
    assert json.loads(att.read_text())["text"] == big
    assert sha256(att.read_bytes()) == moved["sha256"]
    assert b.manifest["files"][moved["attachment"]] == moved["sha256"]
    nb = (Path(b.location) / "big.ipynb").read_text()
    html = (Path(b.location) / "big.html").read_text()
    assert len(nb) < 50_000 and len(html) < 1_000_000
    assert moved["attachment"] in nb and moved["attachment"] in html
    assert b.record["results"] == {"rows": 200000}  # records are never moved out
    assert verify(b.location).ok
