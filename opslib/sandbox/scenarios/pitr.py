"""Sandbox scenario for the pitr runbook (to be filled by its issue)."""

from __future__ import annotations

RUNBOOKS: tuple[str, ...] = ()


def seed(ctx) -> dict[str, dict]:
    return {}
