"""The restore engines, registered by :class:`~opslib.runbooks.pitr_restore.model.Engine`.

A registry in the style of papermill's ``engines.py``: :func:`register` an engine object,
:func:`get` it by its ``Engine`` value. The flow never branches on the engine; it asks the
registered object. A new engine is a new module here (a :class:`~.base.RestoreEngine`
subclass), a new ``Engine`` value, and one :func:`register` line below.
"""

from __future__ import annotations

from opslib.core.errors import BadInputError
from opslib.runbooks.pitr_restore.engines.base import RestoreEngine
from opslib.runbooks.pitr_restore.engines.dynamodb import DynamoDbEngine
from opslib.runbooks.pitr_restore.engines.postgres import PostgresEngine
from opslib.runbooks.pitr_restore.engines.rds import AuroraEngine, RdsEngine
from opslib.runbooks.pitr_restore.model import Engine

__all__ = ["RestoreEngine", "get", "names", "register", "registered"]

_ENGINES: dict[Engine, RestoreEngine] = {}


def register(engine: RestoreEngine) -> RestoreEngine:
    """Make ``engine`` the one that restores its ``engine.engine`` kind."""
    known = _ENGINES.get(engine.engine)
    if known is not None and type(known) is not type(engine):
        raise ValueError(f"engine {engine.engine.value!r} already registered by {known!r}")
    _ENGINES[engine.engine] = engine
    return engine


def registered() -> tuple[RestoreEngine, ...]:
    """Every registered engine, in registration order."""
    return tuple(_ENGINES.values())


def names() -> tuple[str, ...]:
    """The ``engine`` parameter values this runbook accepts."""
    return tuple(e.engine.value for e in _ENGINES.values())


def get(engine: Engine | str) -> RestoreEngine:
    """The engine registered for ``engine`` (a value or its name); BadInputError when none is."""
    value = str(engine or "").strip().lower()
    for key, impl in _ENGINES.items():
        if key.value == value:
            return impl
    listing = ", ".join(f"{e.engine.value} = {e.description}" for e in _ENGINES.values())
    raise BadInputError(
        f"engine {engine!r} is not supported. Use one of: {', '.join(names())} ({listing})."
    )


register(AuroraEngine())
register(RdsEngine())
register(DynamoDbEngine())
register(PostgresEngine())
