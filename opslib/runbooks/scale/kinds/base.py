"""The kinds registry and the planning rules every kind shares.

Two rules of the scaling procedures are enforced here, before anything changes: the blast
radius (``max_step``: the largest change of a count in one run) and the autoscaler's bounds (a
manual count outside the scaler's min/max is undone at its next evaluation, so it is refused
unless the same run moves the bound, which the plan then does first and says so).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opslib.core.errors import BadInputError
from opslib.core.plans import scaled_count
from opslib.runbooks.scale.model import UNCHANGED, Current, Inputs, Proposal, Request, TargetKind

__all__ = [
    "KINDS",
    "Connections",
    "Kind",
    "check_step",
    "new_bounds",
    "new_count",
    "register",
    "request_fields",
    "split",
    "title",
    "within_scaler",
]


@dataclass(frozen=True)
class Connections:
    """The clients of one run; only those the target kind needs are built (others None)."""

    ecs: Any = None
    autoscaling: Any = None
    eks: Any = None
    dynamodb: Any = None
    rds: Any = None
    elasticache: Any = None
    cloudwatch: Any = None
    elbv2: Any = None
    api: Any = None  # Kubernetes


@dataclass(frozen=True)
class Kind:
    """How the runbook handles one target kind."""

    kind: TargetKind
    clients: tuple[str, ...]  # Connections fields it needs
    allowed: frozenset[str]  # Request fields it accepts
    read: Callable[[Connections, str], Current]
    propose: Callable[[Inputs, Current], Proposal]
    live_text: str  # what "live" means for it, for the wait's message


KINDS: dict[TargetKind, Kind] = {}


def register(k: Kind) -> None:
    if k.kind in KINDS:
        raise ValueError(f"target kind {k.kind} registered twice")
    KINDS[k.kind] = k


def split(target: str) -> tuple[str, str]:
    a, _, b = target.partition("/")
    return a, b


# --- shared planning rules -------------------------------------------------------------------


def new_count(req: Request, current: int, *, what: str) -> int:
    """The count asked for: ``desired`` as is, or ``current + delta``; never below 0."""
    if req.desired != UNCHANGED:
        return req.desired
    return scaled_count(current, req.delta, param="delta", what=what)


def check_step(name: str, old: int, new: int, max_step: int) -> None:
    """Blast radius: a count moves by at most ``max_step`` in one run."""
    if abs(new - old) > max_step:
        raise BadInputError(
            f"{name} {old} -> {new} is a change of {abs(new - old)}, larger than max_step={max_step}; "
            "scale in steps (one run each, watching in between), or raise max_step deliberately"
        )


def new_bounds(req: Request, lo: int, hi: int) -> tuple[int, int]:
    """(min, max) after the request; BadInputError when max < min."""
    want_lo = lo if req.min_capacity == UNCHANGED else req.min_capacity
    want_hi = hi if req.max_capacity == UNCHANGED else req.max_capacity
    if want_hi < want_lo:
        raise BadInputError(
            f"max_capacity={want_hi} is below min_capacity={want_lo} (with the current bounds "
            f"{lo}..{hi}); give max_capacity >= min_capacity"
        )
    return want_lo, want_hi


def within_scaler(
    count: int, lo: int, hi: int, *, req: Request, scaler: str, count_name: str
) -> tuple[int, int, list[str]]:
    """The scaler's (min, max) that keep ``count``, moving a bound only when the request does.

    A count outside the scaler's bounds would be undone at its next evaluation: refused, unless
    ``min_capacity``/``max_capacity`` move the bound too (then the plan says so).
    """
    want_lo, want_hi = new_bounds(req, lo, hi)
    if count < want_lo:
        raise BadInputError(
            f"{count_name}={count} is below the minimum {want_lo} of {scaler}, which would scale it "
            f"back up at its next evaluation; give min_capacity<={count} too (the plan then lowers "
            "the minimum first) or a count within the bounds"
        )
    if count > want_hi:
        raise BadInputError(
            f"{count_name}={count} is above the maximum {want_hi} of {scaler}, which would scale it "
            f"back down; give max_capacity>={count} too (the plan then raises the maximum first)"
        )
    notes = []
    if (want_lo, want_hi) != (lo, hi):
        notes.append(
            f"{scaler}: bounds {lo}..{hi} -> {want_lo}..{want_hi}, changed before the count so the "
            "scaler does not undo it"
        )
    return want_lo, want_hi, notes


def title(kind: TargetKind, target: str, effect: str) -> str:
    return f"Scale {kind.value} {target}: {effect}"


def request_fields(req: Request) -> Mapping[str, bool]:
    """Which Request fields were given (not at their 'unchanged' value)."""
    return {
        "desired": req.desired != UNCHANGED,
        "delta": req.delta != 0,
        "min_capacity": req.min_capacity != UNCHANGED,
        "max_capacity": req.max_capacity != UNCHANGED,
        "billing_mode": bool(req.billing_mode),
        "read_capacity": bool(req.read_capacity),
        "write_capacity": bool(req.write_capacity),
        "instance_class": bool(req.instance_class),
    }
