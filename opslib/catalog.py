"""The runbook catalog: which notebooks exist, what they are for, which parameters they take.

Everything is read from the notebooks themselves (title cell, the ``parameters`` cell through
``papermill.inspect_notebook``), so ``opslib list`` can never drift from what runs. Parameter
values are validated and coerced here, before any kernel starts, because a typo found after
the kernel has started (or half-way through a runbook) costs minutes during an incident.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opslib.core.errors import BadInputError, SecretInParameterError, UnknownRunbookError
from opslib.core.lazy_imports import import_papermill_lean
from opslib.core.redact import find_secret

NOTEBOOKS_ENV = "OPSLIB_NOTEBOOKS"


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a runbook, as declared in its parameters cell."""

    name: str
    type: str
    default: Any
    help: str

    def describe(self) -> str:
        return f"{self.name}: {self.type} = {self.default!r}  # {self.help}"


@dataclass(frozen=True)
class RunbookInfo:
    """A runbook: kebab-case name, notebook path, one-line purpose, parameters."""

    name: str
    path: Path
    purpose: str
    parameters: tuple[ParamInfo, ...]

    def param(self, name: str) -> ParamInfo | None:
        return next((p for p in self.parameters if p.name == name), None)

    def usage(self) -> str:
        lines = [f"Valid parameters of {self.name}:"]
        lines += [f"  {p.describe()}" for p in self.parameters] or ["  (none)"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "purpose": self.purpose,
            "parameters": [p.__dict__ for p in self.parameters],
        }


