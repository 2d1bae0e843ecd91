"""Interactive evidence capture without a browser: widget snapshots, session records, the bundle.

The front-end save and the JupyterLab side are covered by tests/browser; here the capture runs
on a notebook file (``save=False``) with live ipywidgets in this process, and the bundle is
written by the platform's writer and verified.
"""

from __future__ import annotations

import json
import socket

import ipywidgets as w
import nbformat
import pytest

from opslib import capture, interactive
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.recorder import APPROVAL_MIME, CHANGE_MIME, SESSION
from opslib.evidence import verify

WIDGET = capture.WIDGET_VIEW_MIME


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    # the operator lookup asks STS for the caller ARN: point it at a closed loopback port so it
    # fails at once instead of waiting on the network
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    SESSION.reset()
    interactive._PENDING.clear()
    interactive._PANELS.clear()
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    yield
    SESSION.reset()


def _view(widget) -> dict:
    return {
        "output_type": "display_data",
        "data": {WIDGET: {"model_id": widget.model_id, "version_major": 2}, "text/plain": "VBox()"},
        "metadata": {},
    }


def _notebook(tmp_path, outputs_by_cell):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell(
        'bucket: str = "b1"  # bucket\ndry_run: bool = False  # plan only'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo capture\n\nA test runbook."), params]
    for i, outs in enumerate(outputs_by_cell):
        cell = nbformat.v4.new_code_cell(f"step_{i}()")
        cell.outputs = [nbformat.from_dict(o) for o in outs]
        cell.execution_count = i + 1
        nb.cells.append(cell)
    path = tmp_path / "demo_capture.ipynb"
    nbformat.write(nb, path)
    return path


def test_widget_snapshots_are_static_and_readable():
    out = w.Output()
    out.outputs = ({"output_type": "stream", "name": "stdout", "text": "moved 500\n"},)
    bar = w.HBox([w.HTML("redrive: 100%"), w.FloatProgress(value=5, max=5), w.HTML("5/5")])
    box = w.VBox(
        [
            w.HBox([w.Button(description="Approve and apply", disabled=True)]),
            w.HTML("<b>done</b>"),
            out,
        ]
    )
    outs = capture.static_outputs([_view(box), _view(bar)])
    text = json.dumps(outs)
    assert WIDGET not in text
    assert "[Approve and apply] (disabled)" in text and "moved 500" in text and "done" in text
    assert "redrive: 100% 5/5" in text and "<progress" in text


def test_widget_from_an_earlier_kernel_keeps_its_text_only():
    gone = {
        "output_type": "display_data",
        "data": {WIDGET: {"model_id": "no-such-model"}, "text/plain": "VBox(children=...)"},
        "metadata": {},
    }
    (out,) = capture.static_outputs([gone])
    assert out["data"] == {"text/plain": "VBox(children=...)"}


def test_capture_writes_a_verified_bundle_with_the_click_approval(tmp_path, monkeypatch):
    monkeypatch.delenv("OPSLIB_HEADLESS", raising=False)
    monkeypatch.setattr("opslib.core.runtime.is_headless", lambda: False)
    monkeypatch.setenv("JUPYTERHUB_USER", "oncall-bob")
    monkeypatch.setenv("OPSLIB_RUN_DIR", str(tmp_path / "run"))
    plan = Plan("create bucket", (Change("s3:CreateBucket", "b1", "new bucket"),))
    panel = interactive.approval_buttons(
        plan,
        change_ticket="CHG-9",
        execute=lambda c: ChangeOutcome(c.action, c.target, ChangeStatus.APPLIED, "created"),
    )
    panel.approve_button.click()
    # outside a kernel nothing syncs the Output widget, so the approval and change exist only in
    # SESSION: the capture must add them to the bundle
    path = _notebook(
        tmp_path,
        [[_view(panel.widget)], [{"output_type": "stream", "name": "stdout", "text": "ok\n"}]],
    )
    evidence = tmp_path / "evidence"
    bundle = capture.capture_now(evidence, notebook_path=path, save=False)
    assert verify(bundle.location).ok
    rec = bundle.record
    assert rec["runbook"] == "demo-capture" and rec["mode"] == "interactive"
    assert rec["status"] == "succeeded" and rec["exit_code"] == 0
    assert rec["parameters"] == {"bucket": "b1", "dry_run": False}
    (approval,) = rec["approvals"]
    assert approval["approver"] == "oncall-bob" and approval["via"] == "button"
    assert approval["change_ticket"] == "CHG-9" and approval["plan_hash"] == plan.digest()
    assert [c["status"] for c in rec["changes"]] == ["applied"]
    assert rec["operator"]["jupyterhub_user"] == "oncall-bob"
    saved = (tmp_path / "evidence").rglob("demo-capture.ipynb")
    nb_text = next(saved).read_text()
    assert WIDGET not in nb_text and APPROVAL_MIME in nb_text and CHANGE_MIME in nb_text
    assert "Evidence captured from the interactive JupyterLab session by oncall-bob" in nb_text

    # a second capture chains to the first and does not duplicate records already in the outputs
    second = capture.capture_now(evidence, notebook_path=path, save=False)
    assert second.manifest["previous_bundle"] == bundle.manifest["bundle"]
    assert len(second.record["approvals"]) == 1
    assert verify(str(evidence)).ok


def test_records_already_in_the_outputs_are_not_added_twice(tmp_path):
    SESSION.approvals.append(
        {"approver": "a", "plan_hash": "h", "approved_at": "t", "via": "button"}
    )
    SESSION.changes.append(
        {"action": "x", "target": "y", "status": "applied", "data": {"rate": 17.0}}
    )
    outs = [
        {
            "output_type": "display_data",
            "data": {APPROVAL_MIME: SESSION.approvals[0]},
            "metadata": {},
        },
        # the front end sends numbers back through JavaScript: 17.0 arrives as 17
        {
            "output_type": "display_data",
            "data": {CHANGE_MIME: {**SESSION.changes[0], "data": {"rate": 17}}},
            "metadata": {},
        },
    ]
    nb = nbformat.read(_notebook(tmp_path, [outs]), as_version=4)
    assert capture._records_missing(nb) == []


def test_failed_cell_makes_the_capture_status_failed(tmp_path):
    err = {
        "output_type": "error",
        "ename": "ValueError",
        "evalue": "bad",
        "traceback": ["ValueError: bad"],
    }
    refused = {"output_type": "error", "ename": "PreflightError", "evalue": "no", "traceback": []}
    b1 = capture.capture_now(
        tmp_path / "ev", notebook_path=_notebook(tmp_path, [[err]]), save=False
    )
    assert b1.record["status"] == "failed" and b1.record["error"]["ename"] == "ValueError"
    b2 = capture.capture_now(
        tmp_path / "ev", notebook_path=_notebook(tmp_path, [[refused]]), save=False
    )
    assert b2.record["status"] == "refused" and b2.record["exit_code"] == 2


def test_headless_capture_does_nothing(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("OPSLIB_HEADLESS", "1")
    assert capture.capture_evidence(tmp_path / "ev") is None
    assert "Headless run" in capsys.readouterr().out
    assert not (tmp_path / "ev").exists()


def test_without_a_jupyter_session_it_says_what_to_pass(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    from opslib.core.errors import EvidenceError

    with pytest.raises(EvidenceError, match="notebook_path="):
        capture.find_notebook()


def test_default_evidence_dir_is_beside_notebooks(tmp_path, monkeypatch):
    monkeypatch.delenv(capture.EVIDENCE_DIR_ENV, raising=False)
    nb = tmp_path / "repo" / "notebooks" / "x.ipynb"
    assert capture.default_evidence_dir(nb) == str((tmp_path / "repo" / "evidence").resolve())
    monkeypatch.setenv(capture.EVIDENCE_DIR_ENV, "/somewhere")
    assert capture.default_evidence_dir(nb) == "/somewhere"


def test_captured_bundle_is_redacted(tmp_path, monkeypatch):
    secret = "s3cr3t-value-0123456789"
    monkeypatch.setenv("PAYMENTS_API_TOKEN", secret)
    SESSION.results["leaky"] = f"token={secret}"
    leak = {"output_type": "stream", "name": "stdout", "text": f"connecting with {secret}\n"}
    bundle = capture.capture_now(
        tmp_path / "ev", notebook_path=_notebook(tmp_path, [[leak]]), save=False
    )
    for f in (tmp_path / "ev").rglob("*"):
        if f.is_file():
            assert secret not in f.read_text(errors="replace"), f
    assert "[REDACTED]" in json.dumps(bundle.record["results"])
    assert verify(bundle.location).ok


def test_secrets_registered_at_run_time_are_redacted(tmp_path):
    from opslib.core.redact import register_secret

    fetched = register_secret("fetched-db-password-9876543210")
    leak = {"output_type": "stream", "name": "stdout", "text": f"rotated to {fetched}\n"}
    capture.capture_now(tmp_path / "ev", notebook_path=_notebook(tmp_path, [[leak]]), save=False)
    for f in (tmp_path / "ev").rglob("*"):
        if f.is_file():
            assert fetched not in f.read_text(errors="replace"), f
