"""Catalog: names, purposes, parameters from the notebooks; validation before any kernel."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from opslib import catalog
from opslib.core.errors import BadInputError, SecretInParameterError, UnknownRunbookError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "notebooks"


@pytest.fixture
def books(monkeypatch, tmp_path):
    d = tmp_path / "notebooks"
    shutil.copytree(FIXTURES, d)
    shutil.copy(d / "tiny.ipynb", d / "dlq_redrive.ipynb")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, d / "no_params.ipynb")
    monkeypatch.setenv(catalog.NOTEBOOKS_ENV, str(d))
    return d


def test_list_names_purpose_parameters(books):
    infos = {b.name: b for b in catalog.list_runbooks()}
    assert set(infos) == {"canary", "failing", "long", "refusing", "tiny", "dlq-redrive"}
    tiny = infos["tiny"]
    assert tiny.purpose == "A tiny runbook for runner tests: records a few results."
    assert [(p.name, p.type, p.default, p.help) for p in tiny.parameters] == [
        ("count", "int", 3, "how many items"),
        ("label", "str", "demo", "a label to echo"),
        ("ratio", "float", 0.5, "a fraction"),
        ("dry_run", "bool", True, "plan only"),
    ]


def test_default_dir_is_next_to_package(monkeypatch):
    monkeypatch.delenv(catalog.NOTEBOOKS_ENV, raising=False)
    assert catalog.notebooks_dir() == Path(catalog.__file__).resolve().parent.parent / "notebooks"


def test_resolve_by_name_kebab_and_path(books):
    assert catalog.resolve("dlq-redrive").path == books / "dlq_redrive.ipynb"
    assert catalog.resolve(str(FIXTURES / "tiny.ipynb")).name == "tiny"


def test_resolve_unknown_lists_names(books):
    with pytest.raises(UnknownRunbookError) as exc:
        catalog.resolve("no-such-book")
    assert "dlq-redrive" in str(exc.value) and "tiny" in str(exc.value)
    assert exc.value.exit_code == 2


def test_notebook_without_parameters_cell_refused(books):
    with pytest.raises(UnknownRunbookError, match="parameters"):
        catalog.resolve(str(books / "no_params.ipynb"))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"count": "7"}, {"count": 7}),
        ({"count": 7}, {"count": 7}),
        ({"ratio": "0.25"}, {"ratio": 0.25}),
        ({"ratio": 1}, {"ratio": 1.0}),
        ({"dry_run": "false"}, {"dry_run": False}),
        ({"dry_run": "YES"}, {"dry_run": True}),
        ({"dry_run": "0"}, {"dry_run": False}),
        ({"label": "x y"}, {"label": "x y"}),
        ({"label": 12}, {"label": "12"}),
    ],
)
def test_coercion(books, given, expected):
    assert catalog.validate(catalog.resolve("tiny"), given) == expected


@pytest.mark.parametrize(
    "given",
    [
        {"count": "seven"},
        {"count": True},
        {"ratio": "fast"},
        {"dry_run": "maybe"},
        {"label": False},
    ],
)
def test_wrong_type_lists_parameters(books, given):
    with pytest.raises(BadInputError) as exc:
        catalog.validate(catalog.resolve("tiny"), given)
    msg = str(exc.value)
    assert "count: int = 3  # how many items" in msg and "dry_run: bool = True  # plan only" in msg


def test_unknown_parameter_lists_parameters(books):
    with pytest.raises(BadInputError, match=r"Unknown parameter 'cuont'(.|\n)*label: str"):
        catalog.validate(catalog.resolve("tiny"), {"cuont": 1})


@pytest.mark.parametrize(
    "value",
    [
        "host=db user=app password=hunter2",
        "postgresql://app:hunter2@db/payments",
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN RSA PRIVATE KEY-----\nabc",
    ],
)
def test_secret_parameter_refused(books, value):
    with pytest.raises(SecretInParameterError) as exc:
        catalog.validate(catalog.resolve("tiny"), {"label": value})
    assert "PGPASSWORD" in str(exc.value) and ".pgpass" in str(exc.value)
    assert exc.value.exit_code == 2


def test_list_types():
    p = catalog.ParamInfo("ids", "list[str]", [], "ids")
    assert catalog.coerce(p, '["a", "b"]') == ["a", "b"]
    assert catalog.coerce(p, "[a, b]") == ["a", "b"]
    with pytest.raises(ValueError):
        catalog.coerce(p, "a")
    opt = catalog.ParamInfo("n", "int | None", None, "n")
    assert catalog.coerce(opt, None) is None and catalog.coerce(opt, "3") == 3
