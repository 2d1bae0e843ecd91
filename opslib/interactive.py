"""Interactive (JupyterLab) pieces: approval buttons, choice widgets, progress.

Placeholder until the JupyterLab issue lands: the approval buttons fall back to a message, so a
notebook never changes anything without an explicit approval.
"""

from __future__ import annotations

from typing import Any


def approval_buttons(plan: Any, **_: Any) -> None:
    """Show the plan with "Approve and apply" / "Cancel"; applies only on a click."""
    print(
        "NOT APPLIED: interactive approval is not available yet; "
        "set approved_by=<your name> in the parameters cell and run again."
    )
