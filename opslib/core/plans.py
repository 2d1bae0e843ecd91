"""Plans, approvals and outcomes: the types every mutating runbook speaks, and the apply loop.

``plan_*`` functions in the adapters and runbooks read only and return a :class:`Plan` of
:class:`Change`s (the exact API call, target, expected effect). :func:`apply` performs a plan
change by change, only with an :class:`Approval` naming the plan's hash, and puts every
outcome into the evidence. Operator-facing gating (dry run, buttons) is
:func:`opslib.safety.gate`, which sits above the runbooks and calls :func:`approve` and
:func:`apply`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opslib.core.errors import ApprovalError, BadInputError
from opslib.core.recorder import emit_approval, emit_change, to_jsonable
from opslib.core.runtime import utcnow_iso


class ChangeStatus(StrEnum):
    """What happened to one planned change."""

    PLANNED = "planned"
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Change:
    """One change to the world: the exact API call, its target, the expected effect, its arguments."""

    action: str  # the exact call, e.g. "sqs:SendMessageBatch+DeleteMessageBatch", "pg_terminate_backend"
    target: str  # what it acts on, e.g. "orders-dlq -> orders", "pid 4242 (app@payments)"
    effect: str  # what the operator should expect, e.g. "move 500 messages"
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "effect": self.effect,
            "params": to_jsonable(dict(self.params)),
        }


@dataclass(frozen=True)
class Plan:
    """A read-only proposal: the changes, warnings and blast-radius limits that shaped it."""

    title: str
    changes: tuple[Change, ...] = ()
    warnings: tuple[str, ...] = ()
    limits: Mapping[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes

    def merge(self, *others: Plan | None, title: str | None = None) -> Plan:
        """One plan from several: changes and warnings in order, limits combined (later wins).

        A runbook that plans more than one kind of change (terminate blockers, then scale out)
        builds a plan per kind and merges them, instead of concatenating fields by hand.
        ``None`` entries are skipped, so optional steps merge without an ``if``.
        """
        plans = [self, *(o for o in others if o is not None)]
        limits: dict[str, Any] = {}
        for p in plans:
            limits.update(p.limits)
        return Plan(
            title=self.title if title is None else title,
            changes=tuple(c for p in plans for c in p.changes),
            warnings=tuple(w for p in plans for w in p.warnings),
            limits=limits,
        )

    def digest(self) -> str:
        """SHA-256 of the canonical plan; an approval names this hash."""
        canon = json.dumps(
            {"title": self.title, "changes": [c.to_dict() for c in self.changes]},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(canon.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The plan as it goes into the evidence: title, digest, changes, warnings, limits."""
        return {
            "title": self.title,
            "digest": self.digest(),
            "changes": [c.to_dict() for c in self.changes],
            "warnings": list(self.warnings),
            "limits": to_jsonable(dict(self.limits)),
        }

    def to_frame(self):
        import pandas as pd

        rows = [
            {"#": i + 1, "action": c.action, "target": c.target, "effect": c.effect}
            for i, c in enumerate(self.changes)
        ]
        return pd.DataFrame(rows, columns=["#", "action", "target", "effect"])

    def __str__(self) -> str:
        lines = [f"Plan: {self.title} ({len(self.changes)} change(s), hash {self.digest()[:12]})"]
        lines += [
            f"  {i + 1}. {c.action} {c.target}: {c.effect}" for i, c in enumerate(self.changes)
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.limits:
            lines.append("  limits: " + ", ".join(f"{k}={v}" for k, v in self.limits.items()))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        head = (
            f"<p><b>Plan: {escape(self.title)}</b> &mdash; {len(self.changes)} change(s), "
            f"hash <code>{self.digest()[:12]}</code></p>"
        )
        body = self.to_frame().to_html(index=False) if self.changes else "<p><i>No changes.</i></p>"
        warns = "".join(f"<li>&#9888; {escape(w)}</li>" for w in self.warnings)
        limits = ", ".join(f"{escape(str(k))}={escape(str(v))}" for k, v in self.limits.items())
        return (
            head
            + body
            + (f"<ul>{warns}</ul>" if warns else "")
            + (f"<p>limits: {limits}</p>" if limits else "")
        )


@dataclass(frozen=True)
class Approval:
    """Who approved which plan (its digest), when, through which channel, under which ticket.

    ``via`` is "parameter" (headless ``approved_by``), "button" (JupyterLab) or "opslib approve"
    (approved later from a dry run's bundle, which ``source_bundle`` names).
    """

    approver: str
    plan_hash: str
    approved_at: str
    change_ticket: str = ""
    via: str = "parameter"
    source_bundle: str = ""
    plan_title: str = ""


@dataclass(frozen=True)
class ChangeOutcome:
    """The result of applying one change."""

    action: str
    target: str
    status: ChangeStatus
    detail: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    finished_at: str = ""


@dataclass(frozen=True)
class ApplyResult:
    """Everything an apply did, in order; shown as a table and kept in the evidence."""

    plan_hash: str
    approval: Approval
    outcomes: tuple[ChangeOutcome, ...]

    @property
    def applied(self) -> int:
        return sum(o.status is ChangeStatus.APPLIED for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.status is ChangeStatus.FAILED for o in self.outcomes)

    def to_frame(self):
        import pandas as pd

        rows = [
            {"action": o.action, "target": o.target, "status": o.status.value, "detail": o.detail}
            for o in self.outcomes
        ]
        return pd.DataFrame(rows, columns=["action", "target", "status", "detail"])


def approve(
    plan: Plan, *, dry_run: bool, approved_by: str, change_ticket: str = "", via: str = "parameter"
) -> Approval | None:
    """Headless approval: an :class:`Approval` for exactly this plan, or None (and say why)."""
    if plan.empty:
        print("Nothing to apply: the plan is empty.")
        return None
    if dry_run:
        print(
            f"DRY RUN: nothing changed. {len(plan.changes)} change(s) planned (hash {plan.digest()[:12]})."
        )
        print(
            "To apply: run again with dry_run=False and approved_by=<your name> (and change_ticket)."
        )
        return None
    if not approved_by.strip():
        print("NOT APPLIED: dry_run is False but approved_by is empty; an approval is required.")
        return None
    approval = Approval(
        approver=approved_by.strip(),
        plan_hash=plan.digest(),
        approved_at=utcnow_iso(),
        change_ticket=change_ticket.strip(),
        via=via,
        plan_title=plan.title,
    )
    emit_approval(approval)
    return approval


def apply(
    plan: Plan,
    *,
    approval: Approval | None,
    execute: Callable[[Change], ChangeOutcome],
    stop_on_error: bool = True,
) -> ApplyResult:
    """Apply ``plan`` change by change through ``execute``; each outcome goes into the evidence.

    Refuses (ApprovalError) without an approval naming this plan's hash. When ``execute`` raises,
    the change is recorded as failed and, with ``stop_on_error``, the remaining ones are skipped.
    """
    if approval is None:
        raise ApprovalError(
            "No approval: set dry_run=False and approved_by=<name> (or click Approve)."
        )
    if approval.plan_hash != plan.digest():
        raise ApprovalError(
            "The approval is for a different plan (the plan changed after it was approved); "
            "review the new plan and approve it again."
        )
    outcomes: list[ChangeOutcome] = []
    failed = False
    for change in plan.changes:
        if failed and stop_on_error:
            outcome = ChangeOutcome(
                change.action,
                change.target,
                ChangeStatus.SKIPPED,
                "skipped after an earlier failure",
                finished_at=utcnow_iso(),
            )
        else:
            try:
                outcome = execute(change)
            except Exception as exc:  # noqa: BLE001 - recorded as a failed change and shown
                outcome = ChangeOutcome(
                    change.action,
                    change.target,
                    ChangeStatus.FAILED,
                    f"{type(exc).__name__}: {exc}",
                    finished_at=utcnow_iso(),
                )
            if not outcome.finished_at:
                outcome = ChangeOutcome(
                    outcome.action,
                    outcome.target,
                    outcome.status,
                    outcome.detail,
                    outcome.data,
                    utcnow_iso(),
                )
            failed = failed or outcome.status is ChangeStatus.FAILED
        emit_change(outcome)
        outcomes.append(outcome)
    return ApplyResult(plan_hash=plan.digest(), approval=approval, outcomes=tuple(outcomes))


def check_limit(name: str, requested: int, limit: int) -> None:
    """Blast-radius guard: refuse (BadInputError) when a plan would exceed its limit parameter."""
    if limit >= 0 and requested > limit:
        raise BadInputError(
            f"{requested} exceeds the blast-radius limit {name}={limit}; raise {name} deliberately "
            "if this is really intended, or narrow the selection."
        )


def parse_csv(value: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c'] for comma-separated parameters."""
    return [v.strip() for v in value.split(",") if v.strip()]


def unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return list(seen)


#: Environment variable carrying an approve-later grant into the kernel (set by the runner).
APPROVAL_ENV = "OPSLIB_APPROVAL"
#: Environment variable: how many distinct approvers a change needs (the two-person rule).
REQUIRE_APPROVERS_ENV = "OPSLIB_REQUIRE_APPROVERS"


@dataclass(frozen=True)
class ApprovalGrant:
    """Approvals given later (``opslib approve``) to the plans of one dry run's bundle.

    The approved run applies a plan only if it hashes to one of ``plan_digests``; every
    approval is recorded with who, when and the digest. ``operator`` is who started the dry
    run: under the two-person rule (``require_approvers`` >= 2) it may not approve.
    """

    source_bundle: str
    plan_digests: tuple[str, ...]
    approvals: tuple[Approval, ...]
    require_approvers: int = 1
    operator: str = ""

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(unique(a.approver for a in self.approvals))

    def to_json(self) -> str:
        return json.dumps(to_jsonable(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ApprovalGrant:
        d = json.loads(text)
        return cls(
            source_bundle=d["source_bundle"],
            plan_digests=tuple(d["plan_digests"]),
            approvals=tuple(Approval(**a) for a in d["approvals"]),
            require_approvers=int(d.get("require_approvers", 1)),
            operator=d.get("operator", ""),
        )

    def problems(self, required: int) -> list[str]:
        """Why this grant does not satisfy ``required`` approvers ([] when it does)."""
        out = []
        names = self.approvers
        if len(names) < max(required, 1):
            out.append(
                f"this change needs {required} distinct approvers, it has {len(names)} "
                f"({', '.join(names) or 'none'})"
            )
        if required >= 2 and self.operator and self.operator in names:
            out.append(
                f"{self.operator} started the dry run and cannot also approve it under the "
                "two-person rule"
            )
        return out


def grant_from_env(environ: Mapping[str, str] | None = None) -> ApprovalGrant | None:
    """The approve-later grant the runner put into this kernel's environment, if any."""
    raw = (os.environ if environ is None else environ).get(APPROVAL_ENV, "")
    if not raw:
        return None
    try:
        return ApprovalGrant.from_json(raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise ApprovalError(
            f"{APPROVAL_ENV} does not hold a valid approval ({exc}); run `opslib approve` again."
        ) from exc


def required_approvers(environ: Mapping[str, str] | None = None, default: int = 1) -> int:
    """``OPSLIB_REQUIRE_APPROVERS`` as a number (``default`` when unset); BadInputError if not one."""
    raw = (os.environ if environ is None else environ).get(REQUIRE_APPROVERS_ENV, "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError as exc:
        raise BadInputError(
            f"{REQUIRE_APPROVERS_ENV}={raw!r}: give a whole number of approvers (1 or 2)."
        ) from exc
    if n < 1:
        raise BadInputError(f"{REQUIRE_APPROVERS_ENV}={n}: at least one approver is required.")
    return n


def scaled_count(
    current: int,
    delta: int,
    *,
    param: str,
    what: str,
    unit: str = "",
    max_up: int | None = None,
) -> int:
    """``current + delta`` for a relative scale, or BadInputError naming the parameter and the
    bound it breaks: more than ``max_up`` added in one run (blast radius, when given), or a
    result below 0. Shared by every runbook that scales by a delta (queue-ops, scale)."""
    want = current + delta
    if max_up is not None and delta > max_up:
        raise BadInputError(f"{param}={delta}: at most +{max_up} in one run")
    if want < 0:
        has = f"{current} {unit}".strip()
        raise BadInputError(
            f"{param}={delta}: {what} has {has}, so the result would be {want} (< 0)"
        )
    return want
