"""Approve later: apply the plan of a dry run's bundle, bound to its digest, under the two-person rule.

A dry run's bundle holds every plan the gate was shown and its digest. ``opslib approve
BUNDLE --by alice`` checks that bundle (it verifies, it holds a plan with changes, nothing has
applied it yet, the approver is allowed), records the approval beside it in the evidence store
(``.approvals/RUNBOOK/RUN/<approver>.json``, written once, never overwritten) and, once enough
distinct approvers have signed off, re-runs the same runbook with the same parameters plus
``dry_run=False`` and an :class:`~opslib.core.plans.ApprovalGrant`. In that run
:func:`opslib.safety.gate` applies a plan only if it still hashes to an approved digest; when
the world moved meanwhile it refuses ("the world changed since the plan; review the new plan",
exit 2) and nothing is applied. The new bundle names the dry run's (``approves_bundle``).

Two-person rule (``--require-approvers 2`` or ``OPSLIB_REQUIRE_APPROVERS=2``): two distinct
approvers, neither the operator who started the dry run; the first ``approve`` only records.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opslib import catalog, runner
from opslib.core.errors import BadInputError, EvidenceError, UnknownRunbookError
from opslib.core.plans import Approval, ApprovalGrant, required_approvers
from opslib.core.redact import was_redacted
from opslib.core.runtime import utcnow_iso
from opslib.evidence.bundle import os_user
from opslib.evidence.manifest import verify
from opslib.evidence.record import RunRecord, RunStatus
from opslib.evidence.store import Store, split_bundle_location

#: Folder of the evidence store holding approvals given to dry runs, one file per approver.
APPROVALS_DIR = ".approvals"
_SAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def _approver_file(name: str) -> str:
    return _SAFE.sub("_", name) + ".json"


@dataclass(frozen=True)
class DryRun:
    """A verified dry-run bundle and what can be approved in it."""

    location: str
    store: Store
    bundle: str
    record: RunRecord
    plan_digests: tuple[str, ...]

    @property
    def operator(self) -> str:
        op = self.record.get("operator") or {}
        return str(op.get("jupyterhub_user") or op.get("os_user") or "")


@dataclass(frozen=True)
class ApproveOutcome:
    """What ``approve`` did: recorded an approval and waits for more, or ran the approved change."""

    approvals: tuple[Approval, ...]
    required: int
    result: runner.RunResult | None = None
    waiting_for: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        return 0 if self.result is None else self.result.exit_code


def load_dry_run(location: str) -> DryRun:
    """The bundle at ``location`` if it can be approved; BadInputError saying why not."""
    res = verify(location)
    if not res.ok:
        raise BadInputError(
            f"{location} does not verify ({res.first_bad}: {'; '.join(res.problems)}); an "
            "approval must be given to intact evidence. Nothing applied: run the dry run again."
        )
    store, bundle = split_bundle_location(location)
    try:
        record = RunRecord(json.loads(store.read_bytes(f"{bundle}/record.json")))
    except (EvidenceError, ValueError) as exc:
        raise BadInputError(f"{location} has no readable record.json ({exc}).") from exc
    planned = [p for p in record.plans if p.get("changes") and p.get("decision") == "dry run"]
    if not planned:
        decided = sorted({str(p.get("decision")) for p in record.plans}) or ["no plan at all"]
        raise BadInputError(
            f"{location} holds no dry-run plan with changes to approve ({', '.join(decided)}). "
            "Approve the bundle of a dry run (dry_run=True) whose plan lists changes."
        )
    if record.get("status") != RunStatus.SUCCEEDED:
        raise BadInputError(
            f"The dry run {location} ended {record.get('status')}; approve only a dry run that "
            "completed (its plan may be partial). Run it again."
        )
    return DryRun(
        location, store, bundle, record, tuple(dict.fromkeys(str(p["digest"]) for p in planned))
    )


def applied_by(dry: DryRun) -> list[str]:
    """Bundles of runs that already acted on this dry run's approval (anything but refused)."""
    out = []
    for b in dry.store.list_bundles():
        try:
            rec = json.loads(dry.store.read_bytes(f"{b}/record.json"))
        except (EvidenceError, ValueError):
            continue
        link = str(rec.get("approves_bundle") or "")
        if link and link.rstrip("/").endswith(dry.bundle) and rec.get("status") != "refused":
            out.append(dry.store.url(b))
    return out


