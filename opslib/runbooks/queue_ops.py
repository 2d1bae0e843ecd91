"""The queue-ops runbook: SQS backlog report, and the backlog procedure's three remedies, gated:
raise the visibility timeout, scale the consumers, and (emergency only) purge one queue.

The notebook steps through :func:`inputs` (every parameter checked, exit 2 before anything is
read) -> :func:`connect` -> :func:`select` (exact names must exist; at most ``max_queues`` for a
change; purge takes exactly one) -> :func:`report` (depth, age, flow, drain time, DLQ) ->
:func:`consumer` (the consumer's replicas, for scale-consumers) -> :func:`preview` (purge only:
counts and a non-consuming peek written to the evidence before the plan) -> :func:`plan` ->
``opslib.safety.gate(plan, ..., execute=executor(inp, conns))`` -> :func:`verify` ->
:func:`summary` (the record).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import botocore.exceptions

from opslib.aws import ecs_scale
from opslib.aws.sqs import admin
from opslib.aws.sqs.health import BACKLOG_CRITICAL, BACKLOG_WARN, fmt_age
from opslib.aws.sqs.queues import (
    QueueCounts,
    QueueRef,
    queue_counts,
    queue_name_from,
    resolve_queue,
)
from opslib.clients import (
    OPTIONAL_READ_KINDS,
    aws_client,
    aws_error_kind,
    k8s_api,
    optional_read_finding,
)
from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity, error_finding
from opslib.core.plans import ApplyResult, ChangeStatus, Plan, check_limit, parse_csv, unique
from opslib.core.recorder import attachment_path
from opslib.k8s import scale as k8s_scale

__all__ = [
    "ACTIONS",
    "Action",
    "Connections",
    "Inputs",
    "QueueOpsRecord",
    "QueueReport",
    "Verification",
    "connect",
    "consumer",
    "executor",
    "inputs",
    "consumer_text",
    "plan",
    "preview",
    "preview_frame",
    "preview_text",
    "report",
    "select",
    "summary",
    "verify",
]

ACTIONS = (
    admin.VISIBILITY_ACTION,
    admin.PURGE_ACTION,
    k8s_scale.SCALE_ACTION,
    ecs_scale.SCALE_ACTION,
)
#: the inflow/outflow window of the report (CloudWatch sums)
WINDOW_MINUTES = 60
#: at most this many consumers added in one run (fewer is bounded by 0)
MAX_DELTA_UP = 10
_CONSUMER = re.compile(r"^(k8s-deployment|ecs-service):([^/\s]+)/([^/\s]+)$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")


class Action(StrEnum):
    REPORT = "report"
    SET_VISIBILITY = "set-visibility"
    SCALE_CONSUMERS = "scale-consumers"
    PURGE = "purge"


@dataclass(frozen=True)
class Inputs:
    """The runbook's parameters, checked."""

    action: Action
    patterns: tuple[str, ...]
    visibility_timeout: int = 0
    consumer_kind: str = ""  # "k8s-deployment", "ecs-service" or ""
    consumer_scope: str = ""  # namespace or cluster
    consumer_name: str = ""  # deployment or service
    consumers_delta: int = 0
    max_queues: int = 5
    region: str = ""

    @property
    def consumer(self) -> str:
        if not self.consumer_kind:
            return ""
        return f"{self.consumer_kind}:{self.consumer_scope}/{self.consumer_name}"


