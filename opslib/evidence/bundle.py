"""Write one evidence bundle: executed notebook, HTML, record.json, attachments, manifest.

``EVIDENCE_DIR/RUNBOOK/YYYYmmddTHHMMSSZ_RUNID/`` holds ``RUNBOOK.ipynb``, ``RUNBOOK.html``,
``record.json``, ``attachments/*`` and ``manifest.json`` (see DESIGN.md, "Evidence bundle").
:func:`write_bundle` takes an executed notebook object plus run metadata and nothing about
how it was executed, so the headless runner and interactive capture share it. Every artifact
goes through the run's :class:`~opslib.evidence.redact.Redactor` before it is written.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opslib.evidence.recorder import harvest, to_jsonable
from opslib.evidence.redact import Redactor
from opslib.evidence.store import Store, open_store

_EXPORTER: Any = None
_EXPORTER_LOCK = threading.Lock()


def html_exporter():
    """A shared nbconvert HTMLExporter (lab template, images embedded, no CDN needed to read).

    Built once per process: template loading is most of the export cost. :func:`warm_up` builds
    it in a background thread while the kernel runs.
    """
    global _EXPORTER
    with _EXPORTER_LOCK:
        if _EXPORTER is None:
            from nbconvert import HTMLExporter

            exp = HTMLExporter(template_name="lab", embed_images=True)
            exp.exclude_input_prompt = False
            # The evidence must read offline: do not pull MathJax/require.js from a CDN.
            exp.mathjax_url = ""
            exp.require_js_url = ""
            exp.widget_renderer_url = ""
            _EXPORTER = exp
        return _EXPORTER


def warm_up() -> threading.Thread:
    """Import nbconvert and load the HTML template off the critical path."""
    t = threading.Thread(target=html_exporter, name="opslib-html-warmup", daemon=True)
    t.start()
    return t


def render_html(nb: Any) -> str:
    import nbformat

    body, _ = html_exporter().from_notebook_node(nbformat.from_dict(nb))
    return body


def utc_stamp(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def utc_iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def git_commit(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Commit of the repo holding ``path`` and whether ``path`` differs from it ({} outside git)."""
    d = Path(path)
    d = d if d.is_dir() else d.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(d), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return {}
        dirty = subprocess.run(
            ["git", "-C", str(d), "status", "--porcelain", "--", str(path)],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired):
        return {}


def operator_info(*, caller_arn: bool = True) -> dict[str, str]:
    """Who ran it: OS user and, when STS answers quickly, the AWS caller ARN."""
    info = {"os_user": os_user(), "aws_caller_arn": ""}
    if caller_arn:
        from opslib.clients import aws_caller_arn

        info["aws_caller_arn"] = aws_caller_arn()
    return info


@dataclass(frozen=True)
class Bundle:
    """A written bundle: where it is and what its record says."""

    location: str
    record: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def html(self) -> str:
        return f"{self.location}/{self.record['runbook']}.html"


def find_error(nb: Any) -> dict[str, Any] | None:
    """The first error output of the notebook: name, value, failing cell index and source."""
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                src = cell.get("source", "")
                return {
                    "ename": out.get("ename", ""),
                    "evalue": out.get("evalue", ""),
                    "cell_index": index,
                    "execution_count": cell.get("execution_count"),
                    "cell_source": src if isinstance(src, str) else "".join(src),
                }
    return None


def write_bundle(
    nb: Any,
    *,
    runbook: str,
    run_id: str,
    started: _dt.datetime,
    finished: _dt.datetime,
    status: str,
    evidence_dir: str | os.PathLike[str] | Store = "evidence",
    parameters: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    operator: dict[str, str] | None = None,
    notebook_path: str = "",
    git: dict[str, Any] | None = None,
    attachments_dir: str | os.PathLike[str] | None = None,
    redactor: Redactor | None = None,
    extra: dict[str, Any] | None = None,
) -> Bundle:
    """Redact and write the bundle for an executed (or partially executed) notebook.

    ``nb`` is a notebook dict/NotebookNode; results, approvals and changes are harvested from
    its outputs and also stored in ``metadata.opslib``. ``attachments_dir`` files are copied
    (redacted) under ``attachments/``. Returns the :class:`Bundle` with its location.
    """
    import opslib

    store = evidence_dir if isinstance(evidence_dir, Store) else open_store(evidence_dir)
    red = redactor or Redactor()
    bundle = f"{runbook}/{utc_stamp(started)}_{run_id}"

    harvested = harvest(nb)
    nb = red.obj(nb)
    nb.setdefault("metadata", {})["opslib"] = red.obj(
        {
            "runbook": runbook,
            "run_id": run_id,
            "status": status,
            "results": harvested["results"],
            "approvals": harvested["approvals"],
            "changes": harvested["changes"],
        }
    )
    if error is None and status != "succeeded":
        error = find_error(nb)
    files: dict[str, bytes] = {}
    attachments = []
    if attachments_dir is not None:
        adir = Path(attachments_dir)
        if adir.is_dir():
            for p in sorted(adir.iterdir()):
                if p.is_file():
                    files[f"attachments/{p.name}"] = red.bytes(p.read_bytes())
                    attachments.append(p.name)
    record = {
        "runbook": runbook,
        "run_id": run_id,
        "notebook": notebook_path,
        "parameters": to_jsonable(parameters or {}),
        "started": utc_iso(started),
        "finished": utc_iso(finished),
        "duration_seconds": round((finished - started).total_seconds(), 3),
        "status": status,
        "error": error,
        "operator": operator or {"os_user": os_user(), "aws_caller_arn": ""},
        "opslib_version": opslib.__version__,
        "notebooks_commit": (git or {}).get("commit", ""),
        "notebook_modified_since_commit": (git or {}).get("dirty"),
        "approvals": harvested["approvals"],
        "changes": harvested["changes"],
        "results": harvested["results"],
        "attachments": attachments,
        **(extra or {}),
    }
    record = red.obj(record)
    import nbformat

    node = nbformat.from_dict(nb)
    files[f"{runbook}.ipynb"] = nbformat.writes(node).encode("utf-8")
    files[f"{runbook}.html"] = red.text(render_html(node)).encode("utf-8")
    files["record.json"] = (
        json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n"
    ).encode("utf-8")
    from opslib.evidence.manifest import seal

    manifest = seal(store, bundle, files)
    return Bundle(store.url(bundle), record, manifest)
