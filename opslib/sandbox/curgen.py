"""Synthetic AWS Cost and Usage Report (CUR 2.0) parquet, for the sandbox scenario and the benchmark.

A real CUR is private billing data and large; tests and the benchmark need one that has the real
CUR 2.0 column names and types (so :mod:`opslib.aws.cur` is exercised exactly as on a real export),
a realistic shape (a few dozen services, thousands of resources with a long tail, allocation
tags Environment/Service/Team on most resources, several accounts and regions) and a known
story (one service spiking in the last days). Rows are generated vectorised with numpy and
written row group by row group with pyarrow, so ten million line items take seconds and little
memory. Files are laid out like a CUR 2.0 data export:
``<dir>/data/BILLING_PERIOD=YYYY-MM/<name>-00001.snappy.parquet``.

Compute is mixed the way the cost review's estimates need it: EC2 instances on x86 (m5, t3) and
Graviton (c6g), Fargate on-demand x86 and ARM, Fargate Spot, and Fargate ephemeral storage
(which neither Graviton nor Spot discounts), each resource tagged with an Environment (prod,
staging, dev) or untagged.

The generated columns are the subset of the CUR 2.0 schema that cost analysis reads (a real
export has ~120 more, which are irrelevant here).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opslib.core.errors import BadInputError

#: bumped whenever the same seed stops giving the same rows (a cached CUR is then regenerated)
GENERATOR_VERSION = 2

#: product code -> (Cost Explorer SERVICE name, share of line items, mean $ per line item,
#: usage types, resource id prefix, number of distinct resources)
SERVICES: dict[str, tuple[str, float, float, tuple[str, ...], str, int]] = {
    "AmazonEC2": (
        "Amazon Elastic Compute Cloud - Compute",
        0.30,
        0.060,
        (
            "BoxUsage:m5.large",
            "BoxUsage:c6g.xlarge",
            "BoxUsage:t3.medium",
            "EBS:VolumeUsage.gp3",
            "EBS:SnapshotUsage",
            "NatGateway-Hours",
            "NatGateway-Bytes",
            "DataTransfer-Out-Bytes",
        ),
        "i-",
        4000,
    ),
    "AmazonRDS": (
        "Amazon Relational Database Service",
        0.08,
        0.110,
        ("InstanceUsage:db.r6g.large", "RDS:GP3-Storage", "RDS:ChargedBackupUsage"),
        "arn:aws:rds:db:",
        60,
    ),
    "AmazonS3": (
        "Amazon Simple Storage Service",
        0.15,
        0.012,
        ("TimedStorage-ByteHrs", "Requests-Tier1", "Requests-Tier2", "DataTransfer-Out-Bytes"),
        "bucket-",
        300,
    ),
    "AmazonDynamoDB": (
        "Amazon DynamoDB",
        0.08,
        0.020,
        ("ReadCapacityUnit-Hrs", "WriteCapacityUnit-Hrs", "TimedStorage-ByteHrs"),
        "arn:aws:dynamodb:table/",
        150,
    ),
    "AmazonECS": (
        "Amazon Elastic Container Service",
        0.12,
        0.030,
        (
            "Fargate-vCPU-Hours:perCPU",
            "Fargate-GB-Hours",
            "SpotUsage-Fargate-vCPU-Hours:perCPU",
            "SpotUsage-Fargate-GB-Hours",
            "Fargate-ARM-vCPU-Hours:perCPU",
            "Fargate-ARM-GB-Hours",
            "Fargate-EphemeralStorage-GB-Hours",
        ),
        "arn:aws:ecs:task/",
        2500,
    ),
    "AmazonCloudWatch": (
        "AmazonCloudWatch",
        0.10,
        0.008,
        ("TimedStorage-ByteHrs", "DataProcessing-Bytes", "CW:MetricMonitorUsage"),
        "arn:aws:logs:log-group:",
        800,
    ),
    "AWSLambda": (
        "AWS Lambda",
        0.10,
        0.004,
        ("Lambda-GB-Second", "Request"),
        "arn:aws:lambda:function:",
        400,
    ),
    "AWSELB": (
        "Elastic Load Balancing",
        0.04,
        0.025,
        ("LoadBalancerUsage", "LCUUsage"),
        "arn:aws:elasticloadbalancing:loadbalancer/app/",
        40,
    ),
    "AmazonVPC": (
        "Amazon Virtual Private Cloud",
        0.03,
        0.010,
        ("VpcEndpoint-Hours", "PublicIPv4:InUseAddress", "PublicIPv4:IdleAddress"),
        "vpce-",
        60,
    ),
}

#: region -> usage type prefix, and the share of line items in each
REGIONS: dict[str, tuple[str, float]] = {
    "us-east-1": ("USE1-", 0.70),
    "eu-west-1": ("EU-", 0.20),
    "us-west-2": ("USW2-", 0.10),
}
ACCOUNTS: tuple[str, ...] = ("111111111111", "222222222222", "333333333333")
TAG_VALUES = {
    "user_Environment": ("prod", "staging", "dev"),
    "user_Team": ("payments", "platform", "data", "growth"),
    "user_Service": ("api", "worker", "ledger", "web", "etl"),
}
UNTAGGED_SHARE = 0.12  # resources with no allocation tags at all


@dataclass(frozen=True)
class CurGenResult:
    """What was written: the directory, its files, the number of rows, the days covered."""

    path: Path
    files: tuple[Path, ...]
    rows: int
    start: _dt.date
    days: int
    spike_service: str


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("bill_billing_period_start_date", pa.timestamp("ms")),
            ("bill_payer_account_id", pa.string()),
            ("line_item_line_item_type", pa.string()),
            ("line_item_usage_start_date", pa.timestamp("ms")),
            ("line_item_usage_end_date", pa.timestamp("ms")),
            ("line_item_usage_account_id", pa.string()),
            ("line_item_product_code", pa.string()),
            ("product_servicecode", pa.string()),
            ("line_item_usage_type", pa.string()),
            ("line_item_operation", pa.string()),
            ("line_item_resource_id", pa.string()),
            ("line_item_usage_amount", pa.float64()),
            ("line_item_currency_code", pa.string()),
            ("line_item_unblended_rate", pa.string()),
            ("line_item_unblended_cost", pa.float64()),
            ("line_item_blended_cost", pa.float64()),
            ("line_item_net_unblended_cost", pa.float64()),
            ("product_region_code", pa.string()),
            ("product_instance_type", pa.string()),
            ("resource_tags", pa.map_(pa.string(), pa.string())),
        ]
    )


class _Dictionaries:
    """Small string tables; every string column is a vectorised ``take`` from one of them."""

    def __init__(self, rng) -> None:
        import numpy as np
        import pyarrow as pa

        self.codes = list(SERVICES)
        self.share = np.array([SERVICES[c][1] for c in self.codes])
        self.share = self.share / self.share.sum()
        self.mean_cost = np.array([SERVICES[c][2] for c in self.codes])
        self.code_arr = pa.array(self.codes)
        self.rate_arr = pa.array([f"{m / 10:.10f}" for m in self.mean_cost])
        self.regions = list(REGIONS)
        self.region_share = np.array([REGIONS[r][1] for r in self.regions])
        self.region_arr = pa.array(self.regions)
        self.account_arr = pa.array(list(ACCOUNTS))
        # usage types: per (region, service, usage) one string "USE1-BoxUsage:m5.large"
        self.n_usage = [len(SERVICES[c][3]) for c in self.codes]
        self.usage_offset = np.concatenate([[0], np.cumsum(self.n_usage)[:-1]])
        flat_usage = [u for c in self.codes for u in SERVICES[c][3]]
        self.n_flat = len(flat_usage)
        self.usage_arr = pa.array([REGIONS[r][0] + u for r in self.regions for u in flat_usage])
        self.operation_arr = pa.array([u.split(":")[0].split("-")[0] for u in flat_usage])
        inst = [u.split(":", 1)[1] if u.startswith("BoxUsage:") else "" for u in flat_usage]
        self.instance_arr = pa.array(inst)
        # resources: a pool per service; each resource has fixed tags (or none)
        self.n_res = np.array([SERVICES[c][5] for c in self.codes])
        self.res_offset = np.concatenate([[0], np.cumsum(self.n_res)[:-1]])
        ids = []
        for c in self.codes:
            prefix, n = SERVICES[c][4], SERVICES[c][5]
            ids += [f"{prefix}{i:017x}" for i in rng.integers(0, 2**60, size=n)]
        self.resource_arr = pa.array(ids)
        total = len(ids)
        self.res_tagged = rng.random(total) >= UNTAGGED_SHARE
        self.tag_keys = list(TAG_VALUES)
        self.res_tag_idx = np.stack(
            [rng.integers(0, len(TAG_VALUES[k]), size=total) for k in self.tag_keys], axis=1
        )
        self.tag_value_offset = np.concatenate(
            [[0], np.cumsum([len(TAG_VALUES[k]) for k in self.tag_keys])[:-1]]
        )
        self.tag_value_arr = pa.array([v for k in self.tag_keys for v in TAG_VALUES[k]])
        self.tag_key_arr = pa.array(self.tag_keys)


def _chunk(
    d: _Dictionaries,
    rng,
    lo: int,
    hi: int,
    rows: int,
    start: _dt.date,
    days: int,
    spike_idx: int,
    spike_days: int,
    spike_factor: float,
):
    """Rows [lo, hi) as a pyarrow Table, in time order (row i is on day i * days // rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = hi - lo
    idx = np.arange(lo, hi, dtype=np.int64)
    day = (idx * days) // rows
    hour = rng.integers(0, 24, size=n)
    epoch = np.datetime64(start.isoformat(), "ms")
    t0 = epoch + (day * 86_400_000 + hour * 3_600_000).astype("timedelta64[ms]")
    t1 = t0 + np.timedelta64(3_600_000, "ms")
    month_start = t0.astype("datetime64[M]").astype("datetime64[ms]")

    svc = rng.choice(len(d.codes), size=n, p=d.share)
    region = rng.choice(len(d.regions), size=n, p=d.region_share)
    account = rng.integers(0, len(ACCOUNTS), size=n)
    usage_local = (rng.random(n) * np.array(d.n_usage)[svc]).astype(np.int64)
    usage_flat = d.usage_offset[svc] + usage_local
    usage_idx = region * d.n_flat + usage_flat
    # long tail: a few resources carry most of the cost (u**3 concentrates on low indices)
    res_local = (rng.random(n) ** 3 * d.n_res[svc]).astype(np.int64)
    res = d.res_offset[svc] + res_local

    factor = np.ones(n)
    weekday = (np.datetime64(start.isoformat(), "D") + day.astype("timedelta64[D]")).astype(
        "datetime64[D]"
    ).view("int64") % 7  # 0 = Thursday (1970-01-01), so 2,3 = Saturday, Sunday
    factor[(weekday == 2) | (weekday == 3)] = 0.85
    if spike_idx >= 0 and spike_days > 0:
        factor[(svc == spike_idx) & (day >= days - spike_days)] *= spike_factor
    cost = d.mean_cost[svc] * rng.lognormal(-0.125, 0.5, size=n) * factor
    cost = np.round(cost, 10)
    amount = np.round(cost / np.maximum(d.mean_cost[svc], 1e-9) * 10, 6)

    tagged = d.res_tagged[res]
    counts = np.where(tagged, len(d.tag_keys), 0)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    tagged_rows = res[tagged]
    key_idx = np.tile(np.arange(len(d.tag_keys)), len(tagged_rows))
    val_idx = (d.res_tag_idx[tagged_rows] + d.tag_value_offset).ravel()
    tags = pa.MapArray.from_arrays(
        pa.array(offsets), pc.take(d.tag_key_arr, key_idx), pc.take(d.tag_value_arr, val_idx)
    )
    code = pc.take(d.code_arr, svc)
    cols = {
        "bill_billing_period_start_date": pa.array(month_start, pa.timestamp("ms")),
        "bill_payer_account_id": pa.array(np.full(n, ACCOUNTS[0])),
        "line_item_line_item_type": pa.array(np.full(n, "Usage")),
        "line_item_usage_start_date": pa.array(t0, pa.timestamp("ms")),
        "line_item_usage_end_date": pa.array(t1, pa.timestamp("ms")),
        "line_item_usage_account_id": pc.take(d.account_arr, account),
        "line_item_product_code": code,
        "product_servicecode": code,
        "line_item_usage_type": pc.take(d.usage_arr, usage_idx),
        "line_item_operation": pc.take(d.operation_arr, usage_flat),
        "line_item_resource_id": pc.take(d.resource_arr, res),
        "line_item_usage_amount": pa.array(amount),
        "line_item_currency_code": pa.array(np.full(n, "USD")),
        "line_item_unblended_rate": pc.take(d.rate_arr, svc),
        "line_item_unblended_cost": pa.array(cost),
        "line_item_blended_cost": pa.array(cost),
        "line_item_net_unblended_cost": pa.array(cost),
        "product_region_code": pc.take(d.region_arr, region),
        "product_instance_type": pc.take(d.instance_arr, usage_flat),
        "resource_tags": tags,
    }
    return pa.Table.from_pydict(cols, schema=_schema()), month_start


def generate_cur(
    path: str | Path,
    *,
    rows: int,
    start: _dt.date,
    days: int,
    seed: int = 0,
    row_group_size: int = 500_000,
    spike_service: str = "AmazonS3",
    spike_days: int = 7,
    spike_factor: float = 4.0,
    name: str = "opslib-cur",
) -> CurGenResult:
    """Write ``rows`` synthetic CUR 2.0 line items over ``days`` days from ``start`` under ``path``.

    Deterministic for a given ``seed``. Line items are spread evenly over the days, one file
    per billing period, ``row_group_size`` rows per row group. ``spike_service`` (a product code)
    costs ``spike_factor`` times more in the last ``spike_days`` days: the story the cost
    review must find.
    """
    import numpy as np
    import pyarrow.parquet as pq

    if rows <= 0 or days <= 0 or row_group_size <= 0:
        raise BadInputError("rows, days and row_group_size must be positive.")
    if spike_service and spike_service not in SERVICES:
        raise BadInputError(f"spike_service {spike_service!r} is not one of {sorted(SERVICES)}.")
    out = Path(path)
    # write next to the target and rename at the end: a half-written CUR is never mistaken
    # for a complete one by cur_exists()
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    rng = np.random.default_rng(seed)
    d = _Dictionaries(rng)
    spike_idx = d.codes.index(spike_service) if spike_service else -1
    writers: dict[str, pq.ParquetWriter] = {}
    files: list[Path] = []
    try:
        for lo in range(0, rows, row_group_size):
            hi = min(rows, lo + row_group_size)
            table, month_start = _chunk(
                d, rng, lo, hi, rows, start, days, spike_idx, spike_days, spike_factor
            )
            months = month_start.astype("datetime64[M]")
            for m in np.unique(months):
                label = str(m)  # "YYYY-MM"
                if label not in writers:
                    f = tmp / "data" / f"BILLING_PERIOD={label}" / f"{name}-00001.snappy.parquet"
                    f.parent.mkdir(parents=True, exist_ok=True)
                    writers[label] = pq.ParquetWriter(f, _schema(), compression="snappy")
                    files.append(out / f.relative_to(tmp))
                mask = months == m
                part = table if mask.all() else table.filter(mask)
                writers[label].write_table(part, row_group_size=row_group_size)
    finally:
        for w in writers.values():
            w.close()
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    return CurGenResult(out, tuple(files), rows, start, days, spike_service)


def cur_exists(path: str | Path) -> bool:
    """True when ``path`` holds a generated CUR (used to generate once and reuse)."""
    return any(Path(path).glob("data/BILLING_PERIOD=*/*.parquet"))


def service_names(codes: Sequence[str] | None = None) -> dict[str, str]:
    """product code -> Cost Explorer SERVICE name for the generated services."""
    return {c: SERVICES[c][0] for c in (codes or SERVICES)}
