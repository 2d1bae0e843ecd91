"""opslib: SRE runbooks as parameterized Jupyter notebooks, with evidence and safety gates."""

from __future__ import annotations

from typing import Any

from opslib.core.lazy_imports import defer_rfc3987_syntax
from opslib.core.record_all import record_all
from opslib.core.recorder import record
from opslib.core.version import __version__

__all__ = ["__version__", "capture_evidence", "record", "record_all", "run"]

defer_rfc3987_syntax()  # 3 s off every process that imports jsonschema (see that module)


def __getattr__(name: str) -> Any:
    # Lazy: every notebook kernel imports opslib, and the runner (papermill, nbclient) is
    # heavy; only code that actually runs runbooks should pay for it.
    if name == "run":
        from opslib.api import run

        return run
    if name == "capture_evidence":  # interactive sessions only (opslib/capture.py)
        from opslib.capture import capture_evidence

        return capture_evidence
    raise AttributeError(f"module 'opslib' has no attribute {name!r}")