def inputs(
    queues: str = "",
    action: str = "report",
    *,
    visibility_timeout: int = 0,
    consumer: str = "",
    consumers_delta: int = 0,
    confirm_purge: str = "",
    max_queues: int = 5,
    region: str = "",
) -> Inputs:
    """Every check that needs no client; one BadInputError (exit 2) naming each bad parameter."""
    problems: list[str] = []
    act = (action or "").strip().lower()
    if act not in tuple(Action):
        problems.append(f"action={action!r}: give one of {', '.join(Action)}")
    patterns = tuple(unique(parse_csv(queues or "")))
    for p in patterns:
        if not _NAME.match(p.rstrip("*")) and p != "*":
            problems.append(f"queues: {p!r} is not a queue name or name prefix*")
    if int(max_queues) < 1:
        problems.append("max_queues must be >= 1")
    if act == Action.SET_VISIBILITY:
        if not patterns:
            problems.append("set-visibility needs queues (names or prefix*): never 'every queue'")
        if not 1 <= int(visibility_timeout) <= admin.MAX_VISIBILITY_TIMEOUT:
            problems.append(
                f"visibility_timeout={visibility_timeout}: give 1..{admin.MAX_VISIBILITY_TIMEOUT} "
                "seconds (0, the default, means not given)"
            )
    m = _CONSUMER.match((consumer or "").strip())
    if consumer and not m:
        problems.append(
            f"consumer={consumer!r}: write k8s-deployment:NAMESPACE/NAME or ecs-service:CLUSTER/SERVICE"
        )
    if act == Action.SCALE_CONSUMERS:
        if not consumer:
            problems.append(
                "scale-consumers needs consumer (k8s-deployment:ns/name or ecs-service:cluster/service)"
            )
        if int(consumers_delta) == 0:
            problems.append("scale-consumers needs a non-zero consumers_delta")
        elif int(consumers_delta) > MAX_DELTA_UP:
            problems.append(
                f"consumers_delta={consumers_delta}: at most +{MAX_DELTA_UP} in one run"
            )
    if act == Action.PURGE:
        if len(patterns) != 1 or patterns[0].endswith("*"):
            problems.append(
                f"purge takes exactly one queue by its exact name (got queues={queues!r}); "
                "one queue per run"
            )
        elif (confirm_purge or "") != patterns[0]:
            problems.append(
                f"confirm_purge must repeat the queue name exactly ({patterns[0]!r}); purge is "
                "irreversible"
            )
    if problems:
        raise BadInputError("Bad parameters: " + "; ".join(problems) + ". Nothing was changed.")
    return Inputs(
        action=Action(act),
        patterns=patterns,
        visibility_timeout=int(visibility_timeout),
        consumer_kind=m.group(1) if m else "",
        consumer_scope=m.group(2) if m else "",
        consumer_name=m.group(3) if m else "",
        consumers_delta=int(consumers_delta),
        max_queues=int(max_queues),
        region=(region or "").strip(),
    )


@dataclass(frozen=True)
class Connections:
    """SQS and CloudWatch always; the consumer's platform client when a consumer is named."""

    sqs: Any
    cloudwatch: Any
    k8s: Any = None
    ecs: Any = None


def connect(inp: Inputs) -> Connections:
    """The clients of the run, from the standard chains."""
    return Connections(
        sqs=aws_client("sqs", region=inp.region),
        cloudwatch=aws_client("cloudwatch", region=inp.region),
        k8s=k8s_api() if inp.consumer_kind == "k8s-deployment" else None,
        ecs=aws_client("ecs", region=inp.region) if inp.consumer_kind == "ecs-service" else None,
    )


def select(inp: Inputs, conns: Connections) -> tuple[QueueRef, ...]:
    """The queues of the run: exact names must exist (exit 2); a change never exceeds
    ``max_queues``; set-visibility and purge refuse a selection that matches nothing."""
    queues = admin.select_queues(inp.patterns, sqs=conns.sqs)
    if inp.action in (Action.SET_VISIBILITY, Action.PURGE):
        if not queues:
            raise BadInputError(
                f"queues={','.join(inp.patterns)!r} matches no queue; nothing changed"
            )
        check_limit("max_queues", len(queues), inp.max_queues)
    return queues


# --- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    """One queue in the report."""

    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_s: float | None
    sent: float | None
    deleted: float | None
    drain_s: float | None
    visibility_timeout: int
    retention_s: int
    dead_letter_queue: str
    max_receive_count: int | None
    dlq_depth: int | None
    status: str  # ok, warning, critical

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "visible": self.visible,
            "in_flight": self.in_flight,
            "oldest_age_s": self.oldest_age_s,
        }


