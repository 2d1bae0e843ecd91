"""A dated, overridable price table for estimating what idle resources cost per month.

The AWS Price List API is large, slow and not available in every account or sandbox; a cost
review only needs a handful of unit prices to rank waste, and an estimate that says which price
and which date it used is more useful to an on-call engineer than an exact figure that takes
minutes to fetch. So opslib carries a small table of public on-demand list prices, with the date
they were read and the region they are for, and every estimate names the price it used. Prices
differ by region and change over time: pass ``overrides`` (from your own price list, an EDP
discount, another region) rather than editing this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from opslib.core.errors import BadInputError

#: Hours in an average month (365 * 24 / 12), the convention AWS uses in its own calculators.
HOURS_PER_MONTH = 730.0

#: When the default prices below were read from the public price pages, and for which region.
PRICES_AS_OF = "2026-11-01"
PRICES_REGION = "us-east-1"

#: Public on-demand list prices, us-east-1, USD. Units are in the key name.
DEFAULT_PRICES: Mapping[str, float] = MappingProxyType(
    {
        # EBS volumes, $ per GB-month (io1/io2 provisioned IOPS not included)
        "ebs_gp3_gb_month": 0.08,
        "ebs_gp2_gb_month": 0.10,
        "ebs_io1_gb_month": 0.125,
        "ebs_io2_gb_month": 0.125,
        "ebs_st1_gb_month": 0.045,
        "ebs_sc1_gb_month": 0.015,
        "ebs_standard_gb_month": 0.05,
        # EBS snapshots (standard tier), $ per GB-month of snapshot data
        "ebs_snapshot_gb_month": 0.05,
        # public IPv4 address (in use or idle, since Feb 2024), $ per hour
        "eip_hour": 0.005,
        # NAT gateway, $ per hour and $ per GB processed
        "nat_hour": 0.045,
        "nat_gb": 0.045,
        # load balancers, $ per hour (LCU/NLCU charges not included: idle ones use none)
        "alb_hour": 0.0225,
        "nlb_hour": 0.0225,
        "gwlb_hour": 0.0125,
        "clb_hour": 0.025,
        # RDS single-AZ on-demand, MySQL/PostgreSQL, $ per hour, by instance class
        "rds_db.t3.micro_hour": 0.018,
        "rds_db.t3.small_hour": 0.036,
        "rds_db.t3.medium_hour": 0.072,
        "rds_db.t4g.micro_hour": 0.016,
        "rds_db.t4g.medium_hour": 0.065,
        "rds_db.m5.large_hour": 0.178,
        "rds_db.m6g.large_hour": 0.159,
        "rds_db.r5.large_hour": 0.25,
        "rds_db.r6g.large_hour": 0.225,
        "rds_default_hour": 0.178,  # an unknown class is priced as db.m5.large, and says so
        # DynamoDB provisioned capacity, $ per capacity-unit-hour
        "dynamodb_rcu_hour": 0.00013,
        "dynamodb_wcu_hour": 0.00065,
        # CloudWatch Logs storage, $ per GB-month (archived, compressed)
        "logs_storage_gb_month": 0.03,
    }
)


@dataclass(frozen=True)
class PriceTable:
    """Unit prices with the date and region they are valid for; ``overridden`` lists changed keys."""

    prices: Mapping[str, float] = field(default_factory=lambda: DEFAULT_PRICES)
    as_of: str = PRICES_AS_OF
    region: str = PRICES_REGION
    currency: str = "USD"
    overridden: tuple[str, ...] = ()

    def price(self, key: str) -> float:
        """One unit price; an unknown key is a programming error, said plainly."""
        try:
            return float(self.prices[key])
        except KeyError:
            raise KeyError(f"No price {key!r} in the price table (as of {self.as_of}).") from None

    def ebs_gb_month(self, volume_type: str) -> float:
        """$ per GB-month for an EBS volume type; unknown types are priced as gp2 (the dearest common one)."""
        return self.prices.get(f"ebs_{volume_type}_gb_month", self.price("ebs_gp2_gb_month"))

    def rds_hour(self, instance_class: str) -> tuple[float, bool]:
        """($ per hour, exact) for an RDS class; exact is False when the default price was used."""
        key = f"rds_{instance_class}_hour"
        if key in self.prices:
            return float(self.prices[key]), True
        return self.price("rds_default_hour"), False

    def basis(self, *keys: str) -> str:
        """A short 'which prices, as of when, for where' note for a finding's evidence."""
        parts = [f"{k}={self.prices[k]:g}" for k in keys if k in self.prices]
        return f"{', '.join(parts)} ({self.currency}, {self.region} list prices as of {self.as_of})"

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {"price": k, "usd": v, "overridden": k in self.overridden}
                for k, v in sorted(self.prices.items())
            ],
            columns=["price", "usd", "overridden"],
        )


def price_table(
    overrides: Mapping[str, float] | None = None, *, as_of: str = "", region: str = ""
) -> PriceTable:
    """The default table with ``overrides`` applied (new keys are allowed: e.g. another RDS class).

    Give ``as_of``/``region`` when the overrides come from another date or region, so the
    evidence says what the estimates are based on.
    """
    table = PriceTable()
    if not overrides:
        return replace(table, as_of=as_of or table.as_of, region=region or table.region)
    bad = {k: v for k, v in overrides.items() if not isinstance(v, int | float) or v < 0}
    if bad:
        raise BadInputError(
            f"Price overrides must be non-negative numbers; got {bad}. Use the units in the key "
            "name, e.g. {'ebs_gp3_gb_month': 0.0952}."
        )
    merged = dict(table.prices)
    merged.update({k: float(v) for k, v in overrides.items()})
    return PriceTable(
        prices=MappingProxyType(merged),
        as_of=as_of or table.as_of,
        region=region or table.region,
        overridden=tuple(sorted(overrides)),
    )
