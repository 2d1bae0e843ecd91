"""The sandbox is an optional extra: a production install (a scheduler's container, a bastion)
has no mock AWS server. Everything that starts the sandbox checks for it first."""

from __future__ import annotations

import importlib

from opslib.core.errors import MissingExtraError

#: what the sandbox needs beyond a production install (the ``[sandbox]`` extra)
EXTRA_MODULES = ("moto", "kmock", "jsonpatch")


def require_extra() -> None:
    """Refuse (exit 2) when the ``[sandbox]`` extra is not installed, naming what to install."""
    missing = [m for m in EXTRA_MODULES if not _importable(m)]
    if missing:
        raise MissingExtraError(
            f"The local sandbox needs the [sandbox] extra ({', '.join(missing)} not installed): "
            "pip install 'opslib[sandbox]' (or run `make demo`, which installs it)."
        )


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
