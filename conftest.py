"""Root conftest: the sandbox for ``pytest --nbval-lax notebooks/`` (and any mixed session).

nbval starts a kernel per notebook when its first cell runs; the kernel inherits
``os.environ`` at that moment. So the session sandbox is started here, right after
collection, whenever a notebook was collected, and its variables exported before any
kernel exists. Unit tests get the same sandbox through the ``sandbox`` fixture
(tests/conftest.py); it is stopped once at the end of the session.

Each notebook's ``parameters`` cell also gets the sandbox presets of its runbook appended
(in memory only, never on disk), exactly what ``opslib run --sandbox`` fills in, so the
notebook runs against the seeded incident instead of its empty defaults.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

os.environ["OPSLIB_HEADLESS"] = "1"


def _is_notebook_item(item) -> bool:
    return type(item).__module__.startswith("nbval") or str(getattr(item, "fspath", "")).endswith(
        ".ipynb"
    )


def _parameter_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _inject_presets(items) -> None:
    from opslib import sandbox as sb

    for item in items:
        cell = getattr(item, "cell", None)
        if cell is None or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        runbook = Path(str(item.fspath)).stem.replace("_", "-")
        params = _parameter_names(cell.source)
        presets = {k: v for k, v in sb.presets(runbook).items() if k in params}
        if presets:
            lines = [f"{k} = {v!r}" for k, v in sorted(presets.items())]
            cell.source = (
                cell.source.rstrip("\n")
                + "\n# sandbox presets (added by conftest.py, as `opslib run --sandbox` does)\n"
                + "\n".join(lines)
                + "\n"
            )


def pytest_configure(config):
    from opslib.sandbox.testing import session_state_dir

    session_state_dir()  # OPSLIB_SANDBOX_DIR for the whole session, before anything starts one


def pytest_collection_modifyitems(session, config, items):
    notebook_items = [item for item in items if _is_notebook_item(item)]
    if notebook_items:
        from opslib.sandbox.testing import session_sandbox

        session_sandbox()
        _inject_presets(notebook_items)


def pytest_sessionfinish(session, exitstatus):
    from opslib.sandbox.testing import stop_session_sandbox

    stop_session_sandbox()
