"""The shape every runbook and module keeps: layers (import-linter), no import cycles, thin
notebooks that import only their flow, modules under 800 lines, no source-document numbers.

These are the contracts of docs/architecture.md, checked on the real package: a runbook added
the wrong way fails here, not in review.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "opslib"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_LINES = 800

#: what a notebook may import besides its own flow module
NOTEBOOK_IMPORTS = {"opslib", "opslib.safety", "opslib.interactive", "opslib.report"}


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _imported_modules(source: str) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from opslib.runbooks import latency_triage` imports opslib.runbooks.latency_triage
            mods |= {f"{node.module}.{a.name}" for a in node.names}
    return mods


def test_lint_imports_keeps_every_contract():
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " 0 broken" in out.stdout.split("Contracts:")[-1], out.stdout[-2000:]


def test_no_import_cycles_among_opslib_modules():
    graph = grimp.build_graph("opslib")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == module:
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append(" -> ".join((module, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles))[:20])


def test_every_module_imports_together_one_handler_per_action():
    """All of opslib in one process (as one kernel or one test session loads it): two adapters
    registering the same change action would raise here, not in a run."""
    script = (
        "import importlib, pkgutil, opslib\n"
        "from opslib.core import executors\n"
        "skip = ('opslib.airflow', 'opslib.cli.__main__', 'opslib.sandbox.__main__',"
        " 'opslib.sandbox.kube.__main__')\n"
        "for m in pkgutil.walk_packages(opslib.__path__, 'opslib.'):\n"
        "    if not m.name.startswith(skip):\n"
        "        importlib.import_module(m.name)\n"
        "print(len(executors.registered()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip()) > 40  # every adapter's handlers registered


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_module_is_under_the_size_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_only_its_flow(path):
    flow = f"opslib.runbooks.{path.stem}"
    allowed = NOTEBOOK_IMPORTS | {flow}
    imported = set().union(*(_imported_modules(src) for src in _code_cells(path)))
    opslib_imports = {m for m in imported if m == "opslib" or m.startswith("opslib.")}
    stray = {
        m
        for m in opslib_imports
        if m not in allowed and not m.startswith(("opslib.report.", flow + "."))
        # `from opslib import interactive` lists opslib.interactive; `from opslib.report import x`
        # lists opslib.report.x: both are allowed above
    }
    assert flow in opslib_imports, f"{path.name} does not import its flow {flow}"
    assert not stray, f"{path.name} imports {sorted(stray)}; only {sorted(allowed)} are allowed"


SEED_CITATION = re.compile(r"\bseeds?\b[ _/]*0\d\d|\b00[0-4] ?§|§ ?\d+\.\d+|\bseed 00[0-4]\b", re.I)


@pytest.mark.parametrize(
    "path",
    sorted(PACKAGE.rglob("*.py")) + NOTEBOOKS,
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_product_text_names_procedures_not_source_file_numbers(path):
    hits = [
        f"{i}: {line.strip()[:100]}"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if SEED_CITATION.search(line)
    ]
    assert not hits, "cites a source document by number; say the procedure instead:\n" + "\n".join(
        hits
    )
