"""health-check: the morning check of every source in parallel, read in one glance.

The daily-operations morning checks (ECS services running vs desired, ALB target health and
5xx, CloudWatch alarms in ALARM, task failures), the quick health check of pods, events and
ingresses, queue depth against 1,000/10,000, RDS status/CPU/storage and connections
vs the parameter group's max_connections, PostgreSQL connections
against ``max_connections`` (80/95 %), ElastiCache hit rate (< 70 %) and evictions, ACM
certificates close to expiry, and backups older than a day.

Every source runs in its own thread (at most ``concurrency`` at once) with its own clients,
which count their API calls; a source that fails (access denied, timeout, an API the endpoint
lacks) becomes an amber item saying so, never a silent skip. One overall status: red when any
item is critical, amber when any is a warning or a failed check, green otherwise.
``compare_with`` (an earlier bundle or evidence dir) says what is new, resolved and unchanged.
Read only: it plans and changes nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from opslib import clients
from opslib.aws import acm, alarms, backup_age, ecs_fleet, elasticache, elbv2, rds_health
from opslib.aws.sqs import ops as sqs_ops
from opslib.core.errors import (
    AccessDeniedError,
    BadInputError,
    NotFoundError,
    RunbookTimeoutError,
    ThrottledError,
    UnsupportedError,
)
from opslib.core.findings import Finding, Severity, rank, skipped_finding
from opslib.core.plans import parse_csv
from opslib.k8s import events as k8s_events
from opslib.k8s import ingress as k8s_ingress
from opslib.k8s import workloads
from opslib.pg import maintenance

RUNBOOK = "health-check"
#: a source still running this long after the check started is an amber "timed out" item
SOURCE_TIMEOUT_S = 120.0
#: PostgreSQL: the maintenance report's own thresholds (db-maintenance defaults)
DEAD_TUPLE_PCT = 20.0
LONG_QUERY_S = 300


class Status(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


#: which severities make an item red or amber (ERROR: a source that could not be checked)
RED_SEVERITIES = frozenset({Severity.CRITICAL})
AMBER_SEVERITIES = frozenset({Severity.WARNING, Severity.ERROR})


def status_of(findings: Iterable[Finding]) -> Status:
    """Red when any item is critical; amber when any is a warning or a failed check; else green."""
    sev = {f.severity for f in findings}
    if sev & RED_SEVERITIES:
        return Status.RED
    if sev & AMBER_SEVERITIES:
        return Status.AMBER
    return Status.GREEN


@dataclass(frozen=True)
class Inputs:
    ecs_clusters: tuple[str, ...]
    load_balancers: tuple[str, ...]
    k8s_namespaces: tuple[str, ...]
    queues: str
    pg_dsn: str
    db_instances: tuple[str, ...]
    cache_clusters: tuple[str, ...]
    cert_warn_days: int
    window_minutes: int
    compare_with: str  # the record.json to compare with ("" when none)
    concurrency: int
    region: str
    timeout_s: float = SOURCE_TIMEOUT_S


def inputs(
    *,
    ecs_clusters: str = "",
    load_balancers: str = "",
    k8s_namespaces: str = "",
    queues: str = "",
    pg_dsn: str = "",
    db_instances: str = "",
    cache_clusters: str = "",
    cert_warn_days: int = 30,
    window_minutes: int = 60,
    compare_with: str = "",
    concurrency: int = 8,
    region: str = "",
) -> Inputs:
    """Validate the parameters before anything is read (one BadInputError naming each problem).

    ``compare_with`` is resolved here (to the record.json of that bundle, or of the newest
    health-check bundle under that evidence dir), so a wrong path is refused up front rather
    than after every source was read.
    """
    clients.refuse_password_in_conninfo(pg_dsn, parameter="pg_dsn")
    problems = []
    for name, value, low, high, what in (
        ("cert_warn_days", cert_warn_days, 1, 365, "days"),
        ("window_minutes", window_minutes, 5, 1440, "minutes"),
        ("concurrency", concurrency, 1, 32, "parallel checks"),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{name}={value!r}: give an integer {low}..{high} ({what})")
    record = ""
    if compare_with.strip():
        try:
            record = str(previous_record_path(compare_with.strip()))
        except NotFoundError as exc:
            problems.append(str(exc))
    if problems:
        raise BadInputError("Bad parameters, nothing was read: " + "; ".join(problems))
    return Inputs(
        tuple(parse_csv(ecs_clusters)),
        tuple(parse_csv(load_balancers)),
        tuple(parse_csv(k8s_namespaces)),
        queues.strip().rstrip("*"),
        pg_dsn.strip(),
        tuple(parse_csv(db_instances)),
        tuple(parse_csv(cache_clusters)),
        int(cert_warn_days),
        int(window_minutes),
        record,
        int(concurrency),
        region.strip(),
    )


@dataclass(frozen=True)
class Section:
    """One source's result: its status, what it checked, its items, its cost and when it ran."""

    source: str
    status: Status
    checked: int
    findings: tuple[Finding, ...]
    api_calls: int
    seconds: float
    rows: tuple[dict, ...] = ()
    calls_by_operation: tuple[tuple[str, int], ...] = ()
    started_s: float = 0.0  # offsets from the start of the check (the concurrency bound shows here)
    ended_s: float = 0.0

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(list(self.rows))


