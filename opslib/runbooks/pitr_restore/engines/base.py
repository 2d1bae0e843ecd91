"""What every restore engine offers the flow, and the defaults most engines share.

An engine is one object per :class:`~opslib.runbooks.pitr_restore.model.Engine` value,
registered in :mod:`opslib.runbooks.pitr_restore.engines`. The flow calls only these methods;
everything that differs between Aurora, RDS, DynamoDB and PostgreSQL lives behind them.
"""

from __future__ import annotations

import datetime as _dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from opslib.core.errors import BadInputError, PreflightError
from opslib.core.plans import ApplyResult, ChangeStatus, Plan
from opslib.runbooks.pitr_restore.model import (
    Engine,
    Preflight,
    RestoreClients,
    RestoreOutcome,
    RestoreRequest,
    SourceKind,
    Validation,
    iso_precise,
)


class RestoreEngine(ABC):
    """The engine interface: subclasses implement the abstract methods and override the
    defaults where they differ."""

    engine: ClassVar[Engine]
    #: what the restore starts from (a point in time, a snapshot, a backup)
    source_kind: ClassVar[SourceKind] = SourceKind.POINT_IN_TIME
    #: how the engine list in a refusal names it ("Aurora cluster", "table", ...)
    description: ClassVar[str] = ""
    #: the endpoint can be switched in a Secrets Manager secret (cutover_secret)
    supports_cutover: ClassVar[bool] = False
    #: why validation_sql is refused for this engine ("" when it applies)
    validation_sql_refusal: ClassVar[str] = ""
    #: every Change.action the engine's plans (restore and drill cleanup) hold
    actions: ClassVar[frozenset[str]] = frozenset()

    # --- inputs and clients -------------------------------------------------------------------

    @abstractmethod
    def target_for(self, req: RestoreRequest) -> str:
        """Check the engine's own parameters and return the new target's name (or directory)."""
        ...

    @abstractmethod
    def connect(self, req: RestoreRequest) -> RestoreClients:
        """The clients this engine needs, built through :mod:`opslib.clients`."""
        ...

    # --- read only ----------------------------------------------------------------------------

    @abstractmethod
    def preflight(self, req: RestoreRequest, clients: RestoreClients) -> Preflight:
        """Read-only checks; raises a BadInputError subclass when the restore must not go on."""
        ...

    @abstractmethod
    def plan(self, pre: Preflight) -> Plan:
        """The restore's changes (read only)."""
        ...

    @abstractmethod
    def plan_drill_cleanup(self, pre: Preflight) -> Plan:
        """Delete the restored target (never the source)."""
        ...

    # --- apply --------------------------------------------------------------------------------

    def executor_context(self, pre: Preflight) -> Mapping[str, Any]:
        """What the engine's handlers need beyond the clients (bounds, specs, protected names)."""
        req = pre.request
        return {"timeout_s": req.timeout_s, "poll_s": req.poll_seconds}

    def endpoint(self, pre: Preflight, result: ApplyResult) -> tuple[str, int]:
        """(host, port) of the restored target, from what the applied steps reported."""
        endpoint, port = "", 0
        for o in result.outcomes:
            endpoint = o.data.get("endpoint") or endpoint
            port = int(o.data.get("port") or port or 0)
        return endpoint, port

    def what_exists(self, pre: Preflight, result: ApplyResult | None) -> str:
        """After a failed step: what was created so far and how to retry."""
        done = [o for o in (result.outcomes if result else ()) if o.status is ChangeStatus.APPLIED]
        names = ", ".join(o.target for o in done) or "nothing"
        return (
            f"Created so far: {names}. Delete or reuse them before retrying with the same target."
        )

    # --- after the restore --------------------------------------------------------------------

    @abstractmethod
    def validate(
        self, pre: Preflight, outcome: RestoreOutcome, clients: RestoreClients
    ) -> Validation:
        """Source and target side by side (the target side only when it was restored)."""
        ...

    @abstractmethod
    def next_steps(self, pre: Preflight, outcome: RestoreOutcome) -> list[str]:
        """The exact cutover steps after a restore; cutover is never automatic."""
        ...

    def retention_days(self, pre: Preflight) -> tuple[float | None, str]:
        """(days of backup retention, what they are) for the min_retention_days check; None
        when retention does not apply or cannot be read (the check is then skipped)."""
        return None, "retention does not apply to this engine"

    def restore_point(self, pre: Preflight) -> str:
        """The restore point as recorded (UTC, full precision)."""
        return iso_precise(pre.restore_time)


def check_window(
    t: _dt.datetime | None,
    earliest: _dt.datetime | None,
    latest: _dt.datetime | None,
    *,
    hint: str = "",
) -> None:
    """Refuse (PreflightError) a restore time outside the restorable window."""
    if t is None:
        return
    if earliest is not None and t < earliest:
        raise PreflightError(
            f"restore_time {iso_precise(t)} is before the earliest restorable time {iso_precise(earliest)} "
            f"(window {iso_precise(earliest)} .. {iso_precise(latest)}). Choose a time inside the window."
        )
    if latest is not None and t > latest:
        raise PreflightError(
            f"restore_time {iso_precise(t)} is after the latest restorable time {iso_precise(latest)} "
            f"(window {iso_precise(earliest)} .. {iso_precise(latest)}). Choose a time inside the window, or 'latest'.{hint}"
        )


def default_target(source: str, now: _dt.datetime) -> str:
    """<source>-recovery-<UTC yyyymmddHHMM>."""
    return f"{source}-recovery-{now.strftime('%Y%m%d%H%M')}"


def named_target(req: RestoreRequest, *, noun: str) -> str:
    """The target of an AWS engine: given or defaulted, never the source."""
    if not req.source:
        raise BadInputError(
            f"source is required for engine={req.engine.value}: the {noun} id to restore from."
        )
    tgt = req.target or default_target(req.source, req.requested_at)
    if tgt == req.source:
        raise PreflightError("target equals source: a restore never overwrites; give a new name.")
    return tgt