@dataclass(frozen=True)
class QueueReport:
    """The selected queues, deepest first, and the findings against 1,000 / 10,000."""

    rows: tuple[QueueRow, ...]
    findings: tuple[Finding, ...]
    window_minutes: int = WINDOW_MINUTES

    def to_frame(self):
        import pandas as pd

        def num(v):
            return "no metrics" if v is None else int(v)

        out = [
            {
                "queue": r.name,
                "status": r.status,
                "visible": r.visible,
                "in_flight": r.in_flight,
                "delayed": r.delayed,
                "oldest": "no metrics" if r.oldest_age_s is None else fmt_age(r.oldest_age_s),
                f"in ({self.window_minutes} min)": num(r.sent),
                f"out ({self.window_minutes} min)": num(r.deleted),
                "time_to_drain": _drain_text(r),
                "visibility_s": r.visibility_timeout,
                "dlq": r.dead_letter_queue or "-",
                "max_receive": r.max_receive_count,
                "dlq_depth": r.dlq_depth,
            }
            for r in self.rows
        ]
        return pd.DataFrame(out)


def _drain_text(r: QueueRow) -> str:
    if r.sent is None or r.deleted is None:
        return "no metrics"
    if r.visible + r.in_flight == 0:
        return "empty"
    return "not draining" if r.drain_s is None else fmt_age(r.drain_s)


def _metrics(q: QueueRef, conns: Connections, findings: list[Finding]):
    try:
        return (
            admin.oldest_age(q.name, cloudwatch=conns.cloudwatch),
            admin.flow(q.name, cloudwatch=conns.cloudwatch, window_minutes=WINDOW_MINUTES),
        )
    except Exception as exc:  # noqa: BLE001 - a finding; the counts still stand
        if aws_error_kind(exc) in OPTIONAL_READ_KINDS:
            findings.append(
                optional_read_finding(
                    exc, f"cloudwatch AWS/SQS {q.name}", source=f"cloudwatch:{q.name}"
                )
            )
        else:
            findings.append(error_finding(f"cloudwatch:{q.name}", exc))
        return None, admin.Flow(WINDOW_MINUTES, None, None)


def _dlq_depth(q: QueueRef, conns: Connections, findings: list[Finding]) -> int | None:
    if not q.dead_letter_target_arn:
        return None
    try:
        dlq = resolve_queue(q.dead_letter_target_arn, sqs=conns.sqs, parameter="dead-letter queue")
        return queue_counts(dlq, sqs=conns.sqs).total
    except Exception as exc:  # noqa: BLE001 - shown; the rest of the report stands
        findings.append(error_finding(f"sqs:{queue_name_from(q.dead_letter_target_arn)}", exc))
        return None


def _row(q: QueueRef, conns: Connections, findings: list[Finding]) -> QueueRow:
    c = queue_counts(q, sqs=conns.sqs)
    age, fl = _metrics(q, conns, findings)
    status = (
        "critical"
        if c.visible >= BACKLOG_CRITICAL
        else "warning"
        if c.visible >= BACKLOG_WARN
        else "ok"
    )
    return QueueRow(
        name=q.name,
        visible=c.visible,
        in_flight=c.in_flight,
        delayed=c.delayed,
        oldest_age_s=age,
        sent=fl.sent,
        deleted=fl.deleted,
        drain_s=fl.drain_seconds(c.visible + c.in_flight),
        visibility_timeout=int(q.attributes.get("VisibilityTimeout", 30)),
        retention_s=int(q.attributes.get("MessageRetentionPeriod", 345600)),
        dead_letter_queue=queue_name_from(q.dead_letter_target_arn)
        if q.dead_letter_target_arn
        else "",
        max_receive_count=q.max_receive_count,
        dlq_depth=_dlq_depth(q, conns, findings),
        status=status,
    )


