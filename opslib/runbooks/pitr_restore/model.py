"""The typed values the pitr-restore flow passes between its steps (and its engines).

Every engine module reads a :class:`RestoreRequest`, returns a :class:`Preflight`, and builds
:class:`Validation` rows; the flow turns an :class:`~opslib.core.plans.ApplyResult` into a
:class:`RestoreOutcome` (the restore) or a :class:`StepOutcome` (cutover, drill cleanup).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from opslib.core.plans import ApplyResult

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    import pandas as pd
    import psycopg
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

RUNBOOK = "pitr-restore"


class Engine(StrEnum):
    """What is restored; each value has its module in :mod:`.engines`."""

    AURORA = "aurora"
    RDS = "rds"
    DYNAMODB = "dynamodb"
    POSTGRES = "postgres"


class SourceKind(StrEnum):
    """What a restore starts from; an engine is registered per (Engine, SourceKind)."""

    POINT_IN_TIME = "point_in_time"  # continuous backups / base backup + WAL, at restore_time
    SNAPSHOT = "snapshot"  # an RDS/Aurora snapshot (from_snapshot)
    BACKUP = "backup"  # a DynamoDB on-demand backup (from_backup)


class RestoreStatus(StrEnum):
    """Where a run ended."""

    DRY_RUN = "dry_run"  # plan shown, nothing created
    NOT_APPROVED = "not_approved"  # dry_run=False but no approval (or awaiting a click)
    RESTORED = "restored"  # target created, not validated yet
    VALIDATED = "validated"  # target created and validated
    UNVALIDATED = "unvalidated"  # target created, validation could not run completely
    FAILED = "failed"


class CheckResult(StrEnum):
    """The verdict of one preflight check (a refusal raises instead)."""

    OK = "ok"
    WARNING = "warning"
    SKIPPED = "skipped"


class StepStatus(StrEnum):
    """Where a gated step after the restore (cutover, drill cleanup) ended."""

    NOTHING_TO_DO = "nothing_to_do"  # the plan is empty
    DRY_RUN = "dry_run"
    NOT_APPROVED = "not_approved"  # no approval (or awaiting a click)
    APPLIED = "applied"
    FAILED = "failed"


@dataclass(frozen=True)
class RestoreRequest:
    """The runbook parameters, checked and normalised (no client used yet)."""

    engine: Engine
    source: str
    restore_time_param: str
    restore_time: _dt.datetime | None  # None = latest restorable
    target: str
    instance_class: str = ""
    validation_sql: str = ""
    drill: bool = False
    wait_timeout_minutes: int = 60
    region: str = ""
    pg_base_backup: str = ""
    pg_wal_archive: str = ""
    pg_target_dir: str = ""
    pg_target_port: int = 0
    cutover_secret: str = ""
    requested_at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))
    poll_seconds: float = 15.0
    from_snapshot: str = ""
    from_backup: str = ""
    target_region: str = ""
    target_az: str = ""
    rto_minutes: float = 0.0
    rpo_minutes: float = 0.0
    min_retention_days: int = 35
    route53_record: str = ""  # "zone_id/name" (validated), "" = no DNS change

    @property
    def route53_zone(self) -> str:
        return self.route53_record.split("/", 1)[0] if self.route53_record else ""

    @property
    def route53_name(self) -> str:
        return self.route53_record.split("/", 1)[1] if self.route53_record else ""

    @property
    def source_kind(self) -> SourceKind:
        if self.from_snapshot:
            return SourceKind.SNAPSHOT
        if self.from_backup:
            return SourceKind.BACKUP
        return SourceKind.POINT_IN_TIME

    @property
    def timeout_s(self) -> float:
        return float(self.wait_timeout_minutes) * 60.0


@dataclass(frozen=True)
class RestoreClients:
    """The clients one restore uses; built by the engine's ``connect`` through :mod:`opslib.clients`."""

    rds: RDSClient | None = None
    dynamodb: DynamoDBClient | None = None
    secretsmanager: SecretsManagerClient | None = None
    source_conn: psycopg.Connection | None = None  # postgres: read-only, validation only
    rds_source: RDSClient | None = None  # a snapshot copied to another region: its home region
    route53: Any = None  # a boto3 route53 client, only with route53_record


