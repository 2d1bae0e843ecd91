"""Root conftest: the sandbox for ``pytest --nbval-lax notebooks/`` (and any mixed session).

nbval starts a kernel per notebook when its first cell runs; the kernel inherits
``os.environ`` at that moment. So the session sandbox is started here, right after
collection, whenever a notebook was collected, and its variables exported before any
kernel exists. Unit tests get the same sandbox through the ``sandbox`` fixture
(tests/conftest.py); it is stopped once at the end of the session.
"""

from __future__ import annotations

import os

os.environ["OPSLIB_HEADLESS"] = "1"


def _is_notebook_item(item) -> bool:
    return type(item).__module__.startswith("nbval") or str(getattr(item, "fspath", "")).endswith(
        ".ipynb"
    )


def pytest_collection_modifyitems(session, config, items):
    if any(_is_notebook_item(item) for item in items):
        from opslib.sandbox.testing import session_sandbox

        session_sandbox()


def pytest_sessionfinish(session, exitstatus):
    from opslib.sandbox.testing import stop_session_sandbox

    stop_session_sandbox()
