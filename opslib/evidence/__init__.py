"""Evidence: run records, redaction, manifest + hash chain, HTML export, stores.

``record``/``attachment_path`` are what notebooks use; the rest (``write_bundle``,
``verify``, ``list_runs``, ``load_results``, ``redact_text``, ``Redactor``) is loaded on first
use so a notebook kernel importing :mod:`opslib.evidence` stays light.
"""

from __future__ import annotations

from typing import Any

from opslib.core.recorder import attachment_path, emit_approval, emit_change, record

_LAZY = {
    "write_bundle": "opslib.evidence.bundle",
    "Bundle": "opslib.evidence.bundle",
    "verify": "opslib.evidence.manifest",
    "VerifyResult": "opslib.evidence.manifest",
    "list_runs": "opslib.evidence.collect",
    "load_results": "opslib.evidence.collect",
    "Redactor": "opslib.core.redact",
    "redact_text": "opslib.core.redact",
    "register_secret": "opslib.core.redact",
    "open_store": "opslib.evidence.store",
    "RunRecord": "opslib.evidence.record",
    "RunStatus": "opslib.evidence.record",
}

__all__ = ["attachment_path", "emit_approval", "emit_change", "record", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'opslib.evidence' has no attribute {name!r}")