class RestoreSource(Protocol):
    """What an engine's preflight found about the source (a cluster, a table, a backup...)."""

    def settings_frame(self) -> pd.DataFrame:
        """What a bare restore drops and how the plan carries it (may be empty)."""
        ...


@dataclass(frozen=True)
class Check:
    """One read-only preflight check that passed (or was skipped, or warns)."""

    check: str
    result: CheckResult
    detail: str


@dataclass(frozen=True)
class Preflight:
    """What was checked before anything changes, and what the restore will target."""

    request: RestoreRequest
    source: RestoreSource  # rds.DbSource | dynamodb.TableSource | postgres.PgSource
    target: str
    earliest: _dt.datetime | None
    latest: _dt.datetime | None
    # resolved (UTC); None only for postgres "latest" without an archive time
    restore_time: _dt.datetime | None
    checks: tuple[Check, ...]
    rpo: RpoCheck | None = None  # set by the flow's preflight (every engine)

    @property
    def engine(self) -> Engine:
        return self.request.engine

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [(c.check, c.result.value, c.detail) for c in self.checks]
        return pd.DataFrame(rows, columns=["check", "result", "detail"])

    def window_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            ("earliest restorable", iso(self.earliest), epoch(self.earliest)),
            (
                "restore to",
                iso(self.restore_time) if self.restore_time else "latest",
                epoch(self.restore_time),
            ),
            ("latest restorable", iso(self.latest), epoch(self.latest)),
        ]
        return pd.DataFrame(rows, columns=["point", "UTC", "epoch seconds"])

    def settings_frame(self) -> pd.DataFrame:
        """What a bare restore drops and how this plan carries it (Aurora/RDS/DynamoDB)."""
        return self.source.settings_frame()


@dataclass(frozen=True)
class RestoreOutcome:
    """What the restore did: status, the target and how to reach it, when the approval happened."""

    engine: Engine
    status: RestoreStatus
    target: str
    endpoint: str = ""
    port: int = 0
    plan_hash: str = ""
    approved_by: str = ""
    approved_at: str = ""
    approved_monotonic: float = 0.0  # time.monotonic() at approval (for time_to_restore)
    restored_seconds: float = 0.0
    apply_result: ApplyResult | None = None
    detail: str = ""

    @property
    def restored(self) -> bool:
        return self.status in (
            RestoreStatus.RESTORED,
            RestoreStatus.VALIDATED,
            RestoreStatus.UNVALIDATED,
        )

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        if self.apply_result is None:
            return pd.DataFrame([{"status": self.status.value, "detail": self.detail}])
        frame = self.apply_result.to_frame()
        frame["seconds"] = [o.data.get("seconds", "") for o in self.apply_result.outcomes]
        return frame


@dataclass(frozen=True)
class StepOutcome:
    """What a gated step after the restore (cutover, drill cleanup) did."""

    status: StepStatus
    plan_hash: str = ""
    apply_result: ApplyResult | None = None
    detail: str = ""  # what was (not) done and, when not applied, which parameter approves it

    @property
    def applied(self) -> bool:
        """Every change of the step was applied."""
        return self.status is StepStatus.APPLIED

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        if self.apply_result is None:
            return pd.DataFrame([{"status": self.status.value, "detail": self.detail}])
        return self.apply_result.to_frame()


@dataclass(frozen=True)
class RtoCheck:
    """The measured time to restore (approval -> validated target) against ``rto_minutes``."""

    rto_minutes: float
    measured_seconds: float | None
    met: bool | None  # None: no RTO given (0) or nothing restored/validated

    @property
    def verdict(self) -> str:
        if not self.rto_minutes:
            return "no RTO given"
        if self.met is None:
            return f"RTO {self.rto_minutes:g} min: not measured (nothing validated)"
        took = f"{(self.measured_seconds or 0) / 60:.1f} min"
        return f"RTO {self.rto_minutes:g} min {'met' if self.met else 'MISSED'}: restored in {took}"


