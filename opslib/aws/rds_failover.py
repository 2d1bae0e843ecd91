"""RDS reboots and failovers: who is the writer, what a reboot or failover costs, and doing it.

The database emergency procedure is: look at the instance's status first; reboot only as a
last resort (it takes the database down); with Multi-AZ, fail over to the standby instead
(``RebootDBInstance ForceFailover=True``); for Aurora, promote a reader
(``FailoverDBCluster``). A single-AZ instance has no standby, so it cannot fail over: the
runbook refuses and says to reboot, or to convert to Multi-AZ first.

"The writer" is what a failover changes and what the runbook must show changed: for an Aurora
cluster, the member with ``IsClusterWriter``; for a Multi-AZ instance, the AZ of the primary
(the endpoint stays, its DNS moves to the standby, which becomes primary in the other AZ).

Reads (:func:`describe_target`, :func:`recent_events`, :func:`metrics`) come first; the
``plan_*`` functions read nothing and return a :class:`~opslib.core.plans.Plan`; the handlers
registered below perform a change, then poll (bounded, :func:`opslib.core.waits.poll_until`)
until the target is available again, the writer changed for a failover, measuring the downtime
as seen by polling. AWS errors go through :func:`opslib.clients.translate_aws_error`.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from opslib.aws import rds_health
from opslib.aws.cloudwatch import MetricQuery, get_metrics
from opslib.clients import (
    OPTIONAL_READ_KINDS,
    AwsErrorKind,
    aws_error_kind,
    optional_read_finding,
    translate_aws_error,
)
from opslib.core import executors
from opslib.core.errors import NotFoundError, ThrottledError
from opslib.core.findings import Finding
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan
from opslib.core.waits import poll_until

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra
    import pandas as pd
    from mypy_boto3_rds import RDSClient

SOURCE = "rds-failover"
ACTION_REBOOT = "rds:RebootDBInstance"
ACTION_FORCE_FAILOVER = "rds:RebootDBInstance+ForceFailover"
ACTION_FAILOVER_CLUSTER = "rds:FailoverDBCluster"
ACTIONS = (ACTION_REBOOT, ACTION_FORCE_FAILOVER, ACTION_FAILOVER_CLUSTER)

DEFAULT_TIMEOUT_SECONDS = 1800.0
DEFAULT_POLL_SECONDS = 2.0
#: a reboot must be seen leaving "available" before "available" again counts as back; if no poll
#: ever sees it down (a reboot faster than one poll), it is taken as back after this long, and
#: its downtime is recorded as not measured (None), never as this grace
REBOOT_GRACE_SECONDS = 60.0
EVENT_MINUTES = 24 * 60


class TargetKind(StrEnum):
    INSTANCE = "instance"  # an RDS instance (Multi-AZ or single-AZ)
    CLUSTER = "cluster"  # an Aurora cluster


@dataclass(frozen=True)
class Member:
    """One instance of the target: its role (writer, reader, primary), state and place."""

    identifier: str
    role: str  # writer | reader (Aurora) | primary (RDS instance)
    status: str
    instance_class: str
    availability_zone: str
    endpoint: str
    promotion_tier: int | None = None


@dataclass(frozen=True)
class Endpoint:
    """An address applications connect to, and what answers on it."""

    name: str
    address: str
    port: int | None
    serves: str


@dataclass(frozen=True)
class DbTarget:
    """An RDS instance or Aurora cluster as a reboot/failover sees it."""

    kind: TargetKind
    identifier: str
    arn: str
    engine: str
    engine_version: str
    instance_class: str
    status: str
    multi_az: bool
    availability_zone: str = ""  # instance: the primary's AZ
    secondary_availability_zone: str = ""  # Multi-AZ instance: the standby's AZ
    members: tuple[Member, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    pending_modifications: tuple[tuple[str, str], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def writer_instance(self) -> str:
        """The instance taking writes (Aurora: IsClusterWriter; RDS: the instance itself)."""
        return next((m.identifier for m in self.members if m.role in ("writer", "primary")), "")

    @property
    def readers(self) -> tuple[str, ...]:
        return tuple(m.identifier for m in self.members if m.role == "reader")

    @property
    def writer(self) -> str:
        """What a failover changes: the Aurora writer instance, or the Multi-AZ primary's AZ."""
        if self.kind is TargetKind.CLUSTER:
            return self.writer_instance
        return self.availability_zone

    @property
    def can_fail_over(self) -> bool:
        if self.kind is TargetKind.CLUSTER:
            return bool(self.readers)
        return self.multi_az

    @property
    def members_available(self) -> bool:
        return all(m.status == "available" for m in self.members)

    def to_frame(self) -> pd.DataFrame:
        """One row per fact: engine, class, Multi-AZ, status, writer, readers, standby."""
        import pandas as pd

        rows = [
            ("target", f"{self.kind.value} {self.identifier}"),
            ("engine", f"{self.engine} {self.engine_version}".strip()),
            ("instance class", self.instance_class),
            ("status", self.status),
            ("Multi-AZ", "yes" if self.multi_az else "no"),
            ("writer", self.writer_instance),
        ]
        if self.kind is TargetKind.CLUSTER:
            rows.append(("readers", ", ".join(self.readers) or "(none: a failover has no target)"))
        else:
            rows.append(("primary AZ", self.availability_zone))
            rows.append(
                ("standby AZ", self.secondary_availability_zone or "(none: single-AZ, no standby)")
            )
        rows.append(
            (
                "pending modifications",
                ", ".join(f"{k}={v}" for k, v in self.pending_modifications) or "(none)",
            )
        )
        return pd.DataFrame(rows, columns=["fact", "value"])

    def members_frame(self) -> pd.DataFrame:
        import pandas as pd

        cols = ["instance", "role", "status", "class", "AZ", "endpoint", "promotion tier"]
        rows = [
            (
                m.identifier,
                m.role,
                m.status,
                m.instance_class,
                m.availability_zone,
                m.endpoint,
                m.promotion_tier,
            )
            for m in self.members
        ]
        return pd.DataFrame(rows, columns=cols)

    def endpoints_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [(e.name, e.address, e.port, e.serves) for e in self.endpoints]
        return pd.DataFrame(rows, columns=["endpoint", "address", "port", "serves"])


