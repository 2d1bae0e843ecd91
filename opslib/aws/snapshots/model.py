"""The typed values of backup audits and pre-change backups (see :mod:`opslib.aws.snapshots`)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from opslib.clients import translate_aws_error
from opslib.core.findings import RANK, Finding, Severity

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    import pandas as pd

T = TypeVar("T")

SOURCE = "backups"
TAG_TICKET = "opslib:change_ticket"
TAG_RUN_ID = "opslib:run_id"


class ResourceKind(StrEnum):
    """What a backup audit row or a created backup is about."""

    AURORA = "aurora"
    RDS = "rds"
    DYNAMODB = "dynamodb"
    POSTGRES = "postgres"


@dataclass(frozen=True)
class BackupPolicy:
    """What the backup procedures promise: 35-day retention, a snapshot a day, RPO 15 minutes."""

    min_retention_days: int = 35
    max_snapshot_age_hours: float = 26.0
    rpo_minutes: float = 15.0


@dataclass(frozen=True)
class SnapshotInfo:
    """One completed or in-progress snapshot/backup of a resource."""

    identifier: str
    arn: str
    snapshot_type: str  # automated / manual (RDS), SYSTEM / USER (DynamoDB)
    status: str
    created: _dt.datetime | None
    size_bytes: int | None  # RDS reports the allocated GiB of the source, DynamoDB bytes
    public: bool = False

    @property
    def manual(self) -> bool:
        return self.snapshot_type.lower() in ("manual", "user")


@dataclass(frozen=True)
class BackupAudit:
    """The backup posture of one resource against a :class:`BackupPolicy`."""

    resource: str
    kind: ResourceKind
    retention_days: int | None  # None: not applicable (DynamoDB PITR keeps 35 days, fixed)
    pitr: bool
    latest_restorable: _dt.datetime | None
    restore_lag_minutes: float | None
    newest_automated_age_hours: float | None
    newest_manual_age_hours: float | None
    deletion_protection: bool | None
    encrypted: bool | None
    public_snapshots: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def newest_snapshot_age_hours(self) -> float | None:
        ages = [
            a
            for a in (self.newest_automated_age_hours, self.newest_manual_age_hours)
            if a is not None
        ]
        return min(ages) if ages else None

    @property
    def worst(self) -> Severity:
        return min((f.severity for f in self.findings), key=RANK.__getitem__, default=Severity.OK)

    @property
    def ok(self) -> bool:
        """No finding that breaks the policy (critical, error or warning)."""
        return self.worst not in (Severity.CRITICAL, Severity.ERROR, Severity.WARNING)

    def record(self) -> dict[str, Any]:
        """What the evidence record keeps for this resource."""
        return {
            "resource": self.resource,
            "kind": self.kind.value,
            "retention_days": self.retention_days,
            "pitr": self.pitr,
            "latest_restorable": iso(self.latest_restorable),
            "newest_snapshot_age_hours": round_(self.newest_snapshot_age_hours),
            "newest_automated_age_hours": round_(self.newest_automated_age_hours),
            "newest_manual_age_hours": round_(self.newest_manual_age_hours),
            "deletion_protection": self.deletion_protection,
            "encrypted": self.encrypted,
            "public_snapshots": list(self.public_snapshots),
            "worst": self.worst.value,
            "ok": self.ok,
        }


def round_(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def iso(t: _dt.datetime | None) -> str:
    return (
        ""
        if t is None
        else t.astimezone(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def utc(t: Any) -> _dt.datetime | None:
    if t is None or t == "":
        return None
    if isinstance(t, _dt.datetime):
        return t.astimezone(_dt.UTC) if t.tzinfo else t.replace(tzinfo=_dt.UTC)
    return _dt.datetime.fromtimestamp(float(t), _dt.UTC)


def hours(now: _dt.datetime, t: _dt.datetime | None) -> float | None:
    return None if t is None else max(0.0, (now - t).total_seconds() / 3600.0)


def call(what: str, fn: Callable[..., T], /, **params: Any) -> T:
    """One API call; an AWS error becomes the opslib error of its kind, naming ``what``."""
    try:
        return fn(**params)
    except ClientError as exc:
        raise translate_aws_error(exc, what) from exc


def pages(client: Any, op: str, key: str, **kw: Any) -> list[dict[str, Any]]:
    try:
        return [x for page in client.get_paginator(op).paginate(**kw) for x in page.get(key, [])]
    except ClientError as exc:
        raise translate_aws_error(exc, f"{op} {kw or ''}".strip()) from exc


@dataclass(frozen=True)
class AuditReport:
    """Every audited resource, worst first, and the run's verdict."""

    rows: tuple[BackupAudit, ...]
    policy: BackupPolicy = field(default_factory=BackupPolicy)

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for a in self.rows for f in a.findings), key=lambda f: RANK[f.severity])

    @property
    def verdict(self) -> str:
        """critical (a public snapshot, backups off), fail (a policy breach or a failed check), ok."""
        worst = {a.worst for a in self.rows}
        if Severity.CRITICAL in worst:
            return "critical"
        if worst & {Severity.ERROR, Severity.WARNING}:
            return "fail"
        return "ok"

    def summary(self) -> str:
        bad = [a.resource for a in self.rows if not a.ok]
        if not self.rows:
            return "No resource audited."
        if not bad:
            return f"OK: all {len(self.rows)} resources meet the backup policy."
        return f"{self.verdict.upper()}: {len(bad)} of {len(self.rows)} resources fail the backup policy: {', '.join(bad)}."

    def records(self) -> list[dict[str, Any]]:
        return [a.record() for a in self.rows]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        cols = [
            "resource", "kind", "ok", "worst", "retention_days", "pitr", "latest_restorable",
            "newest_automated_age_hours", "newest_manual_age_hours", "deletion_protection",
            "encrypted", "public_snapshots", "issues",
        ]  # fmt: skip
        rows = []
        for a in self.rows:
            r = a.record()
            r["public_snapshots"] = ", ".join(a.public_snapshots)
            r["issues"] = "; ".join(
                f.title.split(": ", 1)[-1] for f in a.findings if f.severity is not Severity.OK
            )
            rows.append({c: r.get(c) for c in cols})
        return pd.DataFrame(rows, columns=cols)


def sort_worst_first(rows: Iterable[BackupAudit]) -> tuple[BackupAudit, ...]:
    return tuple(sorted(rows, key=lambda a: (RANK[a.worst], a.kind.value, a.resource)))