def _row_findings(r: QueueRow) -> list[Finding]:
    src = f"sqs:{r.name}"
    data = {"queue": r.name, "visible": r.visible, "in_flight": r.in_flight}
    ev = (
        f"visible {r.visible:,}, in flight {r.in_flight:,}, delayed {r.delayed:,}; "
        f"oldest {'no metrics' if r.oldest_age_s is None else fmt_age(r.oldest_age_s)}; "
        f"time to drain {_drain_text(r)}"
    )
    out: list[Finding] = []
    if r.visible >= BACKLOG_WARN:
        crit = r.visible >= BACKLOG_CRITICAL
        out.append(
            Finding(
                Severity.CRITICAL if crit else Severity.WARNING,
                f"{r.name}: backlog {r.visible:,} >= {BACKLOG_CRITICAL if crit else BACKLOG_WARN:,}",
                src,
                ev,
                "Scale the consumers (action=scale-consumers) and, if they are slow rather than "
                "failing, raise the visibility timeout (action=set-visibility); purge only poison "
                "or worthless messages.",
                data,
            )
        )
    if r.visible > 0 and r.in_flight == 0:
        out.append(
            Finding(
                Severity.WARNING,
                f"{r.name}: {r.visible:,} visible and none in flight: no consumer appears to be reading",
                src,
                ev,
                "Check the consumer (replicas, crash loops) before anything else.",
                data,
            )
        )
    if r.sent is not None and r.deleted is not None and r.sent > r.deleted and r.visible > 0:
        out.append(
            Finding(
                Severity.WARNING,
                f"{r.name}: inflow {r.sent:,.0f} > outflow {r.deleted:,.0f} over {WINDOW_MINUTES} min: the backlog grows",
                src,
                ev,
                "Add consumers (action=scale-consumers) or find why they slowed down.",
                data,
            )
        )
    if r.dlq_depth:
        out.append(
            Finding(
                Severity.WARNING,
                f"{r.name}: its dead-letter queue {r.dead_letter_queue} holds {r.dlq_depth:,}",
                src,
                f"maxReceiveCount {r.max_receive_count}",
                "Look at the failures with the dlq-redrive runbook; redrive once the cause is fixed.",
                data,
            )
        )
    if r.oldest_age_s is not None and r.retention_s and r.oldest_age_s >= 0.75 * r.retention_s:
        out.append(
            Finding(
                Severity.CRITICAL,
                f"{r.name}: oldest message ({fmt_age(r.oldest_age_s)}) nears the retention ({fmt_age(r.retention_s)})",
                src,
                ev,
                "Messages older than the retention are deleted by SQS: drain or export them now.",
                data,
            )
        )
    if not out:
        out.append(Finding(Severity.OK, f"{r.name}: backlog {r.visible:,}", src, ev, "", data))
    return out


def report(inp: Inputs, conns: Connections, queues: tuple[QueueRef, ...]) -> QueueReport:
    """Depth, in flight, delayed, oldest age, inflow/outflow and drain time, redrive policy and
    DLQ depth of every selected queue; a queue that cannot be read is an error finding."""
    findings: list[Finding] = []
    rows: list[QueueRow] = []
    for q in queues:
        try:
            rows.append(_row(q, conns, findings))
        except Exception as exc:  # noqa: BLE001 - per-queue errors are shown, the others reported
            findings.append(error_finding(f"sqs:{q.name}", exc))
    rows.sort(key=lambda r: (-r.visible, r.name))
    for r in rows:
        findings += _row_findings(r)
    blind = [r.name for r in rows if r.sent is None or r.oldest_age_s is None]
    if blind:
        findings.append(
            Finding(
                Severity.INFO,
                f"no CloudWatch metrics for {len(blind)} queue(s): oldest age, inflow/outflow and time to drain unknown",
                "cloudwatch",
                ", ".join(blind[:10]) + (" ..." if len(blind) > 10 else ""),
                "AWS publishes AWS/SQS metrics for active queues every minute; an endpoint without "
                "them (the local sandbox) shows 'no metrics', never 0.",
            )
        )
    if not queues:
        findings.append(
            Finding(Severity.INFO, f"no queue matches {','.join(inp.patterns) or '*'}", "sqs")
        )
    return QueueReport(tuple(rows), tuple(findings))


# --- consumer, purge preview, plan -----------------------------------------------------------


def consumer(inp: Inputs, conns: Connections):
    """The consumer's replicas (desired, ready) now, or None when no consumer is named."""
    if inp.consumer_kind == "k8s-deployment":
        return k8s_scale.read_scale(
            api=conns.k8s, namespace=inp.consumer_scope, name=inp.consumer_name
        )
    if inp.consumer_kind == "ecs-service":
        return ecs_scale.read_scale(
            ecs_client=conns.ecs, cluster=inp.consumer_scope, service=inp.consumer_name
        )
    return None


@dataclass(frozen=True)
class PurgePreview:
    """What a purge would delete, written to the evidence before the plan is shown."""

    queue: QueueRef
    counts: QueueCounts
    peek: admin.Peek
    dlq_sources: tuple[str, ...]
    attachment: str


