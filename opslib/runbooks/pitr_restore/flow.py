"""The pitr-restore flow: the steps its notebook runs, the same for every engine.

    inputs(...) -> RestoreRequest            parameters checked, nothing read yet
    connect(req) -> RestoreClients           only the clients this engine needs (opslib.clients)
    preflight(req, clients=) -> Preflight    read only: source, window, target free; refuses here
    plan(pre) -> Plan                        the exact calls, with what is carried from the source
    executor(pre, clients=)                  what opslib.safety.gate applies a plan with
    outcome(pre, plan, result, ...)          the restore's RestoreOutcome (raises on a failed step)
    validate(pre, outcome, clients=)         source vs target side by side, timing
    next_steps(pre, outcome)                 cutover is never automatic
    plan_cutover / cutover_outcome           optional secret update, its own approval
    plan_drill_cleanup / cleanup_outcome     drill mode: delete the drill target, gated
    final_status / resolved_restore_time / endpoint   what the record keeps

The notebook calls :func:`opslib.safety.gate` itself (runbooks sit below the operator's
gate); in JupyterLab the click's result comes from ``opslib.interactive.applied(plan)``.
Everything engine-specific is asked of the engine registered in :mod:`.engines`.

Every refusal raises a BadInputError subclass from :mod:`opslib.core.errors` (exit 2) before
anything is created: a restore time that is malformed, in the future or outside the
restorable window; a target that exists; a missing source; a pg_target_dir that exists; an
unknown engine.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from dataclasses import dataclass, field

from opslib.aws import secrets
from opslib.core import executors
from opslib.core.errors import BadInputError, OpslibError, PreflightError, RestoreFailedError
from opslib.core.plans import ApplyResult, Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.progress import ProgressFactory, default_progress
from opslib.runbooks.pitr_restore import engines
from opslib.runbooks.pitr_restore.model import (
    Engine,
    Preflight,
    RestoreClients,
    RestoreOutcome,
    RestoreRequest,
    RestoreStatus,
    StepOutcome,
    StepStatus,
    Validation,
    iso,
)

# --- parameters ------------------------------------------------------------------------------


def parse_restore_time(value: str, *, now: _dt.datetime | None = None) -> _dt.datetime | None:
    """'latest' -> None; ISO 8601 (Z, offset, or naive = UTC) -> aware UTC datetime.

    Refuses (BadInputError) a malformed value and (PreflightError) one in the future.
    """
    now = now or _dt.datetime.now(_dt.UTC)
    v = (value or "").strip()
    if v.lower() in ("", "latest"):
        return None
    try:
        t = _dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise BadInputError(
            f"restore_time {value!r} is not an ISO 8601 time. Use e.g. 2024-01-22T14:00:00Z (UTC) "
            "or 'latest'."
        ) from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    t = t.astimezone(_dt.UTC)
    if t > now:
        raise PreflightError(
            f"restore_time {iso(t)} is in the future (now {iso(now)}). Give a past time, or 'latest'."
        )
    return t


def inputs(
    *,
    engine: str,
    source: str = "",
    restore_time: str = "latest",
    target: str = "",
    instance_class: str = "",
    validation_sql: str = "",
    drill: bool = False,
    wait_timeout_minutes: int = 60,
    region: str = "",
    pg_base_backup: str = "",
    pg_wal_archive: str = "",
    pg_target_dir: str = "",
    pg_target_port: int = 0,
    cutover_secret: str = "",
    poll_seconds: float = 15.0,
) -> RestoreRequest:
    """Check the parameters (no client, nothing changed); refuses with a message saying what to give."""
    impl = engines.get(engine)
    now = _dt.datetime.now(_dt.UTC)
    t = parse_restore_time(restore_time, now=now)
    if wait_timeout_minutes <= 0:
        raise BadInputError("wait_timeout_minutes must be > 0 (how long to wait for the restore).")
    req = RestoreRequest(
        engine=impl.engine,
        source=(source or "").strip(),
        restore_time_param=restore_time,
        restore_time=t,
        target=(target or "").strip(),
        instance_class=instance_class.strip(),
        validation_sql=validation_sql.strip(),
        drill=bool(drill),
        wait_timeout_minutes=int(wait_timeout_minutes),
        region=region.strip(),
        pg_base_backup=pg_base_backup.strip(),
        pg_wal_archive=pg_wal_archive.strip(),
        pg_target_dir=pg_target_dir.strip(),
        pg_target_port=int(pg_target_port),
        cutover_secret=cutover_secret.strip(),
        requested_at=now,
        poll_seconds=poll_seconds,
    )
    req = dataclasses.replace(req, target=impl.target_for(req))
    if req.cutover_secret and not impl.supports_cutover:
        able = "/".join(e.engine.value for e in engines.registered() if e.supports_cutover)
        raise BadInputError(
            f"cutover_secret applies to {able} endpoints only; leave it empty for this engine."
        )
    if req.cutover_secret and req.drill:
        raise BadInputError(
            "cutover_secret with drill=True: a drill target is deleted after validation, so the "
            "secret must not point at it. Run the drill without cutover_secret."
        )
    if req.validation_sql and impl.validation_sql_refusal:
        raise BadInputError(impl.validation_sql_refusal)
    return req


def connect(req: RestoreRequest) -> RestoreClients:
    """The clients this engine needs, from the standard chains (opslib.clients builds them)."""
    return engines.get(req.engine).connect(req)


# --- read only -------------------------------------------------------------------------------


def preflight(req: RestoreRequest, *, clients: RestoreClients) -> Preflight:
    """Read-only checks; raises (exit 2) before anything is created when the restore must not go on."""
    return engines.get(req.engine).preflight(req, clients)


def plan(pre: Preflight) -> Plan:
    """The restore's changes (read only)."""
    return engines.get(pre.engine).plan(pre)


