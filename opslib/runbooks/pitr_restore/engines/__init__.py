"""The restore engines, registered by :class:`~opslib.runbooks.pitr_restore.model.Engine`.

A registry in the style of papermill's ``engines.py``: :func:`register` an engine object,
:func:`get` it by its ``Engine`` value and :class:`SourceKind` (a point in time, a snapshot, a
backup). The flow never branches on the engine; it asks the registered object
(:func:`for_request`). A new engine or source kind is a new module here (a
:class:`~.base.RestoreEngine` subclass), a new enum value, and one :func:`register` line below.
"""

from __future__ import annotations

from opslib.core.errors import BadInputError
from opslib.runbooks.pitr_restore.engines.base import RestoreEngine
from opslib.runbooks.pitr_restore.engines.dynamodb import DynamoDbEngine
from opslib.runbooks.pitr_restore.engines.postgres import PostgresEngine
from opslib.runbooks.pitr_restore.engines.rds import AuroraEngine, RdsEngine
from opslib.runbooks.pitr_restore.engines.snapshot import (
    AuroraSnapshotEngine,
    DynamoDbBackupEngine,
    RdsSnapshotEngine,
)
from opslib.runbooks.pitr_restore.model import Engine, RestoreRequest, SourceKind

__all__ = ["RestoreEngine", "for_request", "get", "names", "register", "registered"]

_ENGINES: dict[tuple[Engine, SourceKind], RestoreEngine] = {}


def register(engine: RestoreEngine) -> RestoreEngine:
    """Make ``engine`` the one that restores its ``engine.engine`` kind from its ``source_kind``."""
    key = (engine.engine, engine.source_kind)
    known = _ENGINES.get(key)
    if known is not None and type(known) is not type(engine):
        raise ValueError(f"engine {key} already registered by {known!r}")
    _ENGINES[key] = engine
    return engine


def registered() -> tuple[RestoreEngine, ...]:
    """Every registered engine, in registration order."""
    return tuple(_ENGINES.values())


def names() -> tuple[str, ...]:
    """The ``engine`` parameter values this runbook accepts."""
    return tuple(dict.fromkeys(e.value for e, _ in _ENGINES))


def get(engine: Engine | str, source_kind: SourceKind = SourceKind.POINT_IN_TIME) -> RestoreEngine:
    """The engine registered for ``engine`` (a value or its name) and ``source_kind``;
    BadInputError when none is."""
    value = str(engine or "").strip().lower()
    known = [impl for (e, _), impl in _ENGINES.items() if e.value == value]
    for (e, kind), impl in _ENGINES.items():
        if e.value == value and kind is source_kind:
            return impl
    if known:
        able = ", ".join(i.engine.value for i in registered() if i.source_kind is source_kind)
        raise BadInputError(
            f"engine={value} cannot restore from a {source_kind.value.replace('_', ' ')} source. "
            f"from_snapshot applies to aurora/rds, from_backup to dynamodb (engines with this source: {able})."
        )
    listing = ", ".join(
        f"{e.engine.value} = {e.description}"
        for e in registered()
        if e.source_kind is SourceKind.POINT_IN_TIME
    )
    raise BadInputError(
        f"engine {engine!r} is not supported. Use one of: {', '.join(names())} ({listing})."
    )


def for_request(req: RestoreRequest) -> RestoreEngine:
    """The engine for this request's engine and source kind."""
    return get(req.engine, req.source_kind)


register(AuroraEngine())
register(RdsEngine())
register(DynamoDbEngine())
register(PostgresEngine())
register(AuroraSnapshotEngine())
register(RdsSnapshotEngine())
register(DynamoDbBackupEngine())