def pending_approvals(dry: DryRun) -> list[Approval]:
    """Approvals recorded for this dry run so far, oldest first."""
    out = []
    for rel in dry.store.list_files(f"{APPROVALS_DIR}/{dry.bundle}"):
        d = json.loads(dry.store.read_bytes(rel))
        out.append(
            Approval(
                approver=d["approver"],
                plan_hash=d["plan_digests"][0],
                approved_at=d["approved_at"],
                change_ticket=d.get("change_ticket", ""),
                via="opslib approve",
                source_bundle=dry.location,
            )
        )
    return sorted(out, key=lambda a: a.approved_at)


def _rerun_parameters(dry: DryRun, approvers: list[str], ticket: str) -> dict[str, Any]:
    params = dict(dry.record.parameters)
    masked = sorted(k for k, v in params.items() if was_redacted(v))
    if masked:
        raise BadInputError(
            f"Parameter(s) {', '.join(masked)} of {dry.location} were redacted in the evidence, so "
            "the run cannot be repeated from it; run it again with the change applied by hand."
        )
    params.update(dry_run=False, approved_by=", ".join(approvers))
    if ticket:
        params["change_ticket"] = ticket
    return params


def _runbook(dry: DryRun) -> str:
    name = dry.record.runbook
    try:
        catalog.resolve(name)
        return name
    except UnknownRunbookError:
        path = str(dry.record.get("notebook") or "")
        if path and os.path.isfile(path):
            return path
        raise


def approve(
    location: str,
    *,
    by: str,
    ticket: str = "",
    require_approvers: int | None = None,
    run: Callable[..., runner.RunResult] = runner.run,
    evidence_dir: str | None = None,
    timeout: float | None = None,
    run_kwargs: Mapping[str, Any] | None = None,
) -> ApproveOutcome:
    """Record ``by``'s approval of the dry run at ``location``; apply once enough have approved.

    Raises BadInputError (exit 2, nothing applied) for a bundle that does not verify, holds no
    plan, was already applied, or an approver who may not approve (twice, or the dry run's
    operator under the two-person rule). ``run`` is the runner (the CLI passes the
    sandbox-composed one for a sandbox run).
    """
    by = by.strip()
    if not by:
        raise BadInputError("--by is required: who approves the plan.")
    dry = load_dry_run(location)
    # a flag may raise the bar the environment sets (OPSLIB_REQUIRE_APPROVERS), never lower it
    required = max(require_approvers or 0, required_approvers())
    done = applied_by(dry)
    if done:
        raise BadInputError(
            f"The plan of {location} was already applied by {', '.join(done)}; a plan is applied "
            "once. Run a new dry run to plan again."
        )
    earlier = pending_approvals(dry)
    if any(a.approver == by for a in earlier):
        raise BadInputError(
            f"{by} already approved {location}; "
            + (
                f"this change needs {required} distinct approvers."
                if required >= 2
                else "the approval stands."
            )
        )
    if required >= 2 and by == dry.operator:
        raise BadInputError(
            f"{by} started the dry run {location}; under the two-person rule its operator cannot "
            "approve it. Ask two other people."
        )
    ticket = ticket.strip() or str(dry.record.parameters.get("change_ticket") or "")
    mine = Approval(
        approver=by,
        plan_hash=dry.plan_digests[0],
        approved_at=utcnow_iso(),
        change_ticket=ticket,
        via="opslib approve",
        source_bundle=dry.location,
    )
    doc = {
        "approver": by,
        "approved_at": mine.approved_at,
        "change_ticket": ticket,
        "plan_digests": list(dry.plan_digests),
        "bundle": dry.location,
        "recorded_by_os_user": os_user(),
    }
    try:
        dry.store.write_new(
            f"{APPROVALS_DIR}/{dry.bundle}/{_approver_file(by)}",
            (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(),
        )
    except EvidenceError as exc:
        raise BadInputError(f"{by} already approved {location}.") from exc
    approvals = (*earlier, mine)
    names = list(dict.fromkeys(a.approver for a in approvals))
    if len(names) < required:
        return ApproveOutcome(
            approvals,
            required,
            waiting_for=required - len(names),
            notes=(
                f"approval {len(names)} of {required} recorded for plan "
                f"{', '.join(d[:12] for d in dry.plan_digests)}; waiting for "
                f"{required - len(names)} more approver(s), not {', '.join([dry.operator, *names])}",
            ),
        )
    grant = ApprovalGrant(
        source_bundle=dry.location,
        plan_digests=dry.plan_digests,
        approvals=approvals,
        require_approvers=required,
        operator=dry.operator,
    )
    evidence = evidence_dir or dry.store.root
    result = run(
        _runbook(dry),
        _rerun_parameters(dry, names, ticket),
        evidence_dir=evidence,
        timeout=timeout,
        approval=grant,
        require_approvers=required,
        **dict(run_kwargs or {}),
    )
    return ApproveOutcome(approvals, required, result=result)
