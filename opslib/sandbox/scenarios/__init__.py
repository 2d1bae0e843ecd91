"""Scenario hooks: each runbook seeds its part of one coherent demo incident.

A scenario module defines::

    RUNBOOKS = ("dlq-redrive",)            # runbooks whose presets it provides

    def seed(ctx: ScenarioContext) -> dict[str, dict]:
        '''(Re)create this scenario's resources; idempotent: running it again resets them.
        Returns presets: {runbook name: {parameter: value}} pointing at what it seeded.'''

Optionally, ``demo_runs(presets) -> list[opslib.sandbox.demo.DemoRun]`` offers approved runs that
``opslib demo`` performs after the dry runs (complete parameters; they act on the sandbox only).

The sandbox calls every scenario's ``seed`` on ``opslib sandbox up`` and again on
``opslib sandbox seed [NAME]``; presets are saved in the state dir and filled in by
``opslib run --sandbox`` for parameters the caller did not give.
"""

from __future__ import annotations

#: scenario module names under opslib.sandbox.scenarios, seeded in this order
SCENARIOS = (
    "dlq",
    "latency",
    "pitr",
    "cost",
    "certs",
    "health",
    "deploy",
    "secrets",
    "backup",
    "leak",
    "capacity",
    "failover",
)
