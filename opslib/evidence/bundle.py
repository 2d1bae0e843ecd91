"""Write one evidence bundle: executed notebook, HTML, record.json, attachments, manifest.

``EVIDENCE_DIR/RUNBOOK/YYYYmmddTHHMMSSZ_RUNID/`` holds ``RUNBOOK.ipynb``, ``RUNBOOK.html``,
``record.json``, ``attachments/*`` and ``manifest.json`` (see DESIGN.md, "Evidence bundle").
:func:`write_bundle` takes an executed notebook object plus run metadata and nothing about
how it was executed, so the headless runner and interactive capture share it. Every artifact
goes through the run's :class:`~opslib.core.redact.Redactor` before it is written.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opslib.clients import aws_caller_arn
from opslib.core.recorder import harvest, to_jsonable
from opslib.core.redact import Redactor
from opslib.core.version import __version__
from opslib.evidence import signing
from opslib.evidence.manifest import seal
from opslib.evidence.record import RunRecord
from opslib.evidence.store import Store, open_store

#: Default bound on one cell output (``--max-output-mb``): bigger outputs become attachments.
MAX_OUTPUT_MB = 20.0
#: Outputs carrying these MIME types are the run's records and are never moved out.
_KEEP_MIMES = ("application/vnd.opslib.",)

_EXPORTER: Any = None
_EXPORTER_LOCK = threading.Lock()


def _exporter_class():
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class EvidenceHTMLExporter(HTMLExporter):
        """HTMLExporter minus its BeautifulSoup pass (alt text and tabindex attributes).

        That pass re-parses the whole page and compiles CSS selectors: about a third of a
        second per process, for accessibility niceties an evidence page can do without.
        """

        def from_notebook_node(self, nb, resources=None, **kw):
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight_code = self.filters.get(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)
            )
            resources = self._init_resources(resources)
            filter_data_type = WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources
            )
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", filter_data_type)
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return EvidenceHTMLExporter


def _jinja_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "opslib" / "jinja"


def html_exporter():
    """A shared HTML exporter (lab template, images embedded, readable offline).

    Built once per process; compiled templates are cached on disk across processes. The runner
    calls :func:`warm_up` so the build and the first (slow) render happen while the kernel runs.
    """
    global _EXPORTER
    with _EXPORTER_LOCK:
        if _EXPORTER is None:
            try:
                exp = _exporter_class()(template_name="lab", embed_images=True)
            except ImportError:  # a future nbconvert moved the internals: use the stock exporter
                from nbconvert import HTMLExporter

                exp = HTMLExporter(template_name="lab", embed_images=True)
            # The evidence must read offline: do not pull MathJax/require.js from a CDN.
            exp.mathjax_url = ""
            exp.require_js_url = ""
            exp.widget_renderer_url = ""
            try:
                import jinja2

                cache = _jinja_cache_dir()
                cache.mkdir(parents=True, exist_ok=True)
                exp.environment.bytecode_cache = jinja2.FileSystemBytecodeCache(str(cache))
            except OSError:  # read-only home: templates are simply compiled each time
                exp.environment.bytecode_cache = None
            _EXPORTER = exp
        return _EXPORTER


def _warm() -> None:
    """Build the exporter and render a tiny notebook: the first render compiles the templates
    and imports the markdown/highlighting modules, which costs far more than a render."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    cell = new_code_cell("print(1)", execution_count=1)
    cell.outputs = [
        new_output("stream", name="stdout", text="1\n"),
        new_output("display_data", data={"text/plain": "x", "text/html": "<b>x</b>"}),
        new_output("error", ename="E", evalue="e", traceback=["\x1b[0;31mE\x1b[0m: e"]),
    ]
    nb = new_notebook(cells=[new_markdown_cell("# t\n\n*a* `b`"), cell])
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    html_exporter().from_notebook_node(nbformat.from_dict(nb))


def warm_up() -> threading.Thread:
    """Prepare the HTML export off the critical path (the runner calls it while the kernel runs)."""
    t = threading.Thread(target=_warm, name="opslib-html-warmup", daemon=True)
    t.start()
    return t


_EMPTY_SCRIPT = re.compile(r'<script src="">\s*</script>\n?')


def render_html(nb: Any, title: str = "") -> str:
    """The notebook as one self-contained HTML page (CSS inline, images as data: URIs)."""
    import nbformat

    resources = {"metadata": {"name": title}} if title else None
    body, _ = html_exporter().from_notebook_node(nbformat.from_dict(nb), resources=resources)
    # CDN URLs were blanked above; drop the empty script tags they leave behind.
    return _EMPTY_SCRIPT.sub("", body)


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
        info["aws_caller_arn"] = aws_caller_arn()
    return info


