"""The local sandbox: AWS APIs (moto), PostgreSQL and a Kubernetes API on 127.0.0.1.

Start one by hand::

    .venv/bin/python -c "import opslib.sandbox as s; print(s.format_env(s.up('/tmp/mysandbox')))"

See docs/sandbox.md and :mod:`opslib.sandbox.stack`.
"""

from __future__ import annotations

from opslib.sandbox.context import ScenarioContext
from opslib.sandbox.extra import EXTRA_MODULES, require_extra
from opslib.sandbox.interactive import use_sandbox
from opslib.sandbox.stack import describe, down, format_env, presets, seed, status, up
from opslib.sandbox.state import (
    SandboxInfo,
    env_vars,
    resolve_state_dir,
    spawn_tracked,
    stop_spawned,
)

__all__ = [
    "EXTRA_MODULES",
    "require_extra",
    "SandboxInfo",
    "ScenarioContext",
    "describe",
    "down",
    "env_vars",
    "format_env",
    "presets",
    "resolve_state_dir",
    "seed",
    "spawn_tracked",
    "status",
    "stop_spawned",
    "up",
    "use_sandbox",
]