# --- apply (the notebook's gate calls the executor) ------------------------------------------


@dataclass(eq=False)
class RestoreExecutor:
    """The executor :func:`opslib.safety.gate` applies this restore's plans with.

    It dispatches each change through :func:`opslib.core.executors.bind` (clients and bounds
    bound once) and remembers when the first change started and the last one ended, so the
    time to restore counts from the approval, and the first error a step raised, so a failed
    restore is reported with its own error type. It is the one mutable object of the flow:
    the gate calls it, :func:`outcome` reads it.
    """

    dispatch: executors.Executor
    started: float = 0.0  # time.monotonic() when the first change started (right after approval)
    finished: float = 0.0  # time.monotonic() when the last change ended
    errors: list[BaseException] = field(default_factory=list)

    def __call__(self, change: Change) -> ChangeOutcome:
        if not self.started:
            self.started = time.monotonic()
        try:
            return self.dispatch(change)
        except Exception as exc:  # kept (typed) for outcome(); the gate records the failure
            self.errors.append(exc)
            raise
        finally:
            self.finished = time.monotonic()


def executor(
    pre: Preflight, *, clients: RestoreClients, progress: ProgressFactory = default_progress
) -> RestoreExecutor:
    """The executor for this run's plans (restore, cutover, drill cleanup): each change goes to
    the handler its adapter registered, with this run's clients, wait bounds and ``progress``
    (for the waits that show one)."""
    impl = engines.get(pre.engine)
    dispatch = executors.bind(
        {**impl.executor_context(pre), "progress": progress},
        allowed=impl.actions,
        rds=clients.rds,
        dynamodb=clients.dynamodb,
        secretsmanager=clients.secretsmanager,
    )
    return RestoreExecutor(dispatch)


def outcome(
    pre: Preflight,
    restore_plan: Plan,
    result: ApplyResult | None,
    *,
    executor: RestoreExecutor,
    dry_run: bool,
) -> RestoreOutcome:
    """The restore's outcome from the gate's result (``result or interactive.applied(plan)``).

    Raises when a step failed: the step's own OpslibError (with what exists now), else
    RestoreFailedError. The time of approval is when the first step started, so
    ``time_to_restore_seconds`` measures approval -> validated target, as the DR drill asks.
    """
    if result is None:
        status = RestoreStatus.DRY_RUN if dry_run else RestoreStatus.NOT_APPROVED
        detail = "dry run: nothing created" if dry_run else "not applied: no approval yet"
        return RestoreOutcome(
            pre.engine, status, pre.target, plan_hash=restore_plan.digest(), detail=detail
        )
    impl = engines.get(pre.engine)
    if result.failed:
        err = executor.errors[0] if executor.errors else None
        failed = next(o for o in result.outcomes if o.status is ChangeStatus.FAILED)
        exists = impl.what_exists(pre, result)
        if isinstance(err, OpslibError) and not isinstance(err, BadInputError):
            raise type(err)(f"{err}\n{exists}") from err
        raise RestoreFailedError(
            f"Restore step {failed.action} on {failed.target} failed: {failed.detail}\n{exists}"
        ) from err
    host, port = impl.endpoint(pre, result)
    t0 = executor.started
    return RestoreOutcome(
        engine=pre.engine,
        status=RestoreStatus.RESTORED,
        target=pre.target,
        endpoint=host,
        port=port,
        plan_hash=result.plan_hash,
        approved_by=result.approval.approver,
        approved_at=result.approval.approved_at,
        approved_monotonic=t0,
        restored_seconds=round(executor.finished - t0, 3) if t0 else 0.0,
        apply_result=result,
        detail="; ".join(o.detail for o in result.outcomes if o.detail),
    )


# --- validation ------------------------------------------------------------------------------


