"""What the deploy-rollback and rolling-restart notebooks show: revisions, the current vs
target diff, the wait's outcome, the restart sequence. No clients: it shows what it is given."""

from __future__ import annotations

from typing import Any

from opslib.report import show_findings, show_heading, show_table


def show_revisions(revisions: Any) -> None:
    """The revision table (and, for ECS, the service's deployments)."""
    print(
        f"current revision {revisions.current_revision}, "
        f"target revision {revisions.target_revision or 'none'}"
    )
    show_table(revisions.to_frame(), title="Revisions")
    deployments = revisions.deployments_frame()
    if deployments is not None:
        show_table(deployments, title="ECS deployments")


def show_diff(diff: Any) -> None:
    """A pod template diff (text) or a field-by-field table (ECS)."""
    show_heading("Current vs target")
    if hasattr(diff, "columns"):
        show_table(diff)
    else:
        print(diff)


def show_wait(waited: Any) -> None:
    """The wait's last word, as a finding; says so when nothing was applied."""
    if waited is None:
        print("Nothing applied: no rollout to wait for.")
        return
    print(waited.message)
    show_findings([waited.finding], title="Rollout")


def show_sequence(outcome: Any) -> None:
    """Restarted, failed and not started targets of a rolling restart, in order."""
    show_table(outcome.to_frame(), title="Restart sequence")
    for line in outcome.notes:
        print(line)
