"""The executor registry: which function performs a planned :class:`~opslib.core.plans.Change`.

A ``Change.action`` names the exact call ("ecs:UpdateService", "pg_terminate_backend", ...).
The module that owns that call registers its handler once, next to the code that plans it::

    @executors.register("ecs:UpdateService")
    def _update_service(change: Change, *, ecs) -> ChangeOutcome: ...

Handlers take the change and, keyword-only, the clients they need by name. A runbook binds
its clients once (``executors.bind(ecs=conns.ecs, pg=conns.pg)``) and hands the bound
executor to :func:`opslib.safety.gate`; each change is dispatched by its action. A new kind of
change is a new handler and one registration, never another branch on ``change.action``
(the model is papermill's engine registry).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opslib.core.errors import OpslibError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus

Handler = Callable[..., ChangeOutcome]
Executor = Callable[[Change], ChangeOutcome]

__all__ = ["Executor", "Handler", "UnknownActionError", "bind", "get", "register", "registered"]


class UnknownActionError(OpslibError):
    """Raised when a plan holds a change whose action has no registered handler."""


_HANDLERS: dict[str, Handler] = {}


def register(*actions: str) -> Callable[[Handler], Handler]:
    """Decorator: ``handler`` performs changes with any of ``actions``.

    Registering an action twice with a different function is a programming error (two modules
    claiming the same API call) and raises at import time.
    """
    if not actions:
        raise ValueError("register() needs at least one action name")

    def deco(handler: Handler) -> Handler:
        for action in actions:
            known = _HANDLERS.get(action)
            if known is not None and known is not handler:
                raise ValueError(
                    f"action {action!r} already registered by {known.__module__}.{known.__qualname__}"
                )
            _HANDLERS[action] = handler
        return handler

    return deco


def get(action: str) -> Handler:
    """The handler registered for ``action``; :class:`UnknownActionError` when there is none."""
    try:
        return _HANDLERS[action]
    except KeyError:
        raise UnknownActionError(
            f"no executor is registered for action {action!r}; registered: "
            f"{', '.join(sorted(_HANDLERS)) or '(none)'}"
        ) from None


def registered() -> list[str]:
    """Every registered action, sorted (for docs and tests)."""
    return sorted(_HANDLERS)


def _needs(handler: Handler) -> tuple[str, ...]:
    """The keyword-only parameters of ``handler`` without a default: the clients it needs."""
    params = inspect.signature(handler).parameters.values()
    return tuple(
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    )


def _optional(handler: Handler) -> tuple[str, ...]:
    params = inspect.signature(handler).parameters.values()
    return tuple(
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    )


def bind(
    context: Mapping[str, Any] | None = None,
    /,
    *,
    allowed: Iterable[str] | None = None,
    **clients: Any,
) -> Executor:
    """An executor for :func:`opslib.safety.gate` that dispatches each change by its action.

    ``clients`` (and ``context``) are what handlers may ask for by keyword. A handler needing
    a client that is absent (``None`` or not given) fails that change with a clear outcome
    rather than a traceback. ``allowed`` restricts the actions this executor will perform,
    so a runbook never performs a change kind it did not plan.
    """
    available = {**(context or {}), **clients}
    allow = frozenset(allowed) if allowed is not None else None

    def execute(change: Change) -> ChangeOutcome:
        if allow is not None and change.action not in allow:
            raise UnknownActionError(
                f"action {change.action!r} is not one this runbook performs "
                f"({', '.join(sorted(allow))})"
            )
        handler = get(change.action)
        missing = [n for n in _needs(handler) if available.get(n) is None]
        if missing:
            return ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.FAILED,
                f"not performed: no {', '.join(missing)} client was connected for this run",
            )
        kwargs = {n: available[n] for n in _needs(handler)}
        kwargs.update({n: available[n] for n in _optional(handler) if n in available})
        return handler(change, **kwargs)

    return execute
