"""The rolling-restart runbook: restart deployments (or ECS services) one at a time, waiting for
each rollout, and stop at the first one that fails so the rest are never touched.

The notebook steps through :func:`inputs` (exit 2 on bad parameters) -> :func:`connect` ->
:func:`targets` (the deployments in order, each must exist, at most ``max_targets``) ->
:func:`plan` -> ``opslib.safety.gate(plan, ..., execute=executor(conns))`` (each change
restarts one target and waits for it; a failure stops the apply) -> :func:`sequence`
(restarted, failed, not started) for the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opslib.aws import ecs_deploy
from opslib.clients import aws_client, k8s_api
from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.plans import ApplyResult, ChangeStatus, Plan, check_limit, parse_csv, unique
from opslib.k8s import restart

__all__ = [
    "ACTIONS",
    "Connections",
    "Inputs",
    "Mode",
    "Sequence",
    "Targets",
    "connect",
    "executor",
    "inputs",
    "plan",
    "sequence",
    "targets",
]

ACTIONS = (restart.RESTART_ACTION, restart.FORCE_ACTION, ecs_deploy.REDEPLOY_ACTION)
MAX_WAIT_MINUTES = 120


class Mode(StrEnum):
    ROLLING = "rolling"
    FORCE = "force"


@dataclass(frozen=True)
class Inputs:
    """The runbook's parameters, checked."""

    platform: str
    namespace: str
    deployments: tuple[str, ...]
    ecs_cluster: str
    ecs_services: tuple[str, ...]
    mode: Mode
    pause_seconds: int
    max_targets: int
    wait_timeout_minutes: int
    region: str


def inputs(
    platform: str = "",
    namespace: str = "",
    deployments: str = "",
    ecs_cluster: str = "",
    ecs_services: str = "",
    *,
    mode: str = "rolling",
    pause_seconds: int = 30,
    max_targets: int = 5,
    wait_timeout_minutes: int = 15,
    region: str = "",
) -> Inputs:
    """Every check that needs no client; one BadInputError (exit 2) naming each bad parameter."""
    problems = []
    kind = (platform or "").strip().lower()
    if kind not in ("kubernetes", "ecs"):
        problems.append(f"platform={platform!r}: give 'kubernetes' or 'ecs'")
    elif kind == "kubernetes" and not namespace:
        problems.append("platform=kubernetes needs namespace")
    elif kind == "ecs" and not (ecs_cluster and ecs_services):
        problems.append("platform=ecs needs ecs_cluster and ecs_services")
    if mode not in tuple(Mode):
        problems.append(f"mode={mode!r}: give 'rolling' or 'force'")
    elif kind == "ecs" and mode == Mode.FORCE:
        problems.append(
            "mode=force is for Kubernetes; on ECS use mode=rolling (forceNewDeployment)"
        )
    if pause_seconds < 0 or pause_seconds > 3600:
        problems.append(f"pause_seconds={pause_seconds}: give 0..3600")
    if max_targets < 1:
        problems.append(f"max_targets={max_targets}: give at least 1")
    if not 1 <= wait_timeout_minutes <= MAX_WAIT_MINUTES:
        problems.append(f"wait_timeout_minutes={wait_timeout_minutes}: give 1..{MAX_WAIT_MINUTES}")
    if problems:
        raise BadInputError("; ".join(problems) + ". Nothing was restarted.")
    return Inputs(
        platform=kind,
        namespace=namespace,
        deployments=tuple(unique(parse_csv(deployments))),
        ecs_cluster=ecs_cluster,
        ecs_services=tuple(unique(parse_csv(ecs_services))),
        mode=Mode(mode),
        pause_seconds=pause_seconds,
        max_targets=max_targets,
        wait_timeout_minutes=wait_timeout_minutes,
        region=region,
    )


@dataclass(frozen=True)
class Connections:
    k8s: Any = None
    ecs: Any = None


def connect(inp: Inputs) -> Connections:
    """The platform's client, from the standard chains."""
    if inp.platform == "kubernetes":
        return Connections(k8s=k8s_api())
    return Connections(ecs=aws_client("ecs", region=inp.region))


