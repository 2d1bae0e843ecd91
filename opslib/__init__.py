"""opslib: SRE runbooks as parameterized Jupyter notebooks, with evidence and safety gates."""

from __future__ import annotations

__version__ = "0.1.0"

from opslib.evidence.recorder import record  # noqa: E402

__all__ = ["__version__", "record"]
