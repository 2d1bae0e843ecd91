"""Shared fixtures: headless mode, one real sandbox per session, a per-test evidence dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["OPSLIB_HEADLESS"] = "1"
# The venv's own tools first (the AWS CLI that checks what boto3 did, lint-imports, opslib):
# `make test` runs `.venv/bin/python -m pytest` without activating the venv.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])


def pytest_configure(config):
    import tempfile

    from opslib.sandbox.testing import session_state_dir

    session_state_dir()  # every sandbox.up() in this session lands in the session's sandbox
    # runs stage under a dir of this session's own, so a run start here never recovers (as
    # killed) a run another session left behind, nor the other way round
    os.environ.setdefault("OPSLIB_STAGING_DIR", tempfile.mkdtemp(prefix="opslib-test-staging-"))


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
