"""Backup freshness for the morning check, read through the backup audit's own snapshot readers.

"Is the newest backup of this database younger than a day?" must mean the same in the backup
audit and in the health check, so this module does not list snapshots itself: it calls the
audit's readers (:func:`opslib.aws.snapshots.audit.list_instances`, ``list_clusters``,
``instance_snapshots``, ``cluster_snapshots``, all paginated) and its newest-completed rule, and
measures the age against the audit's :class:`~opslib.aws.snapshots.model.BackupPolicy`
(``max_snapshot_age_hours``: a day plus the backup window). The public-sharing checks of the
audit (one extra call per manual snapshot) are left to the backup runbook: the morning check
only asks how old the newest backup is.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opslib.aws.snapshots import audit
from opslib.aws.snapshots.model import BackupPolicy, SnapshotInfo, hours
from opslib.core.findings import Finding, Severity

SOURCE = "backups"
DEFAULT_POLICY = audit.DEFAULT_POLICY


@dataclass(frozen=True)
class BackupAge:
    """The newest completed snapshot of one database (``newest`` None: there is none)."""

    kind: str  # "instance" or "cluster"
    identifier: str
    newest: _dt.datetime | None
    age_hours: float | None
    snapshots: int


def newest_completed(snaps: Iterable[SnapshotInfo]) -> _dt.datetime | None:
    """The newest available snapshot, automated or manual (the audit's rule, both kinds)."""
    snaps = list(snaps)
    found = [audit.newest_completed(snaps, manual=m) for m in (False, True)]
    return max((t for t in found if t is not None), default=None)


def backup_ages(
    *,
    rds: Any,
    instances: list[str] | None = None,
    now: _dt.datetime | None = None,
    mapper: Callable = map,
) -> list[BackupAge]:
    """The newest backup of every RDS instance and Aurora cluster (or only ``instances``).

    ``mapper`` (``map`` or a bounded thread pool's ``map``) fans the one-per-database snapshot
    listings out; the clients are thread safe.
    """
    now = now or _dt.datetime.now(_dt.UTC)
    targets = [("instance", i) for i in (instances or audit.list_instances(rds=rds))]
    if not instances:
        targets += [("cluster", c) for c in audit.list_clusters(rds=rds)]

    def one(target: tuple[str, str]) -> BackupAge:
        kind, ident = target
        read = audit.instance_snapshots if kind == "instance" else audit.cluster_snapshots
        snaps = read(ident, rds=rds, public_check=False)
        newest = newest_completed(snaps)
        return BackupAge(kind, ident, newest, hours(now, newest), len(snaps))

    return list(mapper(one, targets))


def findings(ages: list[BackupAge], *, policy: BackupPolicy = DEFAULT_POLICY) -> list[Finding]:
    """Red: a database with no completed backup; amber: the newest is older than the policy."""
    out = []
    for b in ages:
        if b.age_hours is None:
            out.append(
                Finding(
                    Severity.CRITICAL,
                    f"Backups: {b.kind} {b.identifier} has no completed snapshot",
                    SOURCE,
                    f"{b.snapshots} snapshot(s) listed, none available",
                    "Enable automated backups (backup retention > 0) and take one now (backup "
                    "runbook, mode=create).",
                    {"database": b.identifier},
                )
            )
        elif b.age_hours > policy.max_snapshot_age_hours:
            out.append(
                Finding(
                    Severity.WARNING,
                    f"Backups: newest snapshot of {b.kind} {b.identifier} is older than a day",
                    SOURCE,
                    f"{b.age_hours:.0f} h old (policy {policy.max_snapshot_age_hours:g} h), "
                    f"taken {b.newest.isoformat(timespec='minutes') if b.newest else '?'}",
                    "Check the backup window and the daily backup job (backup runbook audit); "
                    "take one now (mode=create) before any risky change.",
                    {"database": b.identifier, "age_hours": round(b.age_hours, 1)},
                )
            )
    return out