_CLIENT_LOCK = threading.Lock()  # boto3 Session.client() is not thread safe; clients are


class _Ctx:
    """What one source's thread gets: its own clients, each counting its API calls by operation,
    and ``map``, a pool of at most ``concurrency`` threads for its per-resource calls."""

    def __init__(self, inp: Inputs, session: Any) -> None:
        self.inp = inp
        self.session = session
        self.ops: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return sum(self.ops.values())

    def count(self, op: str, n: int = 1) -> None:
        with self._lock:
            self.ops[op] += n

    def aws(self, service: str):
        with _CLIENT_LOCK:
            c = clients.aws_client(service, session=self.session, region=self.inp.region)

        def counted(model=None, **_):
            self.count(f"{service}:{getattr(model, 'name', '?')}")

        c.meta.events.register("before-call.*.*", counted)
        return c

    def map(self, fn: Callable, items: Iterable) -> list:
        items = list(items)
        if len(items) <= 1 or self.inp.concurrency <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(
            max_workers=min(self.inp.concurrency, len(items)), thread_name_prefix="health-fan"
        ) as pool:
            return list(pool.map(fn, items))


# --- the sources ----------------------------------------------------------------------------


def _ecs(ctx: _Ctx):
    ecs = ctx.aws("ecs")
    states = []
    for cl in ecs_fleet.clusters(ecs=ecs, names=list(ctx.inp.ecs_clusters) or None):
        states += ecs_fleet.services(ecs=ecs, cluster=cl, mapper=ctx.map)
    rows = [
        {
            "service": f"{s.cluster}/{s.service}",
            "desired": s.desired,
            "running": s.running,
            "pending": s.pending,
            "deployments": s.deployments,
            "rollout": s.rollout,
        }
        for s in states
    ]
    return len(states), ecs_fleet.findings(ecs=ecs, states=states, mapper=ctx.map), rows


def _alb(ctx: _Ctx):
    el = ctx.aws("elbv2")
    names = [n.split("/")[1] if n.count("/") == 2 else n for n in ctx.inp.load_balancers]
    lbs = elbv2.load_balancers(elbv2=el, names=names or None)
    groups = elbv2.target_health(elbv2=el, lbs=lbs, mapper=ctx.map)
    rates, _ = elbv2.error_rates(
        cloudwatch=ctx.aws("cloudwatch"),
        dims=[elbv2.lb_dimension(lb["LoadBalancerArn"]) for lb in lbs],
        minutes=ctx.inp.window_minutes,
    )
    rows = [
        {
            "load_balancer": g.load_balancer,
            "target_group": g.name,
            "targets": len(g.targets),
            "not_healthy": len(g.unhealthy),
            "states": ", ".join(f"{t.target} {t.state}" for t in g.unhealthy[:3]),
            "5xx_pct": rates.get(g.load_balancer),
        }
        for g in groups
    ]
    return sum(len(g.targets) for g in groups), elbv2.findings(groups, rates), rows


def _alarms(ctx: _Ctx):
    total, firing = alarms.census(cloudwatch=ctx.aws("cloudwatch"))
    rows = [{"alarm": a.name, "since": a.since, "reason": a.reason[:120]} for a in firing]
    return total, alarms.findings(firing), rows


