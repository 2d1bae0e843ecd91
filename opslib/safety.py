"""The operator's gate: the one call a notebook's apply cell makes.

``plan_*`` functions read only and return a :class:`~opslib.core.plans.Plan`. The notebook
shows the plan, then its apply cell calls :func:`gate`, which applies only when ``dry_run`` is
False AND an approval exists: headless, a non-empty ``approved_by``; interactive (JupyterLab),
a click on "Approve and apply"; approved later, the grant ``opslib approve`` passed in through
the runner. Every approval is bound to the plan's digest, so a plan that changed after it was
shown cannot be applied with the old approval.

Every call puts the plan it was shown, its digest and what was decided into the evidence
(:func:`opslib.core.recorder.emit_plan`): a dry run's bundle is what ``opslib approve`` later
approves. Under the two-person rule (``OPSLIB_REQUIRE_APPROVERS=2``) a change applies only
through such a grant with two distinct approvers, neither of them the dry run's operator.

The gate sits above the runbooks (it talks to the operator); runbooks hand it their
``executor(...)``, which looks each change's action up in :mod:`opslib.core.executors`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opslib import interactive
from opslib.core import runtime
from opslib.core.errors import PlanChangedError, TwoPersonRuleError
from opslib.core.plans import (
    ApplyResult,
    Approval,
    ApprovalGrant,
    Change,
    ChangeOutcome,
    Plan,
    apply,
    approve,
    grant_from_env,
    required_approvers,
)
from opslib.core.recorder import emit_approval, emit_plan

__all__ = ["PlanChangedError", "TwoPersonRuleError", "gate"]

WORLD_CHANGED = "the world changed since the plan; review the new plan"


def _record_plan(plan: Plan, decision: str, **extra: Any) -> None:
    emit_plan({**plan.to_dict(), "decision": decision, **extra})


def gate(
    plan: Plan,
    *,
    dry_run: bool,
    approved_by: str,
    change_ticket: str = "",
    execute: Callable[[Change], ChangeOutcome],
    stop_on_error: bool = True,
    on_applied: Callable[[ApplyResult], Any] | None = None,
    require_approvers: int | None = None,
) -> ApplyResult | None:
    """The one call a notebook's apply cell makes.

    - ``dry_run=True``: shows that nothing changed, records the plan and its digest, returns None.
    - ``dry_run=False`` and ``approved_by`` given: applies now (headless or interactive); in
      a run started by ``opslib approve``, only if the plan hashes to the approved digest
      (else :class:`PlanChangedError`, exit 2, nothing applied).
    - ``dry_run=False``, no ``approved_by``, in JupyterLab: shows "Approve and apply" / "Cancel"
      buttons; the click applies (see :mod:`opslib.interactive`) and calls ``on_applied``.
      Returns None at once: a cell never blocks waiting for a click.
    - ``dry_run=False``, no ``approved_by``, headless: not applied, says why, returns None.

    ``require_approvers`` (default ``OPSLIB_REQUIRE_APPROVERS``, else 1) of 2 or more makes a
    change need that many distinct approvers given through ``opslib approve``.
    """
    required = require_approvers or required_approvers()
    grant = grant_from_env()
    wants_apply = not dry_run and not plan.empty
    if wants_apply and approved_by.strip() and grant is not None:
        return _apply_granted(plan, grant, required, execute, stop_on_error, on_applied)
    if wants_apply and required >= 2:
        _record_plan(plan, "refused: needs more approvers", require_approvers=required)
        msg = (
            f"NOT APPLIED: this change needs {required} distinct approvers (two-person rule), "
            "neither of them the operator who runs it. Run it dry, then have each approver run "
            "`opslib approve BUNDLE --by NAME` on the dry run's bundle."
        )
        if runtime.is_headless():
            raise TwoPersonRuleError(msg)
        print(msg)
        return None
    if wants_apply and not approved_by.strip() and not runtime.is_headless():
        _record_plan(plan, "waiting for a click")
        interactive.approval_buttons(
            plan,
            change_ticket=change_ticket,
            execute=execute,
            stop_on_error=stop_on_error,
            on_applied=on_applied,
        )
        return None
    approval = approve(plan, dry_run=dry_run, approved_by=approved_by, change_ticket=change_ticket)
    if approval is None:
        decision = "empty" if plan.empty else ("dry run" if dry_run else "not approved")
        _record_plan(plan, decision)
        return None
    _record_plan(plan, "approved", approvers=[approval.approver])
    return _apply(plan, approval, execute, stop_on_error, on_applied)


def _apply(
    plan: Plan,
    approval: Approval,
    execute: Callable[[Change], ChangeOutcome],
    stop_on_error: bool,
    on_applied: Callable[[ApplyResult], Any] | None,
) -> ApplyResult:
    result = apply(plan, approval=approval, execute=execute, stop_on_error=stop_on_error)
    print(f"Applied {result.applied} change(s), {result.failed} failed.")
    if on_applied is not None:
        on_applied(result)
    return result


def _apply_granted(
    plan: Plan,
    grant: ApprovalGrant,
    required: int,
    execute: Callable[[Change], ChangeOutcome],
    stop_on_error: bool,
    on_applied: Callable[[ApplyResult], Any] | None,
) -> ApplyResult:
    """Apply under an ``opslib approve`` grant: same digest, enough distinct approvers."""
    digest = plan.digest()
    if digest not in grant.plan_digests:
        _record_plan(plan, "refused: digest changed", approved_digests=list(grant.plan_digests))
        print(plan)
        raise PlanChangedError(
            f"{WORLD_CHANGED}. The plan computed now hashes {digest[:12]}, the approval from "
            f"{grant.source_bundle} is for {', '.join(d[:12] for d in grant.plan_digests)}. "
            "Nothing was applied: run the dry run again and approve its bundle."
        )
    problems = grant.problems(max(required, grant.require_approvers))
    if problems:
        _record_plan(plan, "refused: needs more approvers")
        raise TwoPersonRuleError("NOT APPLIED: " + "; ".join(problems) + ".")
    approvals = [
        Approval(
            approver=a.approver,
            plan_hash=digest,
            approved_at=a.approved_at,
            change_ticket=a.change_ticket,
            via="opslib approve",
            source_bundle=grant.source_bundle,
            plan_title=plan.title,
        )
        for a in grant.approvals
    ]
    for a in approvals:
        emit_approval(a)
    print(
        f"Approved later by {', '.join(grant.approvers)} (dry run {grant.source_bundle}); "
        f"the plan still hashes {digest[:12]}."
    )
    _record_plan(
        plan, "approved", approvers=list(grant.approvers), source_bundle=grant.source_bundle
    )
    return _apply(plan, approvals[0], execute, stop_on_error, on_applied)
