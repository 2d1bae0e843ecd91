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
    plan_route53 / route53_outcome           optional CNAME UPSERT, its own approval
    plan_drill_cleanup / cleanup_outcome     drill mode: delete the drill target, its own approval
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
import re
import time
from dataclasses import dataclass, field

from opslib.aws import route53, secrets
from opslib.clients import aws_client
from opslib.core import executors
from opslib.core.errors import BadInputError, OpslibError, PreflightError, RestoreFailedError
from opslib.core.plans import ApplyResult, Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.progress import ProgressFactory, default_progress
from opslib.runbooks.pitr_restore import engines
from opslib.runbooks.pitr_restore.model import (
    Check,
    CheckResult,
    Engine,
    Preflight,
    RestoreClients,
    RestoreOutcome,
    RestoreRequest,
    RestoreStatus,
    RpoCheck,
    RtoCheck,
    SourceKind,
    StepOutcome,
    StepStatus,
    Validation,
    iso,
)

# --- parameters ------------------------------------------------------------------------------


_EPOCH = re.compile(r"^\d{1,11}(\.\d+)?$")
_EPOCH_MS = re.compile(r"^\d{12,}(\.\d+)?$")


def parse_restore_time(
    value: str | float, *, now: _dt.datetime | None = None
) -> _dt.datetime | None:
    """'latest' -> None; ISO 8601 (Z, offset, or naive = UTC) or Unix epoch seconds (the
    procedure's ``--restore-date-time 1705929600``; papermill and YAML pass it as a number)
    -> aware UTC datetime.

    Refuses (BadInputError) a malformed value and (PreflightError) one in the future.
    """
    now = now or _dt.datetime.now(_dt.UTC)
    if isinstance(value, bool):
        raise BadInputError(
            f"restore_time {value!r} is not a time: give ISO 8601, epoch seconds or 'latest'."
        )
    v = str(value if value is not None else "").strip()
    if v.lower() in ("", "latest"):
        return None
    if _EPOCH_MS.match(v):
        raise BadInputError(
            f"restore_time {v} has {len(v.split('.')[0])} digits: that looks like epoch "
            f"milliseconds. Give epoch seconds ({v[:-3]}) or ISO 8601 (e.g. 2024-01-22T13:20:00Z)."
        )
    if _EPOCH.match(v):
        t = _dt.datetime.fromtimestamp(float(v), _dt.UTC)
    else:
        try:
            t = _dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise BadInputError(
                f"restore_time {value!r} is not an ISO 8601 time nor epoch seconds. Use e.g. "
                "2024-01-22T14:00:00Z (UTC), 1705932000 (epoch seconds) or 'latest'."
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
    from_snapshot: str = "",
    from_backup: str = "",
    target_region: str = "",
    target_az: str = "",
    rto_minutes: float = 0,
    rpo_minutes: float = 0,
    min_retention_days: int = 35,
    route53_record: str = "",
) -> RestoreRequest:
    """Check the parameters (no client, nothing changed); refuses with a message saying what to give."""
    snap, bak = (from_snapshot or "").strip(), (from_backup or "").strip()
    if snap and bak:
        raise BadInputError("Give from_snapshot (RDS/Aurora) or from_backup (DynamoDB), not both.")
    kind = SourceKind.SNAPSHOT if snap else (SourceKind.BACKUP if bak else SourceKind.POINT_IN_TIME)
    impl = engines.get(engine, kind)
    now = _dt.datetime.now(_dt.UTC)
    t = parse_restore_time(restore_time, now=now)
    if t is not None and kind is not SourceKind.POINT_IN_TIME:
        raise BadInputError(
            f"restore_time={restore_time!r} with a {kind.value} source: a snapshot or backup restores "
            "to the moment it was taken. Leave restore_time as 'latest', or drop the snapshot/backup "
            "and restore point-in-time."
        )
    if (target_region or target_az) and kind is not SourceKind.SNAPSHOT:
        raise BadInputError(
            "target_region/target_az apply to a restore from an RDS/Aurora snapshot (from_snapshot) "
            "only: DynamoDB backups cannot be copied across regions by the DynamoDB API (use AWS "
            "Backup), and point-in-time restores stay in the source's region."
        )
    if wait_timeout_minutes <= 0:
        raise BadInputError("wait_timeout_minutes must be > 0 (how long to wait for the restore).")
    if rto_minutes < 0:
        raise BadInputError("rto_minutes must be >= 0 (0 = no RTO check).")
    if rpo_minutes < 0:
        raise BadInputError("rpo_minutes must be >= 0 (0 = no RPO check).")
    if min_retention_days < 0:
        raise BadInputError(
            "min_retention_days must be >= 0 (the procedures promise 35; 0 = no retention warning)."
        )
    dns = ""
    if (route53_record or "").strip():
        zone, name = route53.parse_record(route53_record)
        dns = f"{zone}/{name}"
    req = RestoreRequest(
        engine=impl.engine,
        source=(source or "").strip(),
        restore_time_param=str(restore_time),
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
        from_snapshot=snap,
        from_backup=bak,
        target_region=(target_region or "").strip(),
        target_az=(target_az or "").strip(),
        rto_minutes=float(rto_minutes),
        rpo_minutes=float(rpo_minutes),
        min_retention_days=int(min_retention_days),
        route53_record=dns,
    )
    req = dataclasses.replace(req, target=impl.target_for(req))
    if req.cutover_secret and not impl.supports_cutover:
        able = "/".join(
            dict.fromkeys(e.engine.value for e in engines.registered() if e.supports_cutover)
        )
        raise BadInputError(
            f"cutover_secret applies to {able} endpoints only; leave it empty for this engine."
        )
    if req.cutover_secret and req.drill:
        raise BadInputError(
            "cutover_secret with drill=True: a drill target is deleted after validation, so the "
            "secret must not point at it. Run the drill without cutover_secret."
        )
    if req.route53_record and not impl.supports_cutover:
        able = "/".join(
            dict.fromkeys(e.engine.value for e in engines.registered() if e.supports_cutover)
        )
        raise BadInputError(
            f"route53_record applies to {able} endpoints only (a CNAME needs a host name); leave "
            "it empty for this engine."
        )
    if req.route53_record and req.drill:
        raise BadInputError(
            "route53_record with drill=True: a drill target is deleted after validation, so DNS "
            "must not point at it. Run the drill without route53_record."
        )
    if req.validation_sql and impl.validation_sql_refusal:
        raise BadInputError(impl.validation_sql_refusal)
    return req


