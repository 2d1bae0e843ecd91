"""The operator's gate: the one call a notebook's apply cell makes.

``plan_*`` functions read only and return a :class:`~opslib.core.plans.Plan`. The notebook
shows the plan, then its apply cell calls :func:`gate`, which applies only when ``dry_run`` is
False AND an approval exists: headless, a non-empty ``approved_by``; interactive (JupyterLab),
a click on "Approve and apply". The approval is bound to the plan's hash, so a plan that
changed after it was shown cannot be applied with the old approval.

The gate sits above the runbooks (it talks to the operator); runbooks hand it their
``executor(...)``, which looks each change's action up in :mod:`opslib.core.executors`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opslib import interactive
from opslib.core import runtime
from opslib.core.plans import ApplyResult, Change, ChangeOutcome, Plan, apply, approve

__all__ = ["gate"]


def gate(
    plan: Plan,
    *,
    dry_run: bool,
    approved_by: str,
    change_ticket: str = "",
    execute: Callable[[Change], ChangeOutcome],
    stop_on_error: bool = True,
    on_applied: Callable[[ApplyResult], Any] | None = None,
) -> ApplyResult | None:
    """The one call a notebook's apply cell makes.

    - ``dry_run=True``: shows that nothing changed, returns None.
    - ``dry_run=False`` and ``approved_by`` given: applies now (headless or interactive).
    - ``dry_run=False``, no ``approved_by``, in JupyterLab: shows "Approve and apply" / "Cancel"
      buttons; the click applies (see :mod:`opslib.interactive`) and calls ``on_applied``.
      Returns None at once: a cell never blocks waiting for a click.
    - ``dry_run=False``, no ``approved_by``, headless: not applied, says why, returns None.
    """
    if not dry_run and not approved_by.strip() and not plan.empty and not runtime.is_headless():
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
        return None
    result = apply(plan, approval=approval, execute=execute, stop_on_error=stop_on_error)
    print(f"Applied {result.applied} change(s), {result.failed} failed.")
    if on_applied is not None:
        on_applied(result)
    return result
