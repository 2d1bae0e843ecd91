"""After the move: counts before and after, what moved, what did not, what may be duplicated."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opslib.aws.sqs.move.model import Strategy
from opslib.aws.sqs.plan import plan_strategy
from opslib.aws.sqs.queues import QueueCounts, queue_counts
from opslib.aws.sqs.target import RedriveTarget
from opslib.core.findings import Finding, Severity
from opslib.core.plans import ApplyResult, Plan

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["RedriveVerification", "before_counts", "verify_redrive"]


@dataclass(frozen=True)
class RedriveVerification:
    """After the move: counts before/after, what moved, what did not, and what may be duplicated."""

    dlq: str
    destinations: tuple[str, ...]
    strategy: Strategy
    applied: bool
    before: tuple[QueueCounts, ...]
    after: tuple[QueueCounts, ...]
    moved: int
    failed: int
    skipped: int
    remaining: int
    possible_duplicates: tuple[str, ...]
    failed_ids: tuple[str, ...]
    retries: int
    throttled: int
    journal: str
    findings: tuple[Finding, ...]

    @property
    def destination(self) -> str:
        return ",".join(self.destinations)

    def to_frame(self):
        """Counts before and after per queue, with the change."""
        import pandas as pd

        b = {c.name: c for c in self.before}
        rows = []
        for a in self.after:
            prev = b.get(a.name)
            rows.append(
                {
                    "queue": a.name,
                    "role": "dlq" if a.name == self.dlq else "destination",
                    "visible_before": prev.visible if prev else None,
                    "in_flight_before": prev.in_flight if prev else None,
                    "visible_after": a.visible,
                    "in_flight_after": a.in_flight,
                    "delta_visible": (a.visible - prev.visible) if prev else None,
                }
            )
        return pd.DataFrame(rows)

    def summary_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "strategy": str(self.strategy),
                    "applied": self.applied,
                    "moved": self.moved,
                    "failed": self.failed,
                    "skipped": self.skipped,
                    "remaining": self.remaining,
                    "possible_duplicates": len(self.possible_duplicates),
                    "retries": self.retries,
                    "throttled": self.throttled,
                }
            ]
        )


def before_counts(target: RedriveTarget, *, sqs: SQSClient) -> tuple[QueueCounts, ...]:
    """Counts of the DLQ and every destination, taken just before the apply cell."""
    return tuple(queue_counts(q, sqs=sqs) for q in (target.dlq, *target.destinations))


def _move_of(result: ApplyResult | None) -> dict[str, Any]:
    """The move's own account (``MoveResult.to_dict``) from the apply result, or {}."""
    move: dict[str, Any] = {}
    for o in getattr(result, "outcomes", ()) or ():
        if isinstance(o.data, Mapping) and "move" in o.data:
            move = dict(o.data["move"])
    return move


def _findings(
    target: RedriveTarget, move: dict[str, Any], before: QueueCounts, after: QueueCounts
) -> list[Finding]:
    moved = int(move.get("moved", 0))
    failed = int(move.get("failed", 0))
    skipped = int(move.get("skipped", 0))
    dups = tuple(move.get("possible_duplicates", ()))
    src = f"sqs:{target.dlq.name}"
    if not move:
        return [
            Finding(
                Severity.INFO,
                "Nothing applied (dry run or no approval): nothing moved",
                src,
                f"{after.total:,} message(s) in {target.dlq.name}",
                "Review the plan; to apply set dry_run=False and approved_by.",
            )
        ]
    findings = [
        Finding(
            Severity.OK if failed == 0 and not dups else Severity.WARNING,
            f"moved {moved:,}, failed {failed:,}, skipped {skipped:,}, remaining {after.total:,}",
            src,
            f"{target.dlq.name}: {before.total:,} -> {after.total:,}",
            "" if failed == 0 else "Failed messages stay in the DLQ; re-run to retry them.",
        )
    ]
    if dups:
        findings.append(
            Finding(
                Severity.WARNING,
                f"{len(dups)} possible duplicate(s): sent but not deleted from the DLQ",
                src,
                ", ".join(dups[:10]) + (" ..." if len(dups) > 10 else ""),
                "Their copies are in the destination AND still in the DLQ; consumers must be "
                "idempotent, or delete these ids from the DLQ before the next redrive.",
                {"ids": list(dups)},
            )
        )
    drop = before.total - after.total
    if move.get("strategy") == "copy" and drop != moved:
        findings.append(
            Finding(
                Severity.INFO,
                f"DLQ count changed by {drop:,} while {moved:,} were moved",
                src,
                "approximate counts, or messages arrived/left during the move",
                "Expected when failures are still arriving; compare with the journal.",
            )
        )
    return findings


def verify_redrive(
    target: RedriveTarget,
    plan: Plan,
    result: ApplyResult | None,
    *,
    sqs: SQSClient,
    before: Iterable[QueueCounts],
) -> RedriveVerification:
    """Compare counts before and after and read the move's own account from the apply result.

    ``result`` is what the apply cell got from :func:`opslib.safety.gate` (None when nothing
    was applied: dry run, or no approval).
    """
    before = tuple(before)
    queues = [q for q in (target.dlq, target.destination, *target.sources) if q is not None]
    after = tuple(
        queue_counts(next(q for q in queues if q.name == c.name), sqs=sqs) for c in before
    )
    move = _move_of(result)
    dlq_after = next(c for c in after if c.name == target.dlq.name)
    dlq_before = next(c for c in before if c.name == target.dlq.name)
    return RedriveVerification(
        dlq=target.dlq.name,
        destinations=tuple(c.name for c in before if c.name != target.dlq.name),
        strategy=Strategy(move.get("strategy") or plan_strategy(plan)),
        applied=bool(move),
        before=before,
        after=after,
        moved=int(move.get("moved", 0)),
        failed=int(move.get("failed", 0)),
        skipped=int(move.get("skipped", 0)),
        remaining=dlq_after.total,
        possible_duplicates=tuple(move.get("possible_duplicates", ())),
        failed_ids=tuple(move.get("failed_ids", ())),
        retries=int(move.get("send_retries", 0)) + int(move.get("delete_retries", 0)),
        throttled=int(move.get("throttled", 0)),
        journal=str(move.get("journal", "")),
        findings=tuple(_findings(target, move, dlq_before, dlq_after)),
    )