@dataclass(frozen=True)
class Bundle:
    """A written bundle: where it is and what its record says."""

    location: str
    record: RunRecord
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


def _is_record_output(out: Any) -> bool:
    return any(str(k).startswith(_KEEP_MIMES) for k in (out.get("data") or {}))


def bound_outputs(nb: Any, max_bytes: int) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """Move every cell output bigger than ``max_bytes`` (as JSON) out of ``nb`` into attachments.

    A runbook that prints a huge table must not make an unreadable notebook or HTML page: the
    output is stored whole as ``attachments/output-<sha12>.json`` (hashed into the manifest like
    any file) and replaced in place by a line saying where it is. Mutates ``nb``; returns
    (what was moved, attachment name -> bytes).
    """
    moved: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    if max_bytes <= 0:
        return moved, files
    for index, cell in enumerate(nb.get("cells", [])):
        outs = cell.get("outputs") or []
        for j, out in enumerate(outs):
            if _is_record_output(out):
                continue
            data = json.dumps(out, ensure_ascii=False, sort_keys=True).encode("utf-8")
            if len(data) <= max_bytes:
                continue
            digest = hashlib.sha256(data).hexdigest()
            name = f"output-{digest[:12]}.json"
            files[f"attachments/{name}"] = data
            mb = len(data) / 1e6
            outs[j] = {
                "output_type": "stream",
                "name": "stdout",
                "text": (
                    f"[opslib] This output ({mb:.1f} MB) is over the bound of "
                    f"{max_bytes / 1e6:g} MB, so it is not shown here. The whole output is in "
                    f"this bundle as attachments/{name} (sha256 {digest}), listed in "
                    "manifest.json.\n"
                ),
            }
            moved.append(
                {
                    "cell_index": index,
                    "attachment": f"attachments/{name}",
                    "bytes": len(data),
                    "sha256": digest,
                }
            )
    return moved, files


#: record.json's own top-level fields (the runner's and recovery's extras included): a caller's
#: extra field (``runner.run(extra=...)``) may not take one of these names.
RECORD_FIELDS = frozenset(
    {
        "runbook", "run_id", "notebook", "parameters", "started", "finished",
        "duration_seconds", "status", "error", "operator", "opslib_version",
        "notebooks_commit", "notebook_modified_since_commit", "approvals", "changes",
        "plans", "results", "attachments", "outputs_moved", "exit_code",
        "parameters_given", "sandbox", "approves_bundle", "approval_grant", "object_lock",
        "evidence_store_error", "recovered",
    }
)  # fmt: skip


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
    signer: signing.Signer | None | bool = True,
    max_output_mb: float | None = None,
) -> Bundle:
    """Redact and write the bundle for an executed (or partially executed) notebook.

    ``nb`` is a notebook dict/NotebookNode; results, approvals and changes are harvested from
    its outputs and also stored in ``metadata.opslib``. ``attachments_dir`` files are copied
    (redacted) under ``attachments/``. Outputs over ``max_output_mb`` (default
    :data:`MAX_OUTPUT_MB`) become attachments (see :func:`bound_outputs`). ``signer``: True
    signs with ``OPSLIB_SIGNING_KEY`` when it is set, a :class:`~opslib.evidence.signing.Signer`
    signs with that key, False/None does not sign. Returns the :class:`Bundle` with its location.
    """
    if signer is True:
        signer = signing.signer_from_env()
    elif signer is False:
        signer = None
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
            "plans": harvested["plans"],
        }
    )
    if error is None and status != "succeeded":
        error = find_error(nb)
    bound = MAX_OUTPUT_MB if max_output_mb is None else float(max_output_mb)
    moved, files = bound_outputs(nb, int(bound * 1e6))
    attachments = [name.split("/", 1)[1] for name in files]
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
        "opslib_version": __version__,
        "notebooks_commit": (git or {}).get("commit", ""),
        "notebook_modified_since_commit": (git or {}).get("dirty"),
        "approvals": harvested["approvals"],
        "changes": harvested["changes"],
        "plans": harvested["plans"],
        "results": harvested["results"],
        "attachments": attachments,
        **({"outputs_moved": moved} if moved else {}),
        **(extra or {}),
    }
    record = red.obj(record)
    import nbformat

    node = nbformat.from_dict(nb)
    files[f"{runbook}.ipynb"] = nbformat.writes(node).encode("utf-8")
    files[f"{runbook}.html"] = red.text(render_html(node, title=runbook)).encode("utf-8")
    files["record.json"] = (
        json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n"
    ).encode("utf-8")

    manifest = seal(store, bundle, files, signer=signer or None)
    return Bundle(store.url(bundle), RunRecord(record), manifest)
