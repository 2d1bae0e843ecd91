"""Every runbook in notebooks/: shape checks, then a headless run on the sandbox with a bundle that verifies.

Parametrized over the directory at collection time, so a new notebook is checked as soon as
it lands. Shape rules (DESIGN.md): no def/class in any code cell; exactly one ``parameters``
cell, literals only, each ``name: type = value  # help``; committed without outputs.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import opslib
from opslib.catalog import notebooks_dir, read_parameters, runbook_name
from opslib.evidence import verify

NOTEBOOKS = sorted(p for p in notebooks_dir().glob("*.ipynb") if not p.name.startswith("."))
ids = [runbook_name(p) for p in NOTEBOOKS]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def src(cell: dict) -> str:
    s = cell.get("source", "")
    return s if isinstance(s, str) else "".join(s)


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_notebooks_exist():
    assert NOTEBOOKS, f"no runbooks in {notebooks_dir()}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_def_or_class(path):
    for i, cell in enumerate(code_cells(load(path))):
        tree = ast.parse(src(cell), filename=f"{path.name} code cell {i}")
        bad = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        assert not bad, (
            f"{path.name} code cell {i}: `{type(bad[0]).__name__}` (logic belongs in opslib)"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_one_literal_typed_parameters_cell(path):
    nb = load(path)
    tagged = [
        c for c in code_cells(nb) if "parameters" in (c.get("metadata", {}).get("tags") or [])
    ]
    assert len(tagged) == 1, (
        f"{path.name}: {len(tagged)} cells tagged 'parameters', need exactly one"
    )
    tree = ast.parse(src(tagged[0]))
    for stmt in tree.body:
        assert isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name), (
            f"{path.name}: parameters cell line {stmt.lineno} must be `name: type = value  # help`"
        )
        assert stmt.value is not None, f"{path.name}: {stmt.target.id} has no default"
        ast.literal_eval(stmt.value)  # raises on anything computed
    params = read_parameters(path)
    assert len(params) == len(tree.body), (
        f"{path.name}: papermill sees {len(params)} of {len(tree.body)} parameters"
    )
    for p in params:
        assert p.type, f"{path.name}: parameter {p.name} has no type"
        assert p.help, f"{path.name}: parameter {p.name} has no help comment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_without_outputs(path):
    nb = load(path)
    assert nb["nbformat"] == 4
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"
    for i, cell in enumerate(code_cells(nb)):
        assert not cell.get("outputs"), f"{path.name} code cell {i} has outputs"
        assert cell.get("execution_count") is None, (
            f"{path.name} code cell {i} has an execution_count"
        )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_runs_headless_on_sandbox(path, sandbox, tmp_path):
    result = opslib.run(
        runbook_name(path), sandbox=True, evidence_dir=tmp_path / "evidence", timeout=480
    )
    err = (result.record or {}).get("error")
    assert result.status == "succeeded", f"{path.name}: {result.status}: {err}"
    check = verify(result.bundle)
    assert check.ok, str(check)
    assert (Path(result.bundle) / f"{runbook_name(path)}.html").exists()