def _sqs(ctx: _Ctx):
    qs = sqs_ops.depths(sqs=ctx.aws("sqs"), prefix=ctx.inp.queues, mapper=ctx.map)
    qs, _ = sqs_ops.with_oldest_ages(
        qs, cloudwatch=ctx.aws("cloudwatch"), minutes=ctx.inp.window_minutes
    )
    rows = [
        {
            "queue": q.name,
            "visible": q.visible,
            "in_flight": q.in_flight,
            "delayed": q.delayed,
            "oldest_age_s": q.oldest_age_s,
        }
        for q in qs
        if q.visible or q.in_flight
    ]
    return len(qs), sqs_ops.findings(qs), rows


def _rds(ctx: _Ctx):
    dbs, _ = rds_health.instances(
        rds=ctx.aws("rds"),
        cloudwatch=ctx.aws("cloudwatch"),
        names=list(ctx.inp.db_instances) or None,
        minutes=ctx.inp.window_minutes,
    )
    rows = [
        {
            "instance": d.identifier,
            "status": d.status,
            "cpu_pct": d.cpu_pct,
            "connections": d.connections,
            "max_connections": d.max_connections or d.max_connections_note,
            "free_gb": d.free_storage_gb,
        }
        for d in dbs
    ]
    return len(dbs), rds_health.findings(dbs), rows


def _cache(ctx: _Ctx):
    items, _ = elasticache.caches(
        elasticache=ctx.aws("elasticache"),
        cloudwatch=ctx.aws("cloudwatch"),
        names=list(ctx.inp.cache_clusters) or None,
        minutes=ctx.inp.window_minutes,
    )
    rows = [
        {
            "cluster": c.cluster,
            "status": c.status,
            "hit_rate_pct": c.hit_rate_pct,
            "evictions": c.evictions,
        }
        for c in items
    ]
    return len(items), elasticache.findings(items), rows


def _certs(ctx: _Ctx):
    certs, found = acm.certificates(acm=ctx.aws("acm"))
    out = list(found)
    for c in certs:
        days = c.days_left()
        if days is None or days > ctx.inp.cert_warn_days:
            continue
        red = days <= 7
        out.append(
            Finding(
                Severity.CRITICAL if red else Severity.WARNING,
                f"ACM certificate {c.domain} expires within "
                f"{7 if red else ctx.inp.cert_warn_days} days",
                "acm",
                f"{max(days, 0):.0f} day(s) left; {c.type}, {c.status}, renewal "
                f"{c.renewal_eligibility or '?'}; in use by {len(c.in_use_by)}",
                "Imported certificates need a person: re-import a renewed one (cert-expiry runbook).",
                {"arn": c.arn, "days_left": round(days, 1)},
            )
        )
    rows = [
        {
            "domain": c.domain,
            "days_left": None if c.days_left() is None else round(c.days_left(), 1),
            "type": c.type,
        }
        for c in certs
    ]
    return len(certs), out, rows


def _backups(ctx: _Ctx):
    ages = backup_age.backup_ages(
        rds=ctx.aws("rds"), instances=list(ctx.inp.db_instances) or None, mapper=ctx.map
    )
    rows = [
        {
            "database": f"{b.kind} {b.identifier}",
            "newest": b.newest.isoformat(timespec="minutes") if b.newest else "none",
            "age_h": None if b.age_hours is None else round(b.age_hours, 1),
        }
        for b in ages
    ]
    return len(ages), backup_age.findings(ages), rows


def _k8s(ctx: _Ctx):
    api = clients.k8s_api()
    out: list[Finding] = []
    rows = []
    pods_n = 0
    for ns in ctx.inp.k8s_namespaces:
        pods = workloads.pod_health(api=api, namespace=ns)
        ctx.count("k8s:list_namespaced_pod")
        pods_n += len(pods)
        out += [f for f in workloads.findings(pods, namespace=ns) if f.severity is not Severity.OK]
        evs = k8s_events.warning_events(api=api, namespace=ns, since_minutes=ctx.inp.window_minutes)
        ctx.count("k8s:list_namespaced_event")
        out += k8s_events.findings(evs, namespace=ns)
        ings = k8s_ingress.ingresses(api=api, namespace=ns)
        ctx.count("k8s:list_namespaced_ingress")
        out += k8s_ingress.findings(ings)
        rows += [
            {
                "namespace": ns,
                "pod": p.name,
                "ready": p.ready,
                "restarts": p.restarts,
                "reasons": ", ".join(p.reasons),
            }
            for p in pods
            if p.unhealthy
        ]
    return pods_n, out, rows


