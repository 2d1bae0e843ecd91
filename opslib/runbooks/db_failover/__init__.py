"""The db-failover runbook: an RDS instance's or Aurora cluster's status, and, gated, a reboot
(last resort) or a failover, waited for and verified.

The notebook steps through :func:`inputs` (exit 2 on bad parameters, including a target that
does not exist and a failover that cannot happen, before anything changes) -> :func:`connect`
-> :func:`status` (engine, class, Multi-AZ, writer and readers, endpoints, pending
modifications, recent events, metrics, the PostgreSQL view) -> :func:`plan` (empty for
``action=status``) -> ``opslib.safety.gate(plan, ..., execute=executor(conns, inp))`` (the
change, then a bounded wait until the target is back, the downtime measured by polling) ->
:func:`verify` (writer changed for a failover, connections accepted again) -> :func:`summary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opslib.aws import rds_failover as rf
from opslib.clients import aws_client, pg_connect, refuse_password_in_conninfo
from opslib.core import executors
from opslib.core.errors import (
    BadInputError,
    ClientConfigError,
    NotFoundError,
    OpslibError,
    SecretInParameterError,
)
from opslib.core.findings import Finding, Severity, error_finding, rank
from opslib.core.plans import ApplyResult, ChangeStatus, Plan
from opslib.runbooks.db_failover import pg_view

__all__ = [
    "ACTIONS",
    "Action",
    "Connections",
    "Inputs",
    "Status",
    "Summary",
    "Verification",
    "connect",
    "executor",
    "inputs",
    "plan",
    "status",
    "summary",
    "verify",
]

ACTIONS = rf.ACTIONS
MAX_WAIT_MINUTES = 180
SOURCE = "db-failover"


class Action(StrEnum):
    STATUS = "status"
    REBOOT = "reboot"
    FAILOVER = "failover"


@dataclass(frozen=True)
class Inputs:
    """The runbook's parameters, checked; ``target`` is the instance or cluster as found."""

    kind: rf.TargetKind
    identifier: str
    action: Action
    pg_dsn: str
    wait_timeout_minutes: int
    region: str
    target: rf.DbTarget

    @property
    def timeout_s(self) -> float:
        return self.wait_timeout_minutes * 60.0


def inputs(
    db_instance: str = "",
    db_cluster: str = "",
    *,
    action: str = "status",
    pg_dsn: str = "",
    wait_timeout_minutes: int = 30,
    region: str = "",
    rds: Any = None,
) -> Inputs:
    """Every check before anything changes, as ONE BadInputError naming each bad parameter.

    Beyond the parameters themselves it reads the target (DescribeDBInstances/Clusters, through
    ``rds`` or a client built from the standard chain): a target that does not exist, and a
    failover that cannot happen (single-AZ instance, Aurora cluster without a reader), are
    refused here, with what to do instead.
    """
    problems: list[str] = []
    secret = False
    inst, clus = (db_instance or "").strip(), (db_cluster or "").strip()
    if bool(inst) == bool(clus):
        problems.append(
            "give exactly one of db_instance (an RDS instance) or db_cluster (an Aurora cluster)"
            + (", not both" if inst else "")
        )
    act = (action or "").strip().lower()
    if act not in tuple(Action):
        problems.append(f"action={action!r}: give status, reboot or failover")
    if not 1 <= wait_timeout_minutes <= MAX_WAIT_MINUTES:
        problems.append(f"wait_timeout_minutes={wait_timeout_minutes}: give 1..{MAX_WAIT_MINUTES}")
    try:
        refuse_password_in_conninfo(pg_dsn, parameter="pg_dsn")
    except SecretInParameterError as exc:
        problems.append(str(exc))
        secret = True
    target = None
    if bool(inst) != bool(clus):
        kind = rf.TargetKind.INSTANCE if inst else rf.TargetKind.CLUSTER
        try:
            target = rf.describe_target(
                kind, inst or clus, rds=rds or aws_client("rds", region=region)
            )
        except NotFoundError as exc:
            problems.append(str(exc))
    if target is not None and act == Action.FAILOVER and not target.can_fail_over:
        if target.kind is rf.TargetKind.INSTANCE:
            problems.append(
                f"action=failover: {target.identifier} is a single-AZ instance, it has no standby "
                "to fail over to. Use action=reboot (last resort: downtime), or convert it to "
                "Multi-AZ first (aws rds modify-db-instance --db-instance-identifier "
                f"{target.identifier} --multi-az --apply-immediately), then fail over"
            )
        else:
            problems.append(
                f"action=failover: Aurora cluster {target.identifier} has no reader to promote. "
                "Add one first (aws rds create-db-instance --db-cluster-identifier "
                f"{target.identifier} ...), or use action=reboot (last resort: downtime)"
            )
    if problems:
        cls = SecretInParameterError if secret else BadInputError
        raise cls("; ".join(problems) + ". Nothing was changed.")
    assert target is not None
    return Inputs(
        target.kind, target.identifier, Action(act), pg_dsn, wait_timeout_minutes, region, target
    )