def preview(inp: Inputs, conns: Connections, queues: tuple[QueueRef, ...]) -> PurgePreview | None:
    """Purge only: the counts, a non-consuming peek, and whether it is a DLQ, as an evidence
    attachment (``attachments/purge-preview-<queue>.json``). None for the other actions."""
    if inp.action is not Action.PURGE:
        return None
    q = queues[0]
    counts = queue_counts(q, sqs=conns.sqs)
    peeked = admin.peek(q, sqs=conns.sqs)
    sources_note = ""
    try:
        sources = admin.dead_letter_source_names(q, sqs=conns.sqs)
    except (
        botocore.exceptions.ClientError
    ) as exc:  # denied/unsupported: the name rule still applies
        sources, sources_note = (
            (),
            f"ListDeadLetterSourceQueues failed: {aws_error_kind(exc).value}",
        )
    path = attachment_path(f"purge-preview-{q.name}.json")
    doc = {
        "queue": q.name,
        "url": q.url,
        "counts": {
            "visible": counts.visible,
            "in_flight": counts.in_flight,
            "delayed": counts.delayed,
            "at": counts.at,
        },
        "dead_letter_sources": list(sources),
        "dead_letter_sources_note": sources_note,
        "peek": {
            "method": "ReceiveMessage VisibilityTimeout=0 (stays visible; receive count +1)",
            "skipped": peeked.skipped,
            "messages": [dataclasses.asdict(m) for m in peeked.messages],
        },
    }
    path.write_text(json.dumps(doc, indent=2, default=str))
    return PurgePreview(q, counts, peeked, tuple(sources), str(path))


def preview_text(p: PurgePreview | None) -> str:
    """One paragraph for the preview cell."""
    if p is None:
        return "Not a purge: nothing to preview."
    c = p.counts
    dlq = f" It is the dead-letter queue of {', '.join(p.dlq_sources)}." if p.dlq_sources else ""
    peeked = p.peek.skipped or f"{len(p.peek.messages)} message(s) peeked (still visible)"
    return (
        f"{p.queue.name}: {c.total:,} message(s) would be deleted (visible {c.visible:,}, in "
        f"flight {c.in_flight:,}, delayed {c.delayed:,}); {peeked}.{dlq} Written to the evidence: "
        f"attachments/{p.attachment.rsplit('/', 1)[-1]}."
    )


def preview_frame(p: PurgePreview | None):
    """The peeked messages (redacted) as a table; None when there is no preview."""
    return None if p is None else p.peek.to_frame()


def consumer_text(state) -> str:
    """One line for the consumer cell."""
    if state is None:
        return "No consumer named (consumer=''): nothing to scale."
    return f"{state.target}: {state.replicas} desired, {state.ready} ready/running."


def plan(
    inp: Inputs,
    queues: tuple[QueueRef, ...],
    scale_state=None,
    purge_preview: PurgePreview | None = None,
) -> Plan:
    """The action's plan (read only); the report action plans nothing."""
    if inp.action is Action.SET_VISIBILITY:
        return admin.plan_visibility(
            queues, timeout=inp.visibility_timeout, max_queues=inp.max_queues
        )
    if inp.action is Action.PURGE:
        assert purge_preview is not None, "purge needs preview(...) first"
        p = purge_preview
        return admin.plan_purge(p.queue, p.counts, dlq_sources=p.dlq_sources, peeked=p.peek)
    if inp.action is Action.SCALE_CONSUMERS:
        mod = k8s_scale if inp.consumer_kind == "k8s-deployment" else ecs_scale
        return mod.plan_scale_by(
            scale_state, delta=inp.consumers_delta, max_up=MAX_DELTA_UP, param="consumers_delta"
        )
    return Plan(title="queue-ops report: nothing to change")


def executor(inp: Inputs, conns: Connections) -> executors.Executor:
    """Each change to the handler its adapter registered; the purge waits out the window
    (60 s, or ``OPSLIB_SQS_PURGE_WAIT_SECONDS`` for the sandbox)."""
    return executors.bind(
        {"purge_wait_s": admin.purge_wait_seconds()},
        allowed=ACTIONS,
        sqs=conns.sqs,
        api=conns.k8s,
        ecs=conns.ecs,
    )