@dataclass(frozen=True)
class Targets:
    """What will be restarted, in order, with what was found (replicas, revision, readiness)."""

    platform: str
    k8s: tuple = ()
    ecs: tuple = ()

    @property
    def names(self) -> list[str]:
        if self.platform == "kubernetes":
            return [f"{s.namespace}/{s.name}" for s in self.k8s]
        return [f"{h.cluster}/{h.service}" for h in self.ecs]

    def to_frame(self):
        import pandas as pd

        if self.platform == "kubernetes":
            rows = [
                {
                    "order": i + 1,
                    "target": f"{s.namespace}/{s.name}",
                    "revision": s.revision,
                    "replicas": s.replicas,
                    "ready": s.ready,
                    "images": ", ".join(s.images),
                    "state": s.status_text(),
                }
                for i, s in enumerate(self.k8s)
            ]
        else:
            rows = [
                {
                    "order": i + 1,
                    "target": f"{h.cluster}/{h.service}",
                    "revision": h.current.revision if h.current else 0,
                    "replicas": h.desired,
                    "ready": h.running,
                    "images": ", ".join(h.current.images) if h.current else "",
                    "state": ", ".join(f"{d.status} {d.rollout_state}" for d in h.deployments),
                }
                for i, h in enumerate(self.ecs)
            ]
        return pd.DataFrame(
            rows, columns=["order", "target", "revision", "replicas", "ready", "images", "state"]
        )


def targets(inp: Inputs, conns: Connections) -> Targets:
    """The targets in order (empty ``deployments``: every deployment of the namespace, sorted);
    NotFoundError for a missing one, BadInputError beyond ``max_targets``."""
    if inp.platform == "kubernetes":
        names = list(inp.deployments) or restart.list_deployments(
            api=conns.k8s, namespace=inp.namespace
        )
        if not names:
            raise BadInputError(f"No deployments in namespace {inp.namespace}: nothing to restart.")
        check_limit("max_targets", len(names), inp.max_targets)
        states = restart.check_exists(api=conns.k8s, namespace=inp.namespace, names=names)
        return Targets(inp.platform, k8s=tuple(states))
    check_limit("max_targets", len(inp.ecs_services), inp.max_targets)
    hists = [
        ecs_deploy.history(ecs=conns.ecs, cluster=inp.ecs_cluster, service=s)
        for s in inp.ecs_services
    ]
    return Targets(inp.platform, ecs=tuple(hists))


def plan(inp: Inputs, tg: Targets) -> Plan:
    """One restart per target, in order, each waited for (read only)."""
    timeout = inp.wait_timeout_minutes * 60
    if inp.platform == "kubernetes":
        return restart.plan_restart(
            list(tg.k8s),
            mode=inp.mode.value,
            pause_seconds=inp.pause_seconds,
            timeout_s=timeout,
            max_targets=inp.max_targets,
        )
    return ecs_deploy.plan_redeploy(
        list(tg.ecs), pause_seconds=inp.pause_seconds, timeout_s=timeout
    )


def executor(conns: Connections) -> executors.Executor:
    """The ``execute`` for :func:`opslib.safety.gate`; apply stops at the first failure."""
    return executors.bind(api=conns.k8s, ecs=conns.ecs, allowed=ACTIONS)


@dataclass(frozen=True)
class Sequence:
    """Which targets were restarted, which failed, which were left alone (in plan order)."""

    mode: str
    restarted: tuple[str, ...]
    failed: tuple[str, ...]
    not_started: tuple[str, ...]
    details: tuple[tuple[str, str, str], ...]  # (target, status, detail)
    notes: tuple[str, ...]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(list(self.details), columns=["target", "status", "detail"])


def sequence(inp: Inputs, planned: Plan, result: ApplyResult | None) -> Sequence:
    """The outcome of the sequence; without an apply, every target is 'not started'."""
    outcomes = {o.target: o for o in (result.outcomes if result else ())}
    restarted, failed, left, details = [], [], [], []
    for c in planned.changes:
        o = outcomes.get(c.target)
        if o is not None and o.status is ChangeStatus.APPLIED:
            restarted.append(c.target)
        elif o is not None and o.status is ChangeStatus.FAILED:
            failed.append(c.target)
        else:
            left.append(c.target)
        details.append(
            (c.target, o.status.value if o else "not started", o.detail if o else "not applied")
        )
    notes = []
    if failed:
        notes.append(
            f"Stopped at {failed[0]}: {len(left)} target(s) were not touched ({', '.join(left)})."
        )
    if inp.mode is Mode.FORCE and result is not None:
        notes.append(
            "Force mode: the replica counts found before scaling to 0 were restored; see "
            "attachments/force-restore-*.json for each count and its restore command."
        )
    return Sequence(
        inp.mode.value, tuple(restarted), tuple(failed), tuple(left), tuple(details), tuple(notes)
    )
