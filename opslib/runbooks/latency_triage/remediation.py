"""The verdict (ranked, causes before symptoms), the remediation plan (terminate root
blockers, scale out), its executor, and the re-check of the blocking chain."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from opslib.aws import ecs as ecs_mod
from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity, to_frame
from opslib.core.plans import ApplyResult, ChangeStatus, Plan
from opslib.k8s import workloads
from opslib.pg import activity as act
from opslib.runbooks.latency_triage.inputs import Connections, TriageInputs
from opslib.runbooks.latency_triage.signals import DatabaseCheck, ServiceCheck
from opslib.runbooks.latency_triage.thresholds import cause_first


@dataclass(frozen=True)
class Verdict:
    """All findings ranked (causes before symptoms at equal severity) and the one-line verdict."""

    findings: tuple[Finding, ...]
    line: str

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def to_frame(self):

        return to_frame(self.findings)

    @property
    def rerun(self) -> dict[str, Any]:
        """The parameters to run again with for a load spike (scale_out_by=2), or {} when none."""
        return next((dict(f.data["rerun"]) for f in self.findings if f.data.get("rerun")), {})

    def summary(self) -> list[dict[str, str]]:
        """[{severity, title}] for the evidence record."""
        return [{"severity": f.severity.value, "title": f.title} for f in self.findings]


def verdict(*parts: Any) -> Verdict:
    """Rank the findings of every part (anything with ``.findings``, or findings themselves)."""
    allf: list[Finding] = []
    for p in parts:
        if isinstance(p, Finding):
            allf.append(p)
        elif isinstance(p, Iterable) and not hasattr(p, "findings"):
            allf += [f for f in p if isinstance(f, Finding)]
        else:
            allf += list(getattr(p, "findings", ()))
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in allf:  # a metrics error may be attached to several sections: show it once
        if (f.source, f.title) not in seen:
            seen.add((f.source, f.title))
            unique.append(f)
    ranked = sorted(unique, key=cause_first)
    if not ranked or ranked[0].severity in (Severity.OK, Severity.INFO):
        line = "No problem found in the sources given" + (
            f"; {sum(f.title.startswith('skipped') for f in ranked)} source(s) skipped"
            if ranked
            else ""
        )
    else:
        top = ranked[0]
        line = f"{top.severity.value.upper()}: {top.title}"
        if top.next_action:
            line += f" -> {top.next_action}"
    return Verdict(tuple(ranked), line)


# --- 6. remediation --------------------------------------------------------------------------


def blocker_selection(
    inp: TriageInputs, db: DatabaseCheck
) -> tuple[list[tuple[str, int]], list[int]]:
    """Options and preselection of the "root blockers to terminate" choice in the runbook.

    Options: the root blockers that may be terminated, labelled with pid, user, application and
    how many sessions wait on them. Preselected from the parameters exactly as a headless plan
    would pick them: the first ``max_terminations`` when ``terminate_blocking``, else none.
    """

    options = act.root_options(db.activity) if db.activity is not None else []
    chosen = (
        [pid for _label, pid in options][: inp.max_terminations] if inp.terminate_blocking else []
    )
    return options, chosen


def plan_remediation(
    inp: TriageInputs,
    *,
    db: DatabaseCheck,
    services: ServiceCheck,
    only_pids: Sequence[int] | None = None,
) -> Plan:
    """One plan: terminate root blockers (if asked) and scale ECS / the deployments (if asked).

    ``only_pids`` is the final choice of root blockers (see :func:`blocker_selection`): those
    are planned (within ``max_terminations``) even when ``terminate_blocking`` is False, since
    the engineer picked them; roots left out are named in the plan's warnings. None keeps the
    parameters' behaviour (the first ``max_terminations`` roots when ``terminate_blocking``).
    """

    if only_pids and db.activity is None:
        raise BadInputError(
            f"root blockers {list(only_pids)} were chosen but there is no PostgreSQL snapshot "
            "(no pg_dsn, or it failed): give pg_dsn and re-run the database step."
        )
    parts: list[Plan] = []
    if db.activity is not None:
        if inp.terminate_blocking or only_pids:
            parts.append(
                act.plan_terminate(
                    db.activity, max_terminations=inp.max_terminations, only_pids=only_pids
                )
            )
        elif db.activity.root_blockers:
            parts.append(
                _note(
                    f"{len(db.activity.root_blockers)} root blocking session(s) {list(db.activity.root_blockers)} "
                    "not planned: set terminate_blocking=True to terminate them"
                )
            )
    elif inp.terminate_blocking:
        parts.append(
            _note("terminate_blocking=True but no PostgreSQL snapshot (no pg_dsn, or it failed)")
        )
    if inp.scale_out_by:
        if services.ecs is not None:
            parts.append(ecs_mod.plan_scale(services.ecs, scale_out_by=inp.scale_out_by))
        if inp.k8s_namespace and (services.deployments or services.pods):
            parts.append(workloads.plan_scale(services.deployments, scale_out_by=inp.scale_out_by))
        if services.ecs is None and not services.deployments:
            parts.append(
                _note(
                    "scale_out_by > 0 but neither an ECS service nor a Kubernetes deployment was found"
                )
            )
    base = Plan(
        title="High-latency remediation",
        limits={"max_terminations": inp.max_terminations, "scale_out_by": inp.scale_out_by},
    )
    # the runbook's limits are what shaped the plan; the parts' own limits are not repeated
    return replace(base.merge(*parts), limits=base.limits)


def _note(warning: str) -> Plan:
    """A plan part that only warns (a remediation that was asked for but cannot be planned)."""
    return Plan(title="", warnings=(warning,))


#: the change kinds this runbook plans (each handler is registered by the adapter that owns it)
ACTIONS = (act.TERMINATE_ACTION, ecs_mod.SCALE_ACTION, workloads.SCALE_ACTION)


def executor(conns: Connections) -> executors.Executor:
    """The ``execute`` callable for ``opslib.safety.gate``: each change goes to the handler its
    adapter registered for its action, with this run's clients."""
    return executors.bind(conn=conns.pg, ecs=conns.ecs, api=conns.k8s, allowed=ACTIONS)


def terminated_pids(result: ApplyResult | None) -> list[int]:
    """PIDs that pg_terminate_backend actually ended in this run."""
    if result is None:
        return []
    return [
        int(o.data["pid"])
        for o in result.outcomes
        if o.action == act.TERMINATE_ACTION and o.status is ChangeStatus.APPLIED and "pid" in o.data
    ]


@dataclass(frozen=True)
class Recheck:
    """The blocking chain after remediation."""

    blocking_pids: tuple[int, ...]
    waiting_pids: tuple[int, ...]
    seconds: float
    activity: Any = None

    @property
    def cleared(self) -> bool:
        return not self.blocking_pids and not self.waiting_pids


def recheck_blocking(
    conns: Connections,
    result: ApplyResult | None,
    *,
    timeout_s: float = 15.0,
    long_query_seconds: int = 300,
) -> Recheck | None:
    """After terminations, poll (bounded) until the waiters are through; None when nothing was terminated."""

    if conns.pg is None or not terminated_pids(result):
        return None
    t0 = time.monotonic()
    snap = act.snapshot(conn=conns.pg, long_query_seconds=long_query_seconds)
    while (snap.root_blockers or snap.waiting) and time.monotonic() - t0 < timeout_s:
        time.sleep(0.25)
        snap = act.snapshot(conn=conns.pg, long_query_seconds=long_query_seconds)
    return Recheck(snap.root_blockers, snap.waiting, round(time.monotonic() - t0, 2), snap)