def _postgres(ctx: _Ctx):
    """The db-maintenance report's reading (connections vs max 80/95 %, long and idle-in-
    transaction sessions, dead tuples, a dominating statement, wraparound, slots), read once."""
    with clients.pg_connect(ctx.inp.pg_dsn, runbook=RUNBOOK) as conn:
        r = maintenance.read_report(
            conn=conn, dead_tuple_pct=DEAD_TUPLE_PCT, long_query_seconds=LONG_QUERY_S
        )
    ctx.count("pg:report")
    found = [
        replace(f, source="postgres", next_action=f"db-maintenance runbook: {f.next_action}")
        if f.next_action and "action=" in f.next_action
        else replace(f, source="postgres")
        for f in r.findings
        if f.severity is not Severity.OK
    ]
    a = r.activity
    rows = [
        {
            "what": "connections",
            "value": f"{a.connections} of {a.max_connections} ({a.connection_pct:.0f}%)",
        },
        {"what": "long queries", "value": str(len(a.long_queries))},
        {"what": "idle in transaction", "value": str(len(a.idle_in_transaction))},
    ] + [
        {"what": f"dead tuples {t.name}", "value": f"{t.dead_pct:.0f}% ({t.dead} dead)"}
        for t in r.flagged
    ]
    return len(r.tables), found, rows


Check = Callable[[_Ctx], tuple[int, list[Finding], list[dict]]]
#: source name -> (check, what it needs: "aws", "k8s" or "pg")
SOURCES: dict[str, tuple[Check, str]] = {
    "ecs": (_ecs, "aws"),
    "alb": (_alb, "aws"),
    "alarms": (_alarms, "aws"),
    "sqs": (_sqs, "aws"),
    "rds": (_rds, "aws"),
    "elasticache": (_cache, "aws"),
    "acm": (_certs, "aws"),
    "backups": (_backups, "aws"),
    "k8s": (_k8s, "k8s"),
    "postgres": (_postgres, "pg"),
}


def _why(exc: BaseException) -> str:
    """What kind of failure, in words that stay the same from one run to the next."""
    if clients.aws_error_code(exc):
        exc = clients.translate_aws_error(exc, "check")
    if isinstance(exc, AccessDeniedError):
        return "access denied"
    if isinstance(exc, ThrottledError):
        return "throttled"
    if isinstance(exc, UnsupportedError):
        return "API not offered by the endpoint"
    if (
        isinstance(exc, RunbookTimeoutError | TimeoutError)
        or "timeout" in type(exc).__name__.lower()
    ):
        return "timed out"
    if "connect" in type(exc).__name__.lower() or "OperationalError" in type(exc).__name__:
        return "cannot connect"
    return f"failed ({type(exc).__name__})"


def failed_finding(source: str, why: str, evidence: str) -> Finding:
    """The amber item of a source that could not be checked: its state is unknown, not fine."""
    return Finding(
        Severity.ERROR,
        f"{source}: not checked, {why}",
        source,
        evidence[:500],
        f"Its state is UNKNOWN: fix the {source} access or endpoint (IAM permissions, network, "
        "credentials) and run the check again.",
        {"why": why},
    )


def _run_one(name: str, inp: Inputs, session, t_start: float) -> Section:
    check, _ = SOURCES[name]
    ctx = _Ctx(inp, session)
    t0 = time.monotonic()
    try:
        checked, found, rows = check(ctx)
    except Exception as exc:  # noqa: BLE001 - a failed source is an amber item, shown, never skipped
        why = _why(exc)
        err = (
            clients.translate_aws_error(exc, f"{name} check")
            if clients.aws_error_code(exc)
            else exc
        )
        f = failed_finding(name, why, f"{type(err).__name__}: {err}")
        checked, found, rows = 0, [f], []
    t1 = time.monotonic()
    return Section(
        name,
        status_of(found),
        checked,
        tuple(rank(found)),
        ctx.calls,
        round(t1 - t0, 3),
        tuple(rows),
        tuple(sorted(ctx.ops.items())),
        round(t0 - t_start, 3),
        round(t1 - t_start, 3),
    )