@dataclass(frozen=True)
class Connections:
    rds: Any
    cloudwatch: Any
    pg: Any = None
    errors: tuple[Finding, ...] = ()


def connect(inp: Inputs) -> Connections:
    """RDS and CloudWatch clients; PostgreSQL when ``pg_dsn`` is given (else None, and a
    finding when it cannot connect: the runbook goes on with what AWS says)."""
    pg, errors = None, []
    if inp.pg_dsn:
        try:
            pg = pg_connect(inp.pg_dsn, runbook="db-failover")
        except ClientConfigError as exc:
            errors.append(error_finding("postgres (pg_dsn)", exc))
    return Connections(
        rds=aws_client("rds", region=inp.region),
        cloudwatch=aws_client("cloudwatch", region=inp.region),
        pg=pg,
        errors=tuple(errors),
    )


@dataclass(frozen=True)
class Status:
    """The target before any change: facts, members, endpoints, events, metrics, PostgreSQL."""

    target: rf.DbTarget
    events: rf.Events
    metrics: rf.Metrics
    pg: pg_view.PgView | None
    findings: tuple[Finding, ...]


def _status_findings(t: rf.DbTarget) -> list[Finding]:
    out = []
    if t.status != "available" or not t.members_available:
        busy = ", ".join(f"{m.identifier} {m.status}" for m in t.members if m.status != "available")
        out.append(
            Finding(
                Severity.CRITICAL
                if t.status in ("failed", "stopped", "storage-full")
                else Severity.WARNING,
                f"{t.kind.value} {t.identifier}: {t.status}" + (f" ({busy})" if busy else ""),
                SOURCE,
                "not available",
                "Read the events below; wait for a reboot or failover in progress rather than starting another.",
            )
        )
    if not t.can_fail_over:
        out.append(
            Finding(
                Severity.WARNING,
                f"{t.identifier}: no failover target ("
                + ("single-AZ instance" if t.kind is rf.TargetKind.INSTANCE else "no Aurora reader")
                + ")",
                SOURCE,
                "a failure of the writer means downtime until it is replaced",
                "Convert to Multi-AZ (or add an Aurora reader) before the next incident.",
            )
        )
    if t.pending_modifications:
        out.append(
            Finding(
                Severity.INFO,
                f"{t.identifier}: pending modifications "
                + ", ".join(f"{k}={v}" for k, v in t.pending_modifications),
                SOURCE,
                "applied at the next reboot or maintenance window",
                "A reboot applies them: decide whether that is wanted now.",
            )
        )
    return out


def status(inp: Inputs, conns: Connections) -> Status:
    """Everything read before the plan (read only)."""
    target = rf.describe_target(inp.kind, inp.identifier, rds=conns.rds)
    events = rf.recent_events(target, rds=conns.rds)
    mets = rf.metrics(target, rds=conns.rds, cloudwatch=conns.cloudwatch)
    view = None
    found = [*_status_findings(target), *events.findings, *mets.findings, *conns.errors]
    if conns.pg is not None:
        try:
            view = pg_view.read(conn=conns.pg)
            found += pg_view.findings(view)
        except Exception as exc:  # noqa: BLE001 - shown as a finding; AWS's view still stands
            found.append(error_finding(pg_view.SOURCE, exc))
    return Status(target, events, mets, view, tuple(rank(found)))


def plan(inp: Inputs, st: Status) -> Plan:
    """The change for ``action`` (read only); ``status`` plans nothing."""
    if inp.action is Action.REBOOT:
        return rf.plan_reboot(st.target, timeout_s=inp.timeout_s)
    if inp.action is Action.FAILOVER:
        return rf.plan_failover(st.target, timeout_s=inp.timeout_s)
    return Plan(title=f"Status of {inp.kind.value} {inp.identifier}: nothing to change")


def executor(
    conns: Connections,
    inp: Inputs,
    *,
    timeout_s: float | None = None,
    poll_s: float = rf.DEFAULT_POLL_SECONDS,
) -> executors.Executor:
    """The ``execute`` for :func:`opslib.safety.gate`: the change, then the bounded wait."""
    return executors.bind(
        rds=conns.rds,
        timeout_s=inp.timeout_s if timeout_s is None else timeout_s,
        poll_s=poll_s,
        allowed=ACTIONS,
    )