def connect(req: RestoreRequest) -> RestoreClients:
    """The clients this engine needs, from the standard chains (opslib.clients builds them);
    a Route53 client only with ``route53_record``."""
    clients = engines.for_request(req).connect(req)
    if req.route53_record:
        clients = dataclasses.replace(clients, route53=aws_client("route53", region=req.region))
    return clients


# --- read only -------------------------------------------------------------------------------


def preflight(req: RestoreRequest, *, clients: RestoreClients) -> Preflight:
    """Read-only checks; raises (exit 2) before anything is created when the restore must not go on.

    After the engine's own checks, the same for every engine: backup retention against
    ``min_retention_days`` (a warning below), the lag of the latest restorable time against
    ``rpo_minutes`` (met / missed), and with ``route53_record`` that the record can take a CNAME.
    """
    impl = engines.for_request(req)
    pre = impl.preflight(req, clients)
    checks = list(pre.checks)
    checks.append(retention_check(req, impl.retention_days(pre)))
    rpo = rpo_check(pre)
    checks.append(
        Check(
            "RPO (latest restorable time lag)",
            CheckResult.SKIPPED
            if rpo.met is None
            else (CheckResult.OK if rpo.met else CheckResult.WARNING),
            rpo.verdict,
        )
    )
    if req.route53_record:
        cur = route53.check_record(req.route53_zone, req.route53_name, route53=clients.route53)
        now = cur.describe() if cur else "no record yet (the UPSERT creates it)"
        checks.append(
            Check(
                "Route53 record", CheckResult.OK, f"{req.route53_name} in {req.route53_zone}: {now}"
            )
        )
    return dataclasses.replace(pre, checks=tuple(checks), rpo=rpo)


