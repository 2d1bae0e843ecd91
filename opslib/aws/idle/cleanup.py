"""The gated cleanup of idle resources: choose, plan (read-only), and the handlers that apply it.

Only two kinds are cleaned up, and only when named in ``cleanup`` (or ticked by the engineer):
unassociated Elastic IPs are released, unattached volumes are snapshotted and then deleted (the
snapshot is the undo). Each cleanable kind has a planner (kind -> the exact change), and each
change's action has its handler registered in :mod:`opslib.core.executors`. Both handlers
re-check the resource right before acting, so a volume attached since the plan is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opslib.aws.idle.model import CLEANABLE, IdleKind, IdleReport, IdleResource
from opslib.clients import aws_client
from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.plans import (
    ApplyResult,
    Change,
    ChangeOutcome,
    ChangeStatus,
    Plan,
    check_limit,
    parse_csv,
)

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    from boto3 import Session
    from mypy_boto3_ec2.client import EC2Client

RELEASE_ADDRESS = "ec2:ReleaseAddress"
SNAPSHOT_AND_DELETE_VOLUME = "ec2:CreateSnapshot+DeleteVolume"
#: every action a cleanup plan may hold (what its executor is allowed to perform)
ACTIONS: tuple[str, ...] = (RELEASE_ADDRESS, SNAPSHOT_AND_DELETE_VOLUME)
#: how long a volume's safety snapshot may take before the delete is given up
SNAPSHOT_WAIT_S = 600


def parse_cleanup(cleanup: str) -> list[IdleKind]:
    """Validate the ``cleanup`` parameter (comma-separated kinds) before anything is planned."""
    kinds = parse_csv(cleanup)
    bad = [k for k in kinds if k not in CLEANABLE]
    if bad:
        raise BadInputError(
            f"cleanup={cleanup!r}: {', '.join(bad)} cannot be cleaned up by this runbook; "
            f"use a comma-separated subset of {', '.join(CLEANABLE)} (or leave it empty)."
        )
    return [IdleKind(k) for k in kinds]


@dataclass(frozen=True)
class CleanupSelection:
    """The "resources to clean up" choice: (label, resource id) options and the preselected ids."""

    options: tuple[tuple[str, str], ...]
    preselected: tuple[str, ...]


def cleanup_selection(report: IdleReport, kinds: Sequence[IdleKind | str]) -> CleanupSelection:
    """Options and preselection of the "resources to clean up" choice in the runbook.

    Options: every resource of the report this runbook can clean up (:data:`CLEANABLE` kinds),
    most expensive first, labelled with id, kind, region and monthly cost. Preselected: those of
    ``kinds`` (the ``cleanup`` parameter), i.e. exactly what a headless plan cleans; more than
    ``max_cleanup`` of them is still refused by :func:`plan_cleanup`, so the engineer narrows
    the selection (or raises the limit) deliberately rather than getting a silent cut.
    """
    cur = report.prices.currency
    options = tuple(
        (
            f"{r.resource_id} · {r.kind} · {r.region} · ~{r.monthly_cost:,.2f} {cur}/month",
            r.resource_id,
        )
        for r in report.resources
        if r.kind in CLEANABLE
    )
    chosen = tuple(
        r.resource_id for r in report.resources if r.kind in CLEANABLE and r.kind in kinds
    )
    return CleanupSelection(options, chosen)


# --- planners: one per cleanable kind --------------------------------------------------------

Planner = Callable[[IdleResource], Change]

_PLANNERS: dict[IdleKind, Planner] = {}


def _plans(kind: IdleKind) -> Callable[[Planner], Planner]:
    def deco(planner: Planner) -> Planner:
        _PLANNERS[kind] = planner
        return planner

    return deco


@_plans(IdleKind.EIP_UNASSOCIATED)
def _plan_release(r: IdleResource) -> Change:
    return Change(
        RELEASE_ADDRESS,
        f"{r.resource_id} ({r.details.get('public_ip', '')}, {r.region})",
        f"release the address; saves ~{r.monthly_cost:,.2f}/month; the IP cannot be got back",
        {
            "region": r.region,
            "allocation_id": r.details.get("allocation_id", ""),
            "public_ip": r.details.get("public_ip", ""),
        },
    )


@_plans(IdleKind.EBS_UNATTACHED)
def _plan_snapshot_delete(r: IdleResource) -> Change:
    return Change(
        SNAPSHOT_AND_DELETE_VOLUME,
        f"{r.resource_id} ({r.region})",
        f"snapshot {r.details.get('size_gb', '?')} GiB, then delete the volume; saves "
        f"~{r.monthly_cost:,.2f}/month less the snapshot storage",
        {"region": r.region, "volume_id": r.resource_id},
    )


def plan_cleanup(
    report: IdleReport,
    kinds: Sequence[IdleKind | str],
    *,
    max_changes: int = 20,
    only_ids: Sequence[str] | None = None,
) -> Plan:
    """A read-only plan: release the unassociated EIPs / snapshot+delete the unattached volumes listed.

    Only resources in ``report.resources`` (above the minimum savings) and of ``kinds``; with
    ``only_ids`` (the engineer's final choice, see :func:`cleanup_selection`) exactly those
    resources instead, whatever their cleanable kind, because the engineer ticked them. An id
    that is not a cleanable resource of the report is refused (BadInputError). Refuses
    (BadInputError) when the plan would exceed ``max_changes`` (blast radius).
    """
    kinds = [IdleKind(k) for k in kinds]
    wanted: set[str] | None = None
    if only_ids is not None:
        cleanable = {r.resource_id for r in report.resources if r.kind in CLEANABLE}
        unknown = [i for i in only_ids if i not in cleanable]
        if unknown:
            raise BadInputError(
                f"{', '.join(unknown)}: not a cleanable idle resource of this scan (cleanable: "
                f"{', '.join(sorted(cleanable)) or 'none'}); choose among the scanned resources, "
                "or re-run the idle scan."
            )
        wanted = set(only_ids)
        kinds = kinds + sorted(
            {r.kind for r in report.resources if r.resource_id in wanted} - set(kinds)
        )
    changes: list[Change] = []
    for r in report.resources:
        if (r.kind not in kinds) if wanted is None else (r.resource_id not in wanted):
            continue
        planner = _PLANNERS.get(r.kind)
        if planner is not None:
            changes.append(planner(r))
    check_limit("max_cleanup", len(changes), max_changes)
    warnings = []
    if any(c.action == RELEASE_ADDRESS for c in changes):
        warnings.append(
            "A released Elastic IP is gone for good; check no allow-list or DNS uses it."
        )
    return Plan(
        "Clean up idle resources",
        tuple(changes),
        tuple(warnings),
        {"max_cleanup": max_changes, "kinds": ",".join(kinds)},
    )


# --- handlers: each re-checks its resource, then acts ----------------------------------------


def _ec2(change: Change, session: Session) -> EC2Client:
    return aws_client("ec2", region=change.params["region"], session=session)


@executors.register(RELEASE_ADDRESS)
def release_address(change: Change, *, session: Session) -> ChangeOutcome:
    """Release an Elastic IP unless it was associated since the plan."""
    p = change.params
    ec2 = _ec2(change, session)
    addr = ec2.describe_addresses(AllocationIds=[p["allocation_id"]])["Addresses"][0]
    if addr.get("AssociationId"):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"now associated ({addr['AssociationId']}): left alone",
        )
    ec2.release_address(AllocationId=p["allocation_id"])
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        "released",
        {"id": p["allocation_id"]},
    )


@executors.register(SNAPSHOT_AND_DELETE_VOLUME)
def snapshot_and_delete_volume(
    change: Change, *, session: Session, snapshot_wait_s: int = SNAPSHOT_WAIT_S
) -> ChangeOutcome:
    """Snapshot a volume, wait for the snapshot, then delete the volume; unless it was attached
    since the plan."""
    p = change.params
    ec2 = _ec2(change, session)
    vol = ec2.describe_volumes(VolumeIds=[p["volume_id"]])["Volumes"][0]
    if vol.get("State") != "available" or vol.get("Attachments"):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.SKIPPED,
            f"state {vol.get('State')}: attached since the plan, left alone",
        )
    snap = ec2.create_snapshot(
        VolumeId=p["volume_id"],
        Description=f"opslib cost-review: before deleting {p['volume_id']}",
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": [{"Key": "opslib:cleanup-of", "Value": p["volume_id"]}],
            }
        ],
    )
    delay = 5
    ec2.get_waiter("snapshot_completed").wait(
        SnapshotIds=[snap["SnapshotId"]],
        WaiterConfig={"Delay": delay, "MaxAttempts": max(1, snapshot_wait_s // delay)},
    )
    ec2.delete_volume(VolumeId=p["volume_id"])
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"snapshot {snap['SnapshotId']} completed, volume deleted",
        {"id": p["volume_id"], "snapshot_id": snap["SnapshotId"]},
    )


def cleanup_executor(
    *, session: Session, snapshot_wait_s: int = SNAPSHOT_WAIT_S
) -> executors.Executor:
    """The ``execute`` for :func:`opslib.safety.gate`: dispatches each cleanup change to its
    registered handler (and refuses any other action)."""
    return executors.bind(session=session, snapshot_wait_s=snapshot_wait_s, allowed=ACTIONS)


def cleaned_ids(result: ApplyResult | None) -> list[str]:
    """The resource ids an :class:`opslib.core.plans.ApplyResult` actually cleaned up (for the evidence)."""
    if result is None:
        return []
    return [o.data.get("id", o.target) for o in result.outcomes if o.status is ChangeStatus.APPLIED]