def _call(what: str, fn, /, **params: Any) -> Any:
    try:
        return fn(**params)
    except ClientError as exc:
        raise translate_aws_error(exc, what) from exc


def _pending(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    pm = raw.get("PendingModifiedValues") or {}
    return tuple(sorted((k, str(v)) for k, v in pm.items() if v not in (None, "", [], {})))


def _endpoint(i: Mapping[str, Any]) -> tuple[str, int | None]:
    ep = i.get("Endpoint") or {}
    return ep.get("Address", ""), ep.get("Port")


def _describe_instance_raw(identifier: str, *, rds: RDSClient) -> Mapping[str, Any]:
    return _call(
        f"rds:DescribeDBInstances {identifier}",
        rds.describe_db_instances,
        DBInstanceIdentifier=identifier,
    )["DBInstances"][0]


def _not_found(kind: TargetKind, identifier: str, exc: ClientError) -> NotFoundError:
    if kind is TargetKind.CLUSTER:
        return NotFoundError(
            f"db_cluster={identifier!r}: no Aurora cluster of that name in this account/region; "
            "give an existing one (aws rds describe-db-clusters --query "
            "'DBClusters[].DBClusterIdentifier') or check region."
        )
    return NotFoundError(
        f"db_instance={identifier!r}: no RDS instance of that name in this account/region; give "
        "an existing one (aws rds describe-db-instances --query "
        "'DBInstances[].DBInstanceIdentifier') or check region."
    )


def describe_target(kind: TargetKind | str, identifier: str, *, rds: RDSClient) -> DbTarget:
    """The instance or cluster, its members and endpoints; NotFoundError when it does not exist."""
    kind = TargetKind(kind)
    if kind is TargetKind.INSTANCE:
        try:
            i = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        except ClientError as exc:
            if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
                raise _not_found(kind, identifier, exc) from exc
            raise translate_aws_error(exc, f"rds:DescribeDBInstances {identifier}") from exc
        return _instance_target(i)
    try:
        c = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
            raise _not_found(kind, identifier, exc) from exc
        raise translate_aws_error(exc, f"rds:DescribeDBClusters {identifier}") from exc
    return _cluster_target(c, rds=rds)


def _instance_target(i: Mapping[str, Any]) -> DbTarget:
    addr, port = _endpoint(i)
    ident = i["DBInstanceIdentifier"]
    multi = bool(i.get("MultiAZ"))
    az = i.get("AvailabilityZone", "")
    standby = i.get("SecondaryAvailabilityZone", "") if multi else ""
    member = Member(
        ident, "primary", i.get("DBInstanceStatus", ""), i.get("DBInstanceClass", ""), az, addr
    )
    serves = f"the primary ({az})" + (
        f"; on a failover its DNS moves to the standby ({standby})" if multi else ""
    )
    return DbTarget(
        kind=TargetKind.INSTANCE,
        identifier=ident,
        arn=i.get("DBInstanceArn", ""),
        engine=i.get("Engine", ""),
        engine_version=i.get("EngineVersion", ""),
        instance_class=i.get("DBInstanceClass", ""),
        status=i.get("DBInstanceStatus", ""),
        multi_az=multi,
        availability_zone=az,
        secondary_availability_zone=standby or "",
        members=(member,),
        endpoints=(Endpoint("instance", addr, port, serves),),
        pending_modifications=_pending(i),
        raw=i,
    )


def _cluster_target(c: Mapping[str, Any], *, rds: RDSClient) -> DbTarget:
    members, classes = [], []
    for m in c.get("DBClusterMembers") or []:
        ident = m["DBInstanceIdentifier"]
        i = _describe_instance_raw(ident, rds=rds)
        addr, _ = _endpoint(i)
        members.append(
            Member(
                ident,
                "writer" if m.get("IsClusterWriter") else "reader",
                i.get("DBInstanceStatus", ""),
                i.get("DBInstanceClass", ""),
                i.get("AvailabilityZone", ""),
                addr,
                m.get("PromotionTier"),
            )
        )
        classes.append(i.get("DBInstanceClass", ""))
    members.sort(key=lambda m: (m.role != "writer", m.identifier))
    port = c.get("Port")
    writer = next((m.identifier for m in members if m.role == "writer"), "")
    endpoints = [
        Endpoint("cluster (writer)", c.get("Endpoint", ""), port, f"the writer ({writer})"),
        Endpoint(
            "reader",
            c.get("ReaderEndpoint", ""),
            port,
            "the readers, balanced ("
            + (", ".join(m.identifier for m in members if m.role == "reader") or "none: the writer")
            + ")",
        ),
    ]
    endpoints += [
        Endpoint(
            f"instance {m.identifier}", m.endpoint, port, f"{m.identifier} only ({m.role} now)"
        )
        for m in members
    ]
    azs = {m.availability_zone for m in members if m.availability_zone}
    return DbTarget(
        kind=TargetKind.CLUSTER,
        identifier=c["DBClusterIdentifier"],
        arn=c.get("DBClusterArn", ""),
        engine=c.get("Engine", ""),
        engine_version=c.get("EngineVersion", ""),
        instance_class=", ".join(sorted(set(classes))),
        status=c.get("Status", ""),
        multi_az=bool(c.get("MultiAZ")) or len(azs) > 1 or len(members) > 1,
        members=tuple(members),
        endpoints=tuple(endpoints),
        pending_modifications=_pending(c),
        raw=c,
    )


# --- events and metrics (optional reads: a denied one is a finding) ---------------------------


@dataclass(frozen=True)
class DbEvent:
    date: str
    source: str
    message: str
    categories: str


@dataclass(frozen=True)
class Events:
    events: tuple[DbEvent, ...]
    findings: tuple[Finding, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [(e.date, e.source, e.message, e.categories) for e in self.events]
        return pd.DataFrame(rows, columns=["time (UTC)", "source", "message", "categories"])


def _iso(t: Any) -> str:
    if isinstance(t, _dt.datetime):
        t = t.astimezone(_dt.UTC) if t.tzinfo else t.replace(tzinfo=_dt.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(t or "")


def recent_events(
    target: DbTarget,
    *,
    rds: RDSClient,
    minutes: int = EVENT_MINUTES,
    since: _dt.datetime | None = None,
) -> Events:
    """RDS events of the target (and, for a cluster, of its instances), oldest first."""
    sources = [
        (target.identifier, "db-cluster" if target.kind is TargetKind.CLUSTER else "db-instance")
    ]
    if target.kind is TargetKind.CLUSTER:
        sources += [(m.identifier, "db-instance") for m in target.members]
    start = since or (_dt.datetime.now(_dt.UTC) - _dt.timedelta(minutes=minutes))
    out: list[tuple[Any, DbEvent]] = []
    for ident, stype in sources:
        try:
            resp = rds.describe_events(SourceIdentifier=ident, SourceType=stype, StartTime=start)
        except ClientError as exc:
            if aws_error_kind(exc) in OPTIONAL_READ_KINDS:
                return Events(
                    tuple(e for _, e in sorted(out, key=lambda x: x[0])),
                    (optional_read_finding(exc, f"rds:DescribeEvents {ident}", source=SOURCE),),
                )
            raise translate_aws_error(exc, f"rds:DescribeEvents {ident}") from exc
        for e in resp.get("Events") or []:
            when = e.get("Date")
            if isinstance(when, _dt.datetime) and when.astimezone(_dt.UTC) < start:
                continue  # an endpoint that ignores StartTime
            out.append(
                (
                    _iso(when),
                    DbEvent(
                        _iso(when),
                        e.get("SourceIdentifier", ident),
                        e.get("Message", ""),
                        ", ".join(e.get("EventCategories") or []),
                    ),
                )
            )
    return Events(tuple(e for _, e in sorted(out, key=lambda x: x[0])))


@dataclass(frozen=True)
class MemberMetrics:
    identifier: str
    cpu_pct: float | None
    connections: float | None
    free_storage_gb: float | None
    replica_lag_ms: float | None


@dataclass(frozen=True)
class Metrics:
    rows: tuple[MemberMetrics, ...]
    findings: tuple[Finding, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        cols = ["instance", "CPU %", "connections", "free storage GB", "replica lag ms"]
        rows = [
            (r.identifier, r.cpu_pct, r.connections, r.free_storage_gb, r.replica_lag_ms)
            for r in self.rows
        ]
        return pd.DataFrame(rows, columns=cols)


def metrics(target: DbTarget, *, rds: RDSClient, cloudwatch, minutes: int = 60) -> Metrics:
    """CPU, connections and free storage of each member (the morning check's read and
    thresholds), and Aurora readers' replica lag; a denied or throttled read is a finding."""
    names = [m.identifier for m in target.members]
    try:
        dbs, _ = rds_health.instances(rds=rds, cloudwatch=cloudwatch, names=names, minutes=minutes)
    except ClientError as exc:
        if aws_error_kind(exc) not in OPTIONAL_READ_KINDS:
            raise translate_aws_error(exc, "cloudwatch:GetMetricData AWS/RDS") from exc
        return Metrics(
            tuple(MemberMetrics(n, None, None, None, None) for n in names),
            (optional_read_finding(exc, "cloudwatch:GetMetricData AWS/RDS", source=SOURCE),),
        )
    lag: dict[str, float] = {}
    findings = list(rds_health.findings(dbs))
    readers = list(target.readers)
    if readers:
        qs = [
            MetricQuery(
                f"lag{n}", "AWS/RDS", "AuroraReplicaLag", {"DBInstanceIdentifier": r}, "Maximum", 60
            )
            for n, r in enumerate(readers)
        ]
        end = _dt.datetime.now(_dt.UTC)
        try:
            s = get_metrics(
                qs, cloudwatch=cloudwatch, start=end - _dt.timedelta(minutes=minutes), end=end
            )
            lag = {
                r: float(s.series(f"lag{n}").iloc[-1])
                for n, r in enumerate(readers)
                if s.has_data(f"lag{n}")
            }
        except ClientError as exc:
            if aws_error_kind(exc) not in OPTIONAL_READ_KINDS:
                raise translate_aws_error(exc, "cloudwatch:GetMetricData AuroraReplicaLag") from exc
            findings.append(
                optional_read_finding(
                    exc, "cloudwatch:GetMetricData AuroraReplicaLag", source=SOURCE
                )
            )
    by = {d.identifier: d for d in dbs}
    rows = []
    for n in names:
        d = by.get(n)
        rows.append(
            MemberMetrics(
                n,
                None if d is None or d.cpu_pct is None else round(d.cpu_pct, 1),
                None if d is None else d.connections,
                None if d is None or d.free_storage_gb is None else round(d.free_storage_gb, 1),
                lag.get(n),
            )
        )
    return Metrics(tuple(rows), tuple(findings))


# --- plans (read nothing) --------------------------------------------------------------------


def _pending_warning(target: DbTarget) -> tuple[str, ...]:
    if not target.pending_modifications:
        return ()
    mods = ", ".join(f"{k}={v}" for k, v in target.pending_modifications)
    return (
        f"Pending modifications ({mods}) are applied by this reboot: expect them to take effect.",
    )


def plan_reboot(target: DbTarget, *, timeout_s: float) -> Plan:
    """Reboot the instance (for Aurora: the writer instance). Last resort: it means downtime."""
    ident = target.writer_instance if target.kind is TargetKind.CLUSTER else target.identifier
    where = (
        f" (the writer of Aurora cluster {target.identifier})"
        if target.kind is TargetKind.CLUSTER
        else ""
    )
    down = (
        f"DOWNTIME: last resort. {ident}{where} stops accepting connections while it restarts "
        "(typically one to several minutes; every open connection and in-flight transaction is "
        "cut), and comes back on the same host, with no failover"
    )
    if target.can_fail_over:
        down += "; a failover (action=failover) usually interrupts writes for less time"
    return Plan(
        title=f"Reboot {ident}",
        changes=(
            Change(
                ACTION_REBOOT,
                ident,
                f"{down}; then wait (up to {timeout_s / 60:.0f} min) until it is available",
                {"DBInstanceIdentifier": ident},
            ),
        ),
        warnings=(
            "Reboot is the last resort: look at the status, events and metrics above first; "
            "a hung query or a full disk is not fixed by a reboot.",
            *_pending_warning(target),
        ),
    )


def plan_failover(target: DbTarget, *, timeout_s: float) -> Plan:
    """Fail over: Multi-AZ instance to its standby, Aurora cluster to a reader (read only)."""
    wait = f"wait (up to {timeout_s / 60:.0f} min) until available with the writer changed"
    if target.kind is TargetKind.CLUSTER:
        readers = ", ".join(target.readers)
        change = Change(
            ACTION_FAILOVER_CLUSTER,
            target.identifier,
            f"promote a reader ({readers}; Aurora picks by promotion tier) to writer in place of "
            f"{target.writer_instance}; writes fail for the failover (typically under a minute), "
            f"the cluster endpoint then points at the new writer; {wait}",
            {"DBClusterIdentifier": target.identifier},
        )
    else:
        change = Change(
            ACTION_FORCE_FAILOVER,
            target.identifier,
            f"reboot with failover: the standby in {target.secondary_availability_zone} becomes "
            f"primary (writes fail for typically one to two minutes while DNS moves), the old "
            f"primary in {target.availability_zone} becomes the standby; {wait}",
            {"DBInstanceIdentifier": target.identifier, "ForceFailover": True},
        )
    return Plan(
        title=f"Fail over {target.kind.value} {target.identifier}",
        changes=(change,),
        warnings=(
            "Applications must reconnect: connection pools holding the old writer's address "
            "(instance endpoints, cached DNS) keep failing until they do.",
            *_pending_warning(target),
        ),
    )


# --- handlers: perform, then wait (bounded) until back -----------------------------------------


@dataclass(frozen=True)
class _Seen:
    """What the polls saw: statuses in order (deduplicated), throttled polls."""

    statuses: tuple[str, ...]
    throttled: int


def _wait_back(
    kind: TargetKind,
    identifier: str,
    *,
    rds: RDSClient,
    writer_before: str,
    failover: bool,
    t0: float,
    timeout_s: float,
    poll_s: float,
) -> tuple[DbTarget, float | None, _Seen]:
    """Poll until the target is available again (and, for a failover, its writer changed).

    Returns the target, the seconds from the call to the first poll that saw it back (the
    downtime as polling measures it, to within ``poll_s``; None for a reboot no poll saw go
    down: there is nothing measured to report) and what the polls saw. A throttled poll is
    counted and the wait goes on.
    """
    statuses: list[str] = []
    throttled = 0
    last: list[DbTarget] = []

    def check() -> tuple[bool, DbTarget | None, str]:
        nonlocal throttled
        try:
            t = describe_target(kind, identifier, rds=rds)
        except ThrottledError:
            throttled += 1
            return False, last[-1] if last else None, "throttled"
        last.append(t)
        shown = (
            t.status
            if t.members_available or t.kind is TargetKind.INSTANCE
            else f"{t.status} (members: "
            + ", ".join(f"{m.identifier} {m.status}" for m in t.members)
            + ")"
        )
        if not statuses or statuses[-1] != shown:
            statuses.append(shown)
        back = t.status == "available" and t.members_available
        if failover:
            done = back and t.writer != writer_before
        else:
            went_down = any(not s.startswith("available") or "(members" in s for s in statuses)
            done = back and (went_down or time.monotonic() - t0 >= REBOOT_GRACE_SECONDS)
        return done, t, shown

    def on_timeout(t: DbTarget | None, shown: str) -> str:
        what = "available with a new writer" if failover else "available"
        writer = f", writer {t.writer}" if t is not None else ""
        return (
            f"{kind.value} {identifier} is {shown or 'unknown'}{writer} after {timeout_s:.0f} s "
            f"(wanted {what}). AWS keeps working on it. To resume: `aws rds wait "
            f"db-{kind.value}-available --db-{kind.value}-identifier {identifier}`, then run this "
            "runbook with action=status (do not reboot or fail over again while it is busy)."
        )

    target = poll_until(
        check,
        timeout_s=timeout_s,
        poll_s=poll_s,
        desc=f"{identifier} back (s)",
        on_timeout=on_timeout,
    )
    elapsed = round(time.monotonic() - t0, 1)
    went_down = any(not s.startswith("available") or "(members" in s for s in statuses)
    downtime = elapsed if (failover or went_down) else None
    return target, downtime, _Seen(tuple(statuses), throttled)


def _perform(
    change: Change,
    kind: TargetKind,
    identifier: str,
    call,
    *,
    failover: bool,
    rds: RDSClient,
    timeout_s: float,
    poll_s: float,
) -> ChangeOutcome:
    """The writer before, the one API call, the bounded wait until back, the outcome."""
    before = describe_target(kind, identifier, rds=rds).writer
    t0 = time.monotonic()
    _call(f"{change.action} {identifier}", call, **change.params)
    target, downtime, seen = _wait_back(
        kind,
        identifier,
        rds=rds,
        writer_before=before,
        failover=failover,
        t0=t0,
        timeout_s=timeout_s,
        poll_s=poll_s,
    )
    back = (
        "no poll saw it down (shorter than one poll): downtime not measured"
        if downtime is None
        else f"back after {downtime:.0f} s"
    )
    if not failover:
        detail = f"rebooted; available again, {back}"
    else:
        what = "primary" if kind is TargetKind.INSTANCE else "writer"
        detail = f"failed over: {what} {before} -> {target.writer}; {back}"
    data = {
        "writer_before": before,
        "writer_after": target.writer,
        "downtime_seconds": downtime,
        "status_after": target.status,
        "statuses_seen": list(seen.statuses),
        "throttled_polls": seen.throttled,
    }
    return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, detail, data)


@executors.register(ACTION_REBOOT, ACTION_FORCE_FAILOVER)
def reboot_instance(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """RebootDBInstance (with ForceFailover for the failover action), then wait until back."""
    return _perform(
        change,
        TargetKind.INSTANCE,
        change.params["DBInstanceIdentifier"],
        rds.reboot_db_instance,
        failover=bool(change.params.get("ForceFailover")),
        rds=rds,
        timeout_s=timeout_s,
        poll_s=poll_s,
    )


@executors.register(ACTION_FAILOVER_CLUSTER)
def failover_cluster(
    change: Change,
    *,
    rds: RDSClient,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
) -> ChangeOutcome:
    """FailoverDBCluster, then wait until the cluster is available with another writer."""
    return _perform(
        change,
        TargetKind.CLUSTER,
        change.params["DBClusterIdentifier"],
        rds.failover_db_cluster,
        failover=True,
        rds=rds,
        timeout_s=timeout_s,
        poll_s=poll_s,
    )