def preflight_warnings(pre: Preflight) -> list[str]:
    """The preflight checks that warn (retention, RPO missed, source status...), as text."""
    return [f"{c.check}: {c.detail}" for c in pre.checks if c.result is CheckResult.WARNING]


def retention_check(req: RestoreRequest, retention: tuple[float | None, str]) -> Check:
    """Backup retention against ``min_retention_days`` (the engines refuse below 1 day)."""
    days, detail = retention
    want = req.min_retention_days
    if days is None:
        return Check("backup retention", CheckResult.SKIPPED, detail)
    text = f"{days:g} days" + (f" ({detail})" if detail else "")
    if not want:
        return Check("backup retention", CheckResult.OK, f"{text}; no minimum given")
    if days < want:
        return Check(
            "backup retention",
            CheckResult.WARNING,
            f"{text}: below min_retention_days={want} (the procedures promise {want}); raise the "
            "retention so older points stay restorable",
        )
    return Check("backup retention", CheckResult.OK, f"{text} >= {want}")


def rpo_check(pre: Preflight) -> RpoCheck:
    """How old the latest restorable time is (at preflight) against ``rpo_minutes``."""
    rpo = pre.request.rpo_minutes
    if pre.latest is None:
        return RpoCheck(rpo, None, None)
    lag = max(0.0, (pre.request.requested_at - pre.latest).total_seconds())
    return RpoCheck(rpo, round(lag, 3), None if not rpo else lag <= rpo * 60.0)