@dataclass(frozen=True)
class HealthReport:
    """The whole check: overall status, the sections, the items to act on, the comparison."""

    status: Status
    sections: tuple[Section, ...]
    seconds: float
    new_since: tuple[str, ...] = ()
    resolved_since: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    compared_with: str = ""
    finished_at: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )

    @property
    def findings(self) -> list[Finding]:
        return rank([f for s in self.sections for f in s.findings])

    def titles(self, status: Status) -> list[str]:
        want = {Status.RED: RED_SEVERITIES, Status.AMBER: AMBER_SEVERITIES}[status]
        return [f.title for f in self.findings if f.severity in want]

    @property
    def checked(self) -> dict[str, int]:
        return {s.source: s.checked for s in self.sections}

    @property
    def api_calls(self) -> dict[str, int]:
        return {s.source: s.api_calls for s in self.sections}

    def items_frame(self):
        """Red and amber items with the next action each: the one table to read."""
        import pandas as pd

        rows = [
            {
                "status": "red" if f.severity in RED_SEVERITIES else "amber",
                "item": f.title,
                "source": f.source,
                "next_action": f.next_action,
            }
            for f in self.findings
            if f.severity in RED_SEVERITIES | AMBER_SEVERITIES
        ]
        return pd.DataFrame(rows, columns=["status", "item", "source", "next_action"])

    def sections_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "source": s.source,
                    "status": s.status.value,
                    "checked": s.checked,
                    "items": len(s.findings),
                    "api_calls": s.api_calls,
                    "seconds": s.seconds,
                    "note": s.findings[0].title
                    if s.findings and s.findings[0].severity is Severity.INFO and s.checked == 0
                    else "",
                }
                for s in self.sections
            ]
        )

    def section(self, source: str) -> Section:
        found = next((s for s in self.sections if s.source == source), None)
        if found is None:
            raise KeyError(f"no section {source!r}; sources: {[s.source for s in self.sections]}")
        return found


def _plan_sources(inp: Inputs, session) -> tuple[list[str], list[Section]]:
    """Which sources run; those the caller left out are shown as skipped, never dropped."""
    names, skipped = [], []
    for n, (_, need) in SOURCES.items():
        if need == "k8s" and not inp.k8s_namespaces:
            skipped.append(
                Section(n, Status.GREEN, 0, (skipped_finding(n, "k8s_namespaces"),), 0, 0.0)
            )
        elif need == "pg" and not inp.pg_dsn:
            skipped.append(Section(n, Status.GREEN, 0, (skipped_finding(n, "pg_dsn"),), 0, 0.0))
        else:
            names.append(n)
    return names, skipped