# --- verify and record -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What the world looks like after the apply, per change, and whether it is what was planned."""

    applied: bool
    verified: bool | None  # None: nothing applied
    rows: tuple[dict[str, Any], ...]
    findings: tuple[Finding, ...]
    purged: bool = False
    purged_count: int = 0

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=["target", "status", "planned", "now", "ok"])


def _now_value(inp: Inputs, conns: Connections, change) -> Any:
    p = change.params
    if change.action == admin.VISIBILITY_ACTION:
        return admin.visibility_now(
            QueueRef(change.target, p["queue_url"], "", False), sqs=conns.sqs
        )
    if change.action == admin.PURGE_ACTION:
        return admin.counts_now(
            QueueRef(change.target, p["queue_url"], "", False), sqs=conns.sqs
        ).total
    return consumer(inp, conns).replicas


def _planned(change) -> Any:
    p = change.params
    if change.action == admin.VISIBILITY_ACTION:
        return int(p["visibility_timeout"])
    if change.action == admin.PURGE_ACTION:
        return 0
    return int(p.get("replicas", p.get("desiredCount", 0)))


def verify(
    inp: Inputs, conns: Connections, planned: Plan, result: ApplyResult | None
) -> Verification:
    """Read back every applied change: the visibility timeout, the replica count, the emptiness
    of the purged queue (counted after the purge window)."""
    if result is None or planned.empty:
        return Verification(False, None, (), ())
    rows, findings = [], []
    purged, purged_count = False, 0
    for change, o in zip(planned.changes, result.outcomes, strict=False):
        if o.status is not ChangeStatus.APPLIED:
            rows.append(
                {
                    "target": o.target,
                    "status": o.status.value,
                    "planned": _planned(change),
                    "now": None,
                    "ok": False,
                }
            )
            findings.append(
                Finding(Severity.ERROR, f"{o.target}: {o.status.value}", o.target, o.detail)
            )
            continue
        try:
            now = _now_value(inp, conns, change)
        except Exception as exc:  # noqa: BLE001 - shown: the change was applied, the read-back failed
            findings.append(error_finding(o.target, exc))
            now = None
        want = _planned(change)
        if change.action == admin.PURGE_ACTION:
            purged, purged_count = True, int(o.data.get("purged_count", 0))
        ok = now == want
        rows.append(
            {"target": o.target, "status": o.status.value, "planned": want, "now": now, "ok": ok}
        )
        if ok:
            findings.append(
                Finding(Severity.OK, f"{o.target}: verified ({now})", o.target, o.detail)
            )
        else:
            nxt = (
                "Producers are still sending, or the purge is not finished: count again in a minute."
                if change.action == admin.PURGE_ACTION
                else "Something else changed it after the apply (an autoscaler?): look, then plan again."
            )
            findings.append(
                Finding(
                    Severity.WARNING,
                    f"{o.target}: {now} now, {want} planned",
                    o.target,
                    o.detail,
                    nxt,
                )
            )
    applied = any(o.status is ChangeStatus.APPLIED for o in result.outcomes)
    return Verification(
        applied,
        all(r["ok"] for r in rows) if rows else None,
        tuple(rows),
        tuple(findings),
        purged,
        purged_count,
    )


@dataclass(frozen=True)
class QueueOpsRecord:
    """The run's key results for ``record.json`` (names of the runbook's contract)."""

    action: str
    queues: list[dict[str, Any]]
    purged: bool
    purged_count: int
    applied: bool
    verified: bool | None
    consumer: str
    changes: list[dict[str, Any]]
    plan_hash: str


def summary(inp: Inputs, rep: QueueReport, planned: Plan, ver: Verification) -> QueueOpsRecord:
    """The record of this run: the queues as the report saw them, what was planned and applied."""
    return QueueOpsRecord(
        action=inp.action.value,
        queues=[r.record() for r in rep.rows],
        purged=ver.purged,
        purged_count=ver.purged_count,
        applied=ver.applied,
        verified=ver.verified,
        consumer=inp.consumer,
        changes=[dict(r) for r in ver.rows]
        or [{"target": c.target, "effect": c.effect} for c in planned.changes],
        plan_hash=planned.digest(),
    )