@dataclass(frozen=True)
class Verification:
    """After the apply (or without one): what changed, how long it was down, and is it back."""

    action: str
    applied: bool
    writer_before: str
    writer_after: str
    writer_changed: bool
    downtime_seconds: float | None
    status_after: str
    connections_accepted: bool | None  # None: no pg_dsn, or nothing applied
    connect_seconds: float | None
    detail: str
    target_after: rf.DbTarget | None
    events_after: rf.Events | None
    findings: tuple[Finding, ...]

    def to_frame(self):
        import pandas as pd

        rows = [
            ("action", self.action),
            ("applied", "yes" if self.applied else "no"),
            ("writer before", self.writer_before),
            ("writer after", self.writer_after),
            ("writer changed", "yes" if self.writer_changed else "no"),
            (
                "downtime (polled)",
                "n/a" if self.downtime_seconds is None else f"{self.downtime_seconds:.1f} s",
            ),
            ("status after", self.status_after),
            (
                "new connections accepted",
                "not checked"
                if self.connections_accepted is None
                else ("yes" if self.connections_accepted else "NO"),
            ),
            ("detail", self.detail),
        ]
        return pd.DataFrame(rows, columns=["fact", "value"])


def verify(
    inp: Inputs, conns: Connections, st: Status, planned: Plan, result: ApplyResult | None
) -> Verification:
    """Read the target again; for a failover check the writer changed; probe new connections."""
    outcome = result.outcomes[0] if result and result.outcomes else None
    applied = outcome is not None and outcome.status is ChangeStatus.APPLIED
    found: list[Finding] = []
    before = st.target.writer
    after_t, events_after = None, None
    try:
        after_t = rf.describe_target(inp.kind, inp.identifier, rds=conns.rds)
        if outcome is not None:
            events_after = rf.recent_events(
                after_t, rds=conns.rds, minutes=max(5, inp.wait_timeout_minutes + 5)
            )
    except OpslibError as exc:
        found.append(error_finding(f"{SOURCE} re-read of {inp.identifier}", exc))
    writer_after = after_t.writer if after_t is not None else ""
    status_after = after_t.status if after_t is not None else "unknown"
    changed = bool(writer_after) and writer_after != before
    downtime = None
    if applied:
        downtime = outcome.data.get("downtime_seconds")
    if outcome is not None and not applied:
        found.append(
            Finding(
                Severity.CRITICAL,
                f"{outcome.action} {outcome.target}: {outcome.status.value}",
                SOURCE,
                outcome.detail[:500],
                f"The target is now '{status_after}' with writer {writer_after or '?'}; read the "
                "events, then run again with action=status before any other change.",
            )
        )
    if applied and inp.action is Action.FAILOVER and not changed:
        found.append(
            Finding(
                Severity.CRITICAL,
                f"{inp.identifier}: the writer did not change ({before})",
                SOURCE,
                f"after the failover the writer is still {writer_after}",
                "Read the events: AWS may have failed back; do not retry blindly.",
            )
        )
    accepted, connect_s = None, None
    if applied and inp.pg_dsn:
        p = pg_view.probe(inp.pg_dsn, timeout_s=min(inp.timeout_s, 120.0))
        accepted, connect_s = p.accepted, p.seconds
        if not p.accepted:
            found.append(
                Finding(
                    Severity.CRITICAL,
                    f"PostgreSQL: no new connection accepted within {p.seconds:.0f} s",
                    pg_view.SOURCE,
                    p.error[:300],
                    "Check security groups, DNS of the endpoint and the instance's log.",
                )
            )
    detail = (
        outcome.detail
        if outcome is not None
        else (
            "status only: nothing changed"
            if inp.action is Action.STATUS
            else "not applied (dry run or no approval)"
        )
    )
    return Verification(
        inp.action.value,
        applied,
        before,
        writer_after,
        changed,
        downtime,
        status_after,
        accepted,
        connect_s,
        detail,
        after_t,
        events_after,
        tuple(rank(found)),
    )


@dataclass(frozen=True)
class Summary:
    """The record of the run (``opslib.record_all``)."""

    action: str
    target_kind: str
    target: str
    engine: str
    multi_az: bool
    applied: bool
    writer_before: str
    writer_after: str
    writer_changed: bool
    downtime_seconds: float | None
    status_after: str
    connections_accepted: bool | None
    readers: list[str]
    findings: int
    plan_hash: str


def summary(inp: Inputs, st: Status, planned: Plan, v: Verification) -> Summary:
    t = v.target_after or st.target
    return Summary(
        action=inp.action.value,
        target_kind=inp.kind.value,
        target=inp.identifier,
        engine=st.target.engine,
        multi_az=st.target.multi_az,
        applied=v.applied,
        writer_before=v.writer_before,
        writer_after=v.writer_after,
        writer_changed=v.writer_changed,
        downtime_seconds=v.downtime_seconds,
        status_after=v.status_after,
        connections_accepted=v.connections_accepted,
        readers=list(t.readers),
        findings=len(st.findings) + len(v.findings),
        plan_hash=planned.digest(),
    )
