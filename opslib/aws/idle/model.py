"""The idle scan's vocabulary: the kinds of waste, thresholds, resources found, the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from opslib.aws.pricing import PriceTable
from opslib.core.findings import Finding, Severity

if TYPE_CHECKING:
    import pandas as pd


class IdleKind(StrEnum):
    """A kind of idle or wasted resource; the order is the order the scan checks them in."""

    EBS_UNATTACHED = "ebs-unattached"
    EIP_UNASSOCIATED = "eip-unassociated"
    NAT_IDLE = "nat-idle"
    EC2_STOPPED = "ec2-stopped"
    SNAPSHOT_OLD = "snapshot-old"
    LB_IDLE = "lb-idle"
    RDS_IDLE = "rds-idle"
    DYNAMODB_OVERPROVISIONED = "dynamodb-overprovisioned"
    LOGS_NO_RETENTION = "logs-no-retention"


#: finding kinds, in the order they are checked
KINDS: tuple[IdleKind, ...] = tuple(IdleKind)
#: the kinds a cleanup plan can act on
CLEANABLE: tuple[IdleKind, ...] = (IdleKind.EIP_UNASSOCIATED, IdleKind.EBS_UNATTACHED)
GB = 1024**3


@dataclass(frozen=True)
class IdleThresholds:
    """What counts as idle; the defaults are conservative (flag only clearly unused things)."""

    lookback_days: int = 14
    nat_min_gb: float = 1.0  # NAT gateway: less than this many GB out over the lookback
    rds_max_cpu_pct: float = 5.0
    rds_max_connections: float = 1.0
    dynamodb_max_util_pct: float = 20.0
    snapshot_retention_days: int = 90


@dataclass(frozen=True)
class IdleResource:
    """One idle or wasteful resource with its estimated monthly cost and what to do about it."""

    kind: IdleKind
    region: str
    resource_id: str
    name: str
    monthly_cost: float
    evidence: str
    action: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", IdleKind(self.kind))

    def to_finding(self, currency: str = "USD") -> Finding:
        return Finding(
            Severity.WARNING,
            f"{self.kind}: {self.resource_id} ({self.region}) ~{self.monthly_cost:,.2f} {currency}/month",
            source=f"idle:{self.region}",
            evidence=self.evidence,
            next_action=self.action,
            data={"kind": self.kind.value, "resource_id": self.resource_id},
        )


@dataclass(frozen=True)
class NatTraffic:
    """A NAT gateway's traffic over the lookback and what its data processing costs per month."""

    region: str
    nat_gateway_id: str
    gb_out: float
    monthly_processing_cost: float


@dataclass(frozen=True)
class IdleReport:
    """Idle resources (sorted by savings, above the minimum), skipped ones, errors, the prices used."""

    resources: tuple[IdleResource, ...]
    below_minimum: tuple[IdleResource, ...]
    errors: tuple[Finding, ...]
    regions: tuple[str, ...]
    prices: PriceTable
    nat_traffic: tuple[NatTraffic, ...] = ()
    min_monthly_savings: float = 0.0

    @property
    def monthly_savings(self) -> float:
        return round(sum(r.monthly_cost for r in self.resources), 2)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {
                "kind": r.kind.value,
                "region": r.region,
                "resource_id": r.resource_id,
                "name": r.name,
                "monthly_cost": round(r.monthly_cost, 2),
                "evidence": r.evidence,
                "action": r.action,
            }
            for r in self.resources
        ]
        return pd.DataFrame(
            rows,
            columns=["kind", "region", "resource_id", "name", "monthly_cost", "evidence", "action"],
        )

    def by_kind(self) -> pd.DataFrame:
        frame = self.to_frame()
        if not len(frame):
            return frame.assign(count=[]).loc[:, ["kind", "count", "monthly_cost"]]
        return (
            frame.groupby("kind", as_index=False)
            .agg(count=("resource_id", "size"), monthly_cost=("monthly_cost", "sum"))
            .sort_values("monthly_cost", ascending=False, kind="stable")
            .reset_index(drop=True)
        )

    def findings(self) -> list[Finding]:
        out = [r.to_finding(self.prices.currency) for r in self.resources]
        if self.below_minimum:
            out.append(
                Finding(
                    Severity.INFO,
                    f"{len(self.below_minimum)} idle resource(s) below min_monthly_savings="
                    f"{self.min_monthly_savings:g} not listed",
                    source="idle",
                    evidence=", ".join(
                        f"{r.kind}:{r.resource_id}" for r in self.below_minimum[:10]
                    ),
                )
            )
        return out + list(self.errors)
