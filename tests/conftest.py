"""Shared fixtures: headless mode, one real sandbox per session, a per-test evidence dir."""

from __future__ import annotations

import os

import pytest

os.environ["OPSLIB_HEADLESS"] = "1"


def pytest_configure(config):
    from opslib.sandbox.testing import session_state_dir

    session_state_dir()  # every sandbox.up() in this session lands in the session's sandbox


@pytest.fixture(scope="session")
def sandbox():
    """The session's sandbox (moto, PostgreSQL, Kubernetes API on loopback), started once.

    Its variables (AWS_ENDPOINT_URL, PG*, KUBECONFIG, OPSLIB_SANDBOX_DIR, ...) are in
    ``os.environ``, so clients, subprocesses and kernels use it. Stopped at session end.
    """
    from opslib.sandbox.testing import session_sandbox, stop_session_sandbox

    info = session_sandbox()
    yield info
    stop_session_sandbox()


@pytest.fixture
def evidence_dir(tmp_path):
    """An empty evidence dir for one test."""
    path = tmp_path / "evidence"
    path.mkdir()
    return path
