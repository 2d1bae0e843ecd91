"""Tables for the backup runbook: the audit worst first, its findings, and what was created."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opslib.report import _display, show_findings, show_heading, show_table

if TYPE_CHECKING:
    import pandas as pd

    from opslib.aws.snapshots import AuditReport
    from opslib.runbooks.backup import CreateOutcome

_COLORS = {"critical": "#f8d0cd", "error": "#fde2e1", "warning": "#fff3cd"}


def _style(frame: pd.DataFrame) -> object:
    def color(row):
        bg = _COLORS.get(str(row.get("worst", "")), "")
        return [f"background-color: {bg}" if bg else "" for _ in row]

    try:
        return frame.style.apply(color, axis=1).hide(axis="index")
    except (ImportError, AttributeError):  # jinja2 missing: plain frame
        return frame


def show_audit(report: AuditReport) -> None:
    """One row per resource, worst first, then the findings with their next actions."""
    p = report.policy
    show_heading(
        f"Backup posture vs policy: retention >= {p.min_retention_days} d, newest snapshot <= "
        f"{p.max_snapshot_age_hours:g} h, RPO <= {p.rpo_minutes:g} min"
    )
    frame = report.to_frame()
    _display(_style(frame)) if len(frame) else print("(no resource audited)")
    show_findings(report.findings, title="Findings (worst first)")
    print(report.summary())


def show_created(created: CreateOutcome) -> None:
    """Each snapshot/backup with its id or ARN, size, time and status."""
    show_table(created.to_frame(), title=f"Backups: {created.status.value}")