@dataclass(frozen=True)
class RpoCheck:
    """The lag of the latest restorable time (how much data a restore now loses) against ``rpo_minutes``."""

    rpo_minutes: float
    lag_seconds: float | None  # now - latest restorable; None when the engine cannot tell
    met: bool | None  # None: no RPO given (0) or the lag is unknown

    @property
    def verdict(self) -> str:
        if not self.rpo_minutes:
            return "no RPO given"
        if self.lag_seconds is None:
            return f"RPO {self.rpo_minutes:g} min: not checked (latest restorable time unknown)"
        lag = f"{self.lag_seconds / 60:.1f} min"
        return (
            f"RPO {self.rpo_minutes:g} min {'met' if self.met else 'MISSED'}: "
            f"the latest restorable time is {lag} old"
        )


@dataclass(frozen=True)
class ValidationRow:
    """One check on source and target side by side."""

    check: str
    source: Any
    target: Any
    match: bool | None  # None: not comparable (e.g. target not restored)
    difference: str = ""


@dataclass(frozen=True)
class Validation:
    """Source vs target, a sample of restored data, and the time from approval to validated target."""

    status: RestoreStatus
    kind: str  # "row counts", "validation_sql", "item counts", "status and settings"
    rows: tuple[ValidationRow, ...] = ()
    sample: tuple[Mapping[str, Any], ...] = ()
    errors: tuple[str, ...] = ()
    validated_at: str = ""
    time_to_restore_seconds: float | None = None

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {
                "check": r.check,
                "source": cell(r.source),
                "target": cell(r.target),
                "match": "" if r.match is None else ("yes" if r.match else "NO"),
                "difference": r.difference,
            }
            for r in self.rows
        ]
        return pd.DataFrame(rows, columns=["check", "source", "target", "match", "difference"])

    def records(self) -> list[dict[str, Any]]:
        """Per check: source value, target value, match (what the evidence record keeps)."""
        return [
            {
                "check": r.check,
                "source": cell(r.source),
                "target": cell(r.target),
                "match": r.match,
            }
            for r in self.rows
        ]


# --- helpers the engines share ---------------------------------------------------------------


def cell(v: Any) -> Any:
    """A value as a table cell / JSON scalar (anything else as its text)."""
    if isinstance(v, int | float | str | bool) or v is None:
        return v
    return str(v)


def iso(t: _dt.datetime | None) -> str:
    """UTC, to the second, for tables and messages."""
    if t is None:
        return "(unknown)"
    return t.astimezone(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def epoch(t: _dt.datetime | None) -> str:
    """Unix epoch seconds (what ``aws dynamodb ... --restore-date-time`` takes), "" when unknown."""
    if t is None:
        return ""
    ts = t.timestamp()
    return f"{ts:.0f}" if ts == int(ts) else f"{ts:.3f}"


def iso_precise(t: _dt.datetime | None) -> str:
    """UTC, full precision, for the record and the window refusals."""
    if t is None:
        return "(unknown)"
    return t.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def _diff(a: Any, b: Any) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        d = b - a
        return f"{d:+}" if d else ""
    return "" if a == b else "differs"


def compare(check: str, a: Any, b: Any) -> ValidationRow:
    """A row that matches when both sides are equal; numbers show their difference."""
    return ValidationRow(check, a, b, a == b, _diff(a, b))


def side_by_side(
    src: Mapping[str, Any] | None, tgt: Mapping[str, Any] | None
) -> tuple[ValidationRow, ...]:
    """Rows for every key of either side; a side not read (None) makes the rows not comparable."""
    keys = list(dict.fromkeys([*(src or {}), *(tgt or {})]))
    rows = []
    for k in keys:
        a = (src or {}).get(k, "(missing)") if src is not None else "(not read)"
        b = (tgt or {}).get(k, "(missing)") if tgt is not None else "(not restored)"
        if src is None or tgt is None:
            rows.append(ValidationRow(k, a, b, None, ""))
        else:
            rows.append(compare(k, a, b))
    return tuple(rows)