def notebooks_dir() -> Path:
    """``$OPSLIB_NOTEBOOKS``, else the ``notebooks/`` folder next to the opslib package."""
    env = os.environ.get(NOTEBOOKS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "notebooks"


def runbook_name(path: str | os.PathLike[str]) -> str:
    """``dlq_redrive.ipynb`` -> ``dlq-redrive``."""
    return Path(path).stem.replace("_", "-").lower()


def _cell_source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def purpose_of(nb: dict[str, Any]) -> str:
    """First paragraph of the first markdown cell, after its ``# Title`` line."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        lines = _cell_source(cell).splitlines()
        while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
            lines.pop(0)
        para = []
        for line in lines:
            if not line.strip():
                break
            para.append(line.strip())
        if para:
            return " ".join(para)
    return ""


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def read_parameters(path: str | os.PathLike[str]) -> tuple[ParamInfo, ...]:
    """Parameters of a notebook via ``papermill.inspect_notebook`` (name, type, default, help)."""
    import_papermill_lean()
    from papermill import inspect_notebook

    params = inspect_notebook(str(path))
    return tuple(
        ParamInfo(
            name=p["name"],
            type="" if p["inferred_type_name"] == "None" else p["inferred_type_name"],
            default=_literal(p["default"]),
            help=p["help"],
        )
        for p in params.values()
    )


def has_parameters_cell(nb: dict[str, Any]) -> bool:
    return any(
        "parameters" in (c.get("metadata", {}).get("tags") or [])
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code"
    )


def _load_nb(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnknownRunbookError(f"Cannot read notebook {path}: {exc}") from exc


def load_info(path: str | os.PathLike[str]) -> RunbookInfo:
    """A RunbookInfo for one notebook file."""
    p = Path(path)
    nb = _load_nb(p)
    if not has_parameters_cell(nb):
        raise UnknownRunbookError(
            f"{p} has no cell tagged 'parameters'; a runbook needs one (literals, "
            "`name: type = value  # help`)."
        )
    return RunbookInfo(runbook_name(p), p, purpose_of(nb), read_parameters(p))


def list_runbooks(directory: str | os.PathLike[str] | None = None) -> list[RunbookInfo]:
    """Every runbook in the notebooks dir (files without a parameters cell are skipped)."""
    d = Path(directory) if directory else notebooks_dir()
    out = []
    for p in sorted(d.glob("*.ipynb")):
        if p.name.startswith(".") or ".ipynb_checkpoints" in p.parts:
            continue
        try:
            out.append(load_info(p))
        except UnknownRunbookError:
            continue
    return out


def runbook_names(directory: str | os.PathLike[str] | None = None) -> list[str]:
    d = Path(directory) if directory else notebooks_dir()
    return sorted(runbook_name(p) for p in d.glob("*.ipynb") if not p.name.startswith("."))


def resolve(runbook: str | os.PathLike[str]) -> RunbookInfo:
    """A runbook name from ``opslib list`` or a path to any .ipynb with a ``parameters`` cell."""
    s = str(runbook)
    p = Path(s)
    if s.endswith(".ipynb") or os.sep in s:
        if p.is_file():
            return load_info(p)
        raise UnknownRunbookError(f"No notebook at {s}.")
    d = notebooks_dir()
    candidate = d / f"{s.replace('-', '_')}.ipynb"
    if candidate.is_file():
        return load_info(candidate)
    for nb in d.glob("*.ipynb"):
        if runbook_name(nb) == s.lower():
            return load_info(nb)
    names = runbook_names(d)
    raise UnknownRunbookError(
        f"Unknown runbook {s!r}. Known runbooks: {', '.join(names) or '(none in ' + str(d) + ')'}. "
        "Or give a path to a .ipynb with a 'parameters' cell."
    )


# -- parameter coercion and validation -------------------------------------------------------

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _base_type(type_name: str) -> tuple[str, bool]:
    """('int', optional?) for 'int', 'int | None', 'Optional[int]'."""
    t = type_name.replace(" ", "")
    optional = False
    if t.startswith("Optional[") and t.endswith("]"):
        t, optional = t[len("Optional[") : -1], True
    parts = [x for x in t.split("|") if x]
    if "None" in parts:
        optional = True
        parts = [x for x in parts if x != "None"]
    return (parts[0] if len(parts) == 1 else t), optional


def coerce(param: ParamInfo, value: Any) -> Any:
    """Convert ``value`` (a CLI string or a Python value) to the declared type, or raise ValueError."""
    base, optional = _base_type(param.type)
    if value is None:
        if optional or not base:
            return None
        raise ValueError("None is not allowed")
    head = base.split("[", 1)[0]
    if head == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("expected true/false/1/0/yes/no")
    if head == "int":
        if isinstance(value, bool):
            raise ValueError("expected an integer, got a bool")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError("expected an integer")
    if head == "float":
        if isinstance(value, bool):
            raise ValueError("expected a number, got a bool")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError("expected a number")
    if head == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError("expected a string")
    if head in {"list", "dict", "tuple"}:
        want = {"list": list, "dict": dict, "tuple": list}[head]
        if isinstance(value, str):
            import yaml

            value = yaml.safe_load(value)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, want):
            raise ValueError(f"expected a {head} (JSON/YAML)")
        return value
    return value  # untyped or exotic annotation: passed through as given


#: The one exception to "no secret-shaped values in parameters": a parameter of a named runbook
#: that carries an identifier which merely looks like a secret. ``{runbook: {parameter: kind}}``
#: where ``kind`` is the :func:`~opslib.core.redact.find_secret` kind allowed there and nothing
#: else: an AWS access key id names the key under investigation in ``credential-leak`` (it is
#: an identifier, not a credential; the redactor still masks it in the evidence), while a
#: secret access key, a password or a token in that same parameter is refused as anywhere else.
IDENTIFIER_PARAMETERS: dict[str, dict[str, str]] = {
    "credential-leak": {"access_key_id": "an AWS access key id"},
}

#: What each allowed kind looks like, so that only that part of a value is let through.
_IDENTIFIER_SHAPES = {"an AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")}
# The 40-character half of an AWS key pair; looked for only in identifier parameters, where
# pasting the wrong half of the pair is the likely mistake (elsewhere it would flag hashes).
_SECRET_ACCESS_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")


def _secret_kind(value: str, allowed: str) -> str:
    if not allowed:
        return find_secret(value)
    shape = _IDENTIFIER_SHAPES.get(allowed)
    rest = shape.sub(" ", value) if shape is not None else value
    if _SECRET_ACCESS_KEY.search(rest):
        return "a secret access key (the 40-character half of the key pair)"
    return find_secret(rest)


def check_secret(name: str, value: Any, *, allowed: str = "") -> None:
    """Refuse a parameter value that carries a secret; secrets never go in parameters.

    ``allowed`` is the one identifier kind this parameter may carry (see
    :data:`IDENTIFIER_PARAMETERS`): values of exactly that shape pass, anything else secret in
    the same value is still refused.
    """
    values = (
        value
        if isinstance(value, list | tuple)
        else (value.values() if isinstance(value, dict) else [value])
    )
    for v in values:
        what = _secret_kind(v, allowed) if isinstance(v, str) else ""
        if what:
            only = f" It may carry {allowed} only." if allowed else ""
            raise SecretInParameterError(
                f"Parameter {name} carries {what}.{only} Secrets never go in parameters (they would be "
                "recorded in the evidence). Supply it through the environment instead: PGPASSWORD or "
                "~/.pgpass (PGPASSFILE/PGSERVICE) for PostgreSQL, the AWS profile/SSO chain for AWS, "
                "or pass a secret reference (e.g. a Secrets Manager secret id) the runbook resolves."
            )


def validate(info: RunbookInfo, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Coerced parameters for ``info``; BadInputError listing valid parameters on any mismatch."""
    out: dict[str, Any] = {}
    for name, value in (parameters or {}).items():
        p = info.param(name)
        if p is None:
            raise BadInputError(
                f"Unknown parameter {name!r} for runbook {info.name}.\n{info.usage()}"
            )
        try:
            out[name] = coerce(p, value)
        except (ValueError, TypeError) as exc:
            raise BadInputError(
                f"Parameter {name} of runbook {info.name} must be {p.type or 'a literal'}: "
                f"got {value!r} ({exc}).\n{info.usage()}"
            ) from exc
        check_secret(
            name, out[name], allowed=IDENTIFIER_PARAMETERS.get(info.name, {}).get(name, "")
        )
    return out
