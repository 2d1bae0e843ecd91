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
import threading
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


#: papermill's optional I/O handler opslib never uses, and what importing it costs. Not boto3
#: (the S3 handler): the runner imports it anyway (its operator lookup asks STS who runs), and
#: making it unimportable, even briefly, could fail another thread's import of it.
_PAPERMILL_UNUSED = ("pyarrow",)  # the hdfs:// handler: pyarrow.fs and numpy, ~0.6 s
_LEAN_LOCK = threading.Lock()


def import_papermill_lean() -> None:
    """Import papermill without its HDFS handler, which opslib never asks it for.

    ``papermill.iorw`` tries ``pyarrow.fs`` at import and falls back to a "missing
    dependency" stub on ImportError. opslib reads notebooks from disk, so the handler only
    costs every ``opslib run`` about 0.6 s (pyarrow and numpy). While papermill imports,
    pyarrow (when not imported yet) is made unimportable (``None`` in ``sys.modules``,
    Python's own way to say so), then importable again: papermill keeps its stub, and the CUR
    reader that imports pyarrow later gets the real package.
    """
    with _LEAN_LOCK:
        if "papermill.iorw" in sys.modules:
            return
        blocked = [name for name in _PAPERMILL_UNUSED if name not in sys.modules]
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            import papermill.iorw  # noqa: F401
        finally:
            for name in blocked:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]
