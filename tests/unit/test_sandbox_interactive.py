"""opslib.sandbox.use_sandbox: a JupyterLab kernel pointed at the running sandbox."""

from __future__ import annotations

import pytest

from opslib import sandbox
from opslib.core.errors import SandboxError


def test_use_sandbox_off_does_nothing():
    assert sandbox.use_sandbox(False) == {}


def test_use_sandbox_without_a_running_sandbox_says_how_to_start_it(tmp_path):
    with pytest.raises(SandboxError, match="opslib sandbox up"):
        sandbox.use_sandbox(state_dir=str(tmp_path / "none"))