def plan(pre: Preflight) -> Plan:
    """The restore's changes (read only)."""
    return engines.for_request(pre.request).plan(pre)


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
    impl = engines.for_request(pre.request)
    dns = {route53.ACTION_CHANGE} if pre.request.route53_record else set()
    dispatch = executors.bind(
        {**impl.executor_context(pre), "progress": progress},
        allowed=impl.actions | dns,
        rds=clients.rds,
        dynamodb=clients.dynamodb,
        secretsmanager=clients.secretsmanager,
        route53=clients.route53,
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
    impl = engines.for_request(pre.request)
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
    v = engines.for_request(pre.request).validate(pre, outcome, clients)
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
    return engines.for_request(pre.request).next_steps(pre, outcome)


def _step(
    plan_: Plan, result: ApplyResult | None, *, dry_run: bool, approval: str, kept: str
) -> StepOutcome:
    """A gated step's outcome; ``approval`` names the parameter that approves it, ``kept`` what
    stays as it is when it is not applied."""
    if result is not None:
        status = StepStatus.FAILED if result.failed else StepStatus.APPLIED
        detail = "; ".join(o.detail for o in result.outcomes if o.detail)
        return StepOutcome(status, result.plan_hash, result, detail)
    if plan_.empty:
        return StepOutcome(StepStatus.NOTHING_TO_DO, plan_.digest(), detail=plan_.title)
    if dry_run:
        how = f"run with dry_run=False and {approval}=<your name> to apply it"
        return StepOutcome(StepStatus.DRY_RUN, plan_.digest(), detail=f"dry run: {kept}; {how}")
    how = f"give {approval}=<your name> (or click Approve in JupyterLab) to apply it"
    return StepOutcome(
        StepStatus.NOT_APPROVED, plan_.digest(), detail=f"not approved: {kept}; {how}"
    )


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
    step = _step(
        cutover_plan,
        result,
        dry_run=dry_run,
        approval="cutover_approved_by",
        kept="the secret is unchanged",
    )
    if step.status is StepStatus.FAILED and result is not None:
        failed = next(o for o in result.outcomes if o.status is ChangeStatus.FAILED)
        raise RestoreFailedError(
            f"Cutover failed: {failed.detail}. The previous secret version is still current."
        )
    return step


def plan_route53(pre: Preflight, outcome: RestoreOutcome, *, clients: RestoreClients) -> Plan:
    """Plan the optional CNAME UPSERT to the restored endpoint (empty without route53_record or
    a restored endpoint); the previous record is in the change's params for the way back."""
    req = pre.request
    if not req.route53_record:
        return Plan(title="Route53: no route53_record given (DNS cutover stays manual)")
    if not outcome.restored or not outcome.endpoint:
        return Plan(
            title=f"Route53 cutover of {req.route53_name}: nothing restored yet",
            warnings=("Restore first; the record is untouched.",),
        )
    return route53.plan_upsert_cname(
        req.route53_zone, req.route53_name, outcome.endpoint, route53=clients.route53
    )


def route53_outcome(dns_plan: Plan, result: ApplyResult | None, *, dry_run: bool) -> StepOutcome:
    """The CNAME UPSERT's outcome (its own approval, ``route53_approved_by``); raises on failure."""
    step = _step(
        dns_plan,
        result,
        dry_run=dry_run,
        approval="route53_approved_by",
        kept="the record is unchanged",
    )
    if step.status is StepStatus.FAILED and result is not None:
        failed = next(o for o in result.outcomes if o.status is ChangeStatus.FAILED)
        raise RestoreFailedError(
            f"Route53 cutover failed: {failed.detail}. The record is as it was before."
        )
    return step


def route53_previous(dns_plan: Plan) -> dict | None:
    """The record set before the cutover (None: there was none, or no DNS change planned)."""
    for c in dns_plan.changes:
        if c.action == route53.ACTION_CHANGE:
            return c.params.get("previous")
    return None


def route53_rollback(dns_plan: Plan) -> str:
    """The AWS CLI call that puts the record back ("" when no DNS change was planned)."""
    for c in dns_plan.changes:
        if c.action == route53.ACTION_CHANGE:
            return str(c.params.get("rollback", ""))
    return ""


def plan_drill_cleanup(pre: Preflight, outcome: RestoreOutcome) -> Plan:
    """Drill mode: delete the drill target after validation (empty plan otherwise)."""
    if not pre.request.drill:
        return Plan(title="Drill cleanup: not a drill (drill=False); the restored target stays")
    if not outcome.restored:
        return Plan(title="Drill cleanup: nothing was restored")
    return engines.for_request(pre.request).plan_drill_cleanup(pre)


def cleanup_outcome(
    pre: Preflight, cleanup_plan: Plan, result: ApplyResult | None, *, dry_run: bool
) -> StepOutcome:
    """The drill cleanup's outcome; raises RestoreFailedError when a deletion failed."""
    step = _step(
        cleanup_plan,
        result,
        dry_run=dry_run,
        approval="approve_drill_cleanup_by",
        kept=f"the drill target {pre.target} still exists (and is billed)",
    )
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
    return engines.for_request(pre.request).restore_point(pre)


def rto_check(pre: Preflight, validation: Validation) -> RtoCheck:
    """The measured time to restore against ``rto_minutes`` (0 = no check), for the verdict."""
    rto = pre.request.rto_minutes
    took = validation.time_to_restore_seconds
    met = None if not rto or took is None else took <= rto * 60.0
    return RtoCheck(rto, took, met)


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
    "preflight_warnings",
    "retention_check",
    "route53_outcome",
    "route53_previous",
    "route53_rollback",
    "rpo_check",
    "rto_check",
    "plan_route53",
    "validate",
]