def validate(pre: Preflight, outcome: RestoreOutcome, *, clients: RestoreClients) -> Validation:
    """Run the checks on source and target; the target side only when it was restored."""
    v = engines.get(pre.engine).validate(pre, outcome, clients)
    if not outcome.restored:
        return dataclasses.replace(
            v, status=outcome.status, validated_at="", time_to_restore_seconds=None
        )
    ok = not v.errors
    ttr = (
        round(time.monotonic() - outcome.approved_monotonic, 3)
        if ok and outcome.approved_monotonic
        else None
    )
    return dataclasses.replace(
        v,
        status=RestoreStatus.VALIDATED if ok else RestoreStatus.UNVALIDATED,
        validated_at=iso(_dt.datetime.now(_dt.UTC)),
        time_to_restore_seconds=ttr,
    )


# --- after the restore -----------------------------------------------------------------------


def next_steps(pre: Preflight, outcome: RestoreOutcome) -> list[str]:
    """The exact cutover steps for this engine; cutover is never automatic."""
    if not outcome.restored:
        return [
            "Nothing was restored. Review the plan; to restore, run again with dry_run=False and approved_by=<your name>."
        ]
    return engines.get(pre.engine).next_steps(pre, outcome)


def _step(plan_: Plan, result: ApplyResult | None, *, dry_run: bool) -> StepOutcome:
    if result is not None:
        status = StepStatus.FAILED if result.failed else StepStatus.APPLIED
        return StepOutcome(status, result.plan_hash, result)
    if plan_.empty:
        return StepOutcome(StepStatus.NOTHING_TO_DO, plan_.digest())
    return StepOutcome(StepStatus.DRY_RUN if dry_run else StepStatus.NOT_APPROVED, plan_.digest())


def plan_cutover(pre: Preflight, outcome: RestoreOutcome, *, clients: RestoreClients) -> Plan:
    """Plan the optional secret update (empty plan without cutover_secret or a restored endpoint)."""
    secret = pre.request.cutover_secret
    if not secret:
        return Plan(title="Cutover: no cutover_secret given (cutover stays manual)")
    if not outcome.restored or not outcome.endpoint:
        return Plan(
            title=f"Cutover of {secret}: nothing restored yet",
            warnings=("Restore first; the secret is untouched.",),
        )
    return secrets.plan_cutover(secret, outcome.endpoint, secretsmanager=clients.secretsmanager)


def cutover_outcome(
    cutover_plan: Plan, result: ApplyResult | None, *, dry_run: bool
) -> StepOutcome:
    """The secret update's outcome (its own approval, ``cutover_approved_by``); raises on failure."""
    step = _step(cutover_plan, result, dry_run=dry_run)
    if step.status is StepStatus.FAILED and result is not None:
        failed = next(o for o in result.outcomes if o.status is ChangeStatus.FAILED)
        raise RestoreFailedError(
            f"Cutover failed: {failed.detail}. The previous secret version is still current."
        )
    return step


def plan_drill_cleanup(pre: Preflight, outcome: RestoreOutcome) -> Plan:
    """Drill mode: delete the drill target after validation (empty plan otherwise)."""
    if not pre.request.drill:
        return Plan(title="Drill cleanup: not a drill (drill=False); the restored target stays")
    if not outcome.restored:
        return Plan(title="Drill cleanup: nothing was restored")
    return engines.get(pre.engine).plan_drill_cleanup(pre)


def cleanup_outcome(
    pre: Preflight, cleanup_plan: Plan, result: ApplyResult | None, *, dry_run: bool
) -> StepOutcome:
    """The drill cleanup's outcome; raises RestoreFailedError when a deletion failed."""
    step = _step(cleanup_plan, result, dry_run=dry_run)
    if step.status is StepStatus.FAILED and result is not None:
        raise RestoreFailedError(
            f"Drill cleanup failed: {'; '.join(o.detail for o in result.outcomes if o.detail)}. The drill "
            f"target {pre.target} may still exist: delete it by hand."
        )
    return step


def final_status(
    outcome: RestoreOutcome, validation: Validation, cleanup: StepOutcome | None = None
) -> str:
    """One word for the record: dry_run, not_approved, validated, unvalidated (+ _drill_cleaned)."""
    status = validation.status.value if outcome.restored else outcome.status.value
    if cleanup is not None and cleanup.applied:
        status += "_drill_cleaned"
    return status


def resolved_restore_time(pre: Preflight) -> str:
    """The restore point as recorded (UTC, full precision); 'latest (~time)' for postgres latest."""
    return engines.get(pre.engine).restore_point(pre)


def endpoint(outcome: RestoreOutcome) -> str:
    """host:port of the restored target ("" for DynamoDB or when nothing was restored)."""
    if not outcome.endpoint:
        return ""
    return f"{outcome.endpoint}:{outcome.port}" if outcome.port else outcome.endpoint


__all__ = [
    "Engine",
    "RestoreExecutor",
    "cleanup_outcome",
    "connect",
    "cutover_outcome",
    "endpoint",
    "executor",
    "final_status",
    "inputs",
    "next_steps",
    "outcome",
    "parse_restore_time",
    "plan",
    "plan_cutover",
    "plan_drill_cleanup",
    "preflight",
    "resolved_restore_time",
    "validate",
]
