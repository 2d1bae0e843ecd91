"""Defer a third-party import that costs every opslib process seconds and is almost never used.

``jsonschema`` (imported by nbformat, so by papermill, so by every ``opslib run``) imports
``rfc3987_syntax`` when it is installed (JupyterLab's ``jupyter-events`` pulls it in), only to
offer the "iri" format check; that package compiles 38 lark grammars at import: 3.1 s of the
3.4 s ``import jsonschema`` takes on this machine, in every CLI run, scheduler job and alert
run, for a check opslib never makes. :func:`defer_rfc3987_syntax` puts a stand-in package in
``sys.modules`` whose ``is_valid_syntax`` loads the real package (into the same module object,
so its submodules import as usual) the first time it is called. Behaviour is unchanged; only
the cost moves to the first IRI check, if there ever is one.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

_NAME = "rfc3987_syntax"


def defer_rfc3987_syntax() -> None:
    """Install the stand-in (once; nothing when the package is absent or already imported)."""
    if _NAME in sys.modules:
        return
    spec = importlib.util.find_spec(_NAME)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = types.ModuleType(_NAME)
    module.__spec__ = spec
    module.__path__ = list(spec.submodule_search_locations)
    module.__file__ = spec.origin
    module.__loader__ = spec.loader
    module.__package__ = _NAME

    def is_valid_syntax(*args: Any, **kwargs: Any) -> Any:
        if module.__dict__.get("is_valid_syntax") is is_valid_syntax:
            spec.loader.exec_module(module)  # the real package, into this very module
        return module.is_valid_syntax(*args, **kwargs)

    module.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]
    sys.modules[_NAME] = module