def check(inp: Inputs, *, only: Iterable[str] | None = None) -> HealthReport:
    """Run every source in parallel (at most ``concurrency`` at once) and combine them.

    A source still running ``inp.timeout_s`` after the start is an amber "timed out" item; its
    thread is left to finish on its own (the clients' own timeouts bound it) and ignored.
    ``only`` narrows the run to some sources (tests, benchmarks); the notebook runs them all.
    """
    t0 = time.monotonic()
    wanted = set(SOURCES) if only is None else set(only)
    unknown = wanted - set(SOURCES)
    if unknown:
        raise BadInputError(f"Unknown sources {sorted(unknown)}; known: {list(SOURCES)}.")
    session, no_aws = None, None
    try:
        session = clients.aws_session(region=inp.region)
    except Exception as exc:  # noqa: BLE001 - no AWS credentials: every AWS source is amber
        no_aws = exc
    names, sections = _plan_sources(inp, session)
    names = [n for n in names if n in wanted]
    sections = [s for s in sections if s.source in wanted]
    if no_aws is not None:
        aws = [n for n in names if SOURCES[n][1] == "aws"]
        sections += [
            Section(n, Status.AMBER, 0, (failed_finding(n, "no AWS session", str(no_aws)),), 0, 0.0)
            for n in aws
        ]
        names = [n for n in names if n not in aws]
    pool = ThreadPoolExecutor(max_workers=inp.concurrency, thread_name_prefix="health")
    # the PostgreSQL and Kubernetes sources start first: their client libraries' first use
    # costs CPU in this process, which then overlaps the AWS sources' waits on the network
    names.sort(key=lambda n: SOURCES[n][1] == "aws")
    futures = {pool.submit(_run_one, n, inp, session, t0): n for n in names}
    done, pending = wait(futures, timeout=inp.timeout_s)
    pool.shutdown(wait=False, cancel_futures=True)
    sections += [f.result() for f in done]
    sections += [
        Section(
            futures[f],
            Status.AMBER,
            0,
            (failed_finding(futures[f], "timed out", f"no answer within {inp.timeout_s:g}s"),),
            0,
            round(time.monotonic() - t0, 3),
        )
        for f in pending
    ]
    order = list(SOURCES)
    ordered = tuple(sorted(sections, key=lambda s: order.index(s.source)))
    report = HealthReport(
        status_of(f for s in ordered for f in s.findings),
        ordered,
        round(time.monotonic() - t0, 2),
    )
    return compare(report, inp.compare_with) if inp.compare_with else report


# --- compare_with ---------------------------------------------------------------------------


def previous_record_path(path: str) -> Path:
    """The record.json of a health-check bundle, or of the newest one under an evidence dir.

    Only runs that got as far as recording their status count: a refused or failed run says
    nothing about what was wrong then.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise NotFoundError(
            f"compare_with={path!r}: no such bundle or evidence dir; give a health-check bundle "
            "folder (with record.json) or the evidence dir it was written to."
        )
    candidates = [p / "record.json"] if (p / "record.json").is_file() else []
    if not candidates:
        candidates = sorted(p.glob(f"**/{RUNBOOK}/*/record.json"), key=lambda f: f.parent.name)
        candidates.reverse()
    for f in candidates:
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if rec.get("runbook") == RUNBOOK and "status" in (rec.get("results") or {}):
            return f
    raise NotFoundError(
        f"compare_with={path!r}: no {RUNBOOK} run with recorded results there; give the bundle "
        "of an earlier health-check run that finished."
    )


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def problem_key(title: str) -> str:
    """A title with its numbers masked: '40% dead tuples' and '41% dead tuples' are one problem,
    still there, not one resolved and one new."""
    return _NUMBER.sub("#", title)


def compare(report: HealthReport, record_json: str) -> HealthReport:
    """New, resolved and unchanged red/amber items since the run whose record is ``record_json``."""
    rec = json.loads(Path(record_json).read_text())
    res = rec.get("results", {})
    before = {problem_key(t): t for t in list(res.get("red", [])) + list(res.get("amber", []))}
    now = {problem_key(t): t for t in report.titles(Status.RED) + report.titles(Status.AMBER)}
    return replace(
        report,
        new_since=tuple(sorted(now[k] for k in now.keys() - before.keys())),
        resolved_since=tuple(sorted(before[k] for k in before.keys() - now.keys())),
        unchanged=tuple(sorted(now[k] for k in now.keys() & before.keys())),
        compared_with=str(Path(record_json).parent),
    )


def headline(report: HealthReport) -> str:
    red, amber = report.titles(Status.RED), report.titles(Status.AMBER)
    return (
        f"{report.status.value.upper()}: {len(red)} red, {len(amber)} amber item(s) over "
        f"{len(report.sections)} sources ({report.finished_at}, {report.seconds:.1f}s)"
    )


def results(report: HealthReport) -> dict[str, Any]:
    """What record.json keeps for machines (and for the next run's ``compare_with``)."""
    return {
        "status": report.status.value,
        "red": report.titles(Status.RED),
        "amber": report.titles(Status.AMBER),
        "checked": report.checked,
        "api_calls": report.api_calls,
        "failed_sources": [
            s.source
            for s in report.sections
            if any(f.severity is Severity.ERROR for f in s.findings)
        ],
        "new_since": list(report.new_since),
        "resolved_since": list(report.resolved_since),
        "unchanged": list(report.unchanged),
        "compared_with": report.compared_with,
    }
