"""The synthetic CUR 2.0 generator: real column names and types, layout, determinism, the spike."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from opslib.aws.cur import REQUIRED_COLUMNS
from opslib.sandbox.curgen import cur_exists, generate_cur

START = dt.date(2026, 9, 20)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("curgen") / "cur"
    return generate_cur(path, rows=60_000, start=START, days=20, seed=7, row_group_size=25_000)


def test_cur2_columns_and_types(small):
    schema = pq.read_schema(small.files[0])
    for col in REQUIRED_COLUMNS + ("line_item_product_code", "product_servicecode"):
        assert col in schema.names
    assert schema.field("line_item_unblended_cost").type == pa.float64()
    assert schema.field("line_item_usage_start_date").type == pa.timestamp("ms")
    assert schema.field("resource_tags").type == pa.map_(pa.string(), pa.string())


def test_layout_rows_and_row_groups(small):
    # 2026-09-20 + 20 days crosses into October: one file per billing period, like a CUR 2.0 export
    assert [f.parent.name for f in small.files] == [
        "BILLING_PERIOD=2026-09",
        "BILLING_PERIOD=2026-10",
    ]
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in small.files) == 60_000
    assert all(
        pq.ParquetFile(f).metadata.row_group(i).num_rows <= 25_000
        for f in small.files
        for i in range(pq.ParquetFile(f).metadata.num_row_groups)
    )
    assert cur_exists(small.path)
    assert not list(small.path.parent.glob(".cur.tmp-*"))  # written aside, then renamed


def test_dates_stay_in_their_billing_period(small):
    for f in small.files:
        t = pq.read_table(
            f, columns=["line_item_usage_start_date", "bill_billing_period_start_date"]
        )
        month = f.parent.name.split("=")[1]
        starts = t["line_item_usage_start_date"].cast(pa.timestamp("ms")).to_numpy()
        assert {str(x)[:7] for x in starts.astype("datetime64[M]")} == {month}
    t = ds.dataset(small.path, format="parquet").to_table(columns=["line_item_usage_start_date"])
    assert pc.min(t[0]).as_py().date() == START
    assert pc.max(t[0]).as_py().date() == START + dt.timedelta(days=19)


def test_deterministic(small, tmp_path):
    again = generate_cur(
        tmp_path / "again", rows=60_000, start=START, days=20, seed=7, row_group_size=25_000
    )

    def total(p):
        return pc.sum(
            ds.dataset(p, format="parquet").to_table(columns=["line_item_unblended_cost"])[0]
        ).as_py()

    assert total(again.path) == pytest.approx(total(small.path), rel=1e-12)


def test_spike_service_costs_more_in_the_last_week(small):
    t = (
        ds.dataset(small.path, format="parquet")
        .to_table(
            columns=[
                "line_item_usage_start_date",
                "line_item_product_code",
                "line_item_unblended_cost",
            ]
        )
        .to_pandas()
    )
    t["day"] = t["line_item_usage_start_date"].dt.date
    s3 = (
        t[t["line_item_product_code"] == "AmazonS3"]
        .groupby("day")["line_item_unblended_cost"]
        .sum()
    )
    last = s3[s3.index >= START + dt.timedelta(days=13)].mean()
    before = s3[s3.index < START + dt.timedelta(days=13)].mean()
    assert last > 3 * before
    ec2 = (
        t[t["line_item_product_code"] == "AmazonEC2"]
        .groupby("day")["line_item_unblended_cost"]
        .sum()
    )
    assert ec2.iloc[-7:].mean() < 1.3 * ec2.iloc[:13].mean()


def test_tags_are_a_map_and_some_resources_are_untagged(small):
    tags = pq.read_table(small.files[0], columns=["resource_tags"])[
        "resource_tags"
    ].combine_chunks()
    offsets = tags.offsets.to_numpy()
    lengths = offsets[1:] - offsets[:-1]
    assert set(lengths) == {0, 3}
    assert 0.05 < (lengths == 0).mean() < 0.3
    keys = set(tags.keys.to_pylist())
    assert keys == {"user_Environment", "user_Team", "user_Service"}


def test_bad_arguments():
    from opslib.core.errors import BadInputError

    with pytest.raises(BadInputError):
        generate_cur("/tmp/never", rows=0, start=START, days=1)
    with pytest.raises(BadInputError, match="spike_service"):
        generate_cur("/tmp/never", rows=10, start=START, days=1, spike_service="NoSuch")


def test_compute_mix_for_the_graviton_and_fargate_spot_estimates(small):
    """EC2 on x86 and Graviton, Fargate on-demand x86 and ARM, Fargate Spot and storage, each
    with prod and non-production Environment tags: what the cost review's estimates read."""
    t = (
        ds.dataset(small.path, format="parquet")
        .to_table(
            columns=[
                "line_item_product_code",
                "line_item_usage_type",
                "product_instance_type",
                "resource_tags",
                "line_item_unblended_cost",
            ]
        )
        .to_pandas()
    )
    usage = t["line_item_usage_type"].str.split("-", n=1).str[1]  # without the region prefix
    ecs = set(usage[t["line_item_product_code"] == "AmazonECS"])
    assert {
        "Fargate-vCPU-Hours:perCPU",
        "Fargate-GB-Hours",
        "Fargate-ARM-vCPU-Hours:perCPU",
        "Fargate-ARM-GB-Hours",
        "SpotUsage-Fargate-vCPU-Hours:perCPU",
        "SpotUsage-Fargate-GB-Hours",
        "Fargate-EphemeralStorage-GB-Hours",
    } == ecs
    ec2 = set(t[t["line_item_product_code"] == "AmazonEC2"]["product_instance_type"]) - {""}
    assert ec2 == {"m5.large", "t3.medium", "c6g.xlarge"}  # x86 and Graviton
    fargate = t[usage.str.startswith("Fargate-vCPU")]
    env = fargate["resource_tags"].map(lambda kv: dict(kv).get("user_Environment", ""))
    assert {"prod", "staging", "dev", ""} <= set(env)
    assert fargate[env.isin(["staging", "dev"])]["line_item_unblended_cost"].sum() > 0
