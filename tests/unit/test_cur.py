"""CUR 2.0 analysis with DuckDB: every breakdown equals a direct computation on the same parquet.

The CUR is generated (small) by opslib.sandbox.curgen; the expected values come from pyarrow/pandas
reading the same files, not from opslib. The S3 case reads through the sandbox's AWS server.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from opslib import clients
from opslib.aws.cost_model import UNTAGGED, CostSourceKind, parse_query
from opslib.aws.cur import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_THREADS,
    SERVICE_NAMES,
    TEMP_DIR,
    CurLocation,
    analyse,
    compute_costs,
    connect,
    cost_by_tags,
    cur_costs,
    open_cur,
    top_resources,
)
from opslib.core.errors import BadInputError, NotFoundError
from opslib.sandbox.curgen import generate_cur

START = dt.date(2026, 10, 1)
QUERY = parse_query("2026-10-05", "2026-10-25", group_by="SERVICE")


@pytest.fixture(scope="module")
def cur_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cur") / "export"
    generate_cur(path, rows=120_000, start=START, days=30, seed=3, row_group_size=40_000)
    return path


@pytest.fixture(scope="module")
def direct(cur_dir):
    """The whole small CUR in pandas, restricted to the query period: the reference."""
    t = ds.dataset(cur_dir, format="parquet").to_table().to_pandas()
    t = t[
        (t["line_item_usage_start_date"] >= pd.Timestamp(QUERY.start))
        & (t["line_item_usage_start_date"] < pd.Timestamp(QUERY.end))
    ]
    return t


def test_total_agrees_with_direct_computation(cur_dir, direct):
    src = open_cur(str(cur_dir))
    data = cur_costs(src, QUERY)
    assert data.source == "cur" and data.source is CostSourceKind.CUR
    assert src.source is CostSourceKind.CUR and src.label == f"CUR {cur_dir}"
    assert src.costs(QUERY).total == data.total  # the CUR is a cost source of the model
    assert data.total == pytest.approx(direct["line_item_unblended_cost"].sum(), rel=1e-9)
    days = data.frame["date"].dt.date
    assert days.min() == QUERY.start and days.max() == QUERY.end - dt.timedelta(days=1)


@pytest.mark.parametrize(
    "group_by,column",
    [
        ("SERVICE", "line_item_product_code"),
        ("LINKED_ACCOUNT", "line_item_usage_account_id"),
        ("USAGE_TYPE", "line_item_usage_type"),
        ("REGION", "product_region_code"),
    ],
)
def test_breakdowns_agree(cur_dir, direct, group_by, column):
    q = parse_query(QUERY.start.isoformat(), QUERY.end.isoformat(), group_by=group_by)
    got = cur_costs(open_cur(str(cur_dir)), q).by_group().set_index("name")["cost"]
    want = direct.groupby(column)["line_item_unblended_cost"].sum()
    if group_by == "SERVICE":  # named as Cost Explorer names them
        want.index = [SERVICE_NAMES[c] for c in want.index]
    assert sorted(got.index) == sorted(want.index)
    for name, cost in want.items():
        assert got[name] == pytest.approx(cost, rel=1e-9)


def test_daily_by_service_agrees(cur_dir, direct):
    frame = cur_costs(open_cur(str(cur_dir)), QUERY).frame
    got = frame.set_index(["date", "group"])["cost"]
    d = direct.assign(day=direct["line_item_usage_start_date"].dt.floor("D"))
    want = d.groupby(["day", "line_item_product_code"])["line_item_unblended_cost"].sum()
    assert len(got) == len(want)
    for (day, code), cost in want.items():
        assert got[(day, SERVICE_NAMES[code])] == pytest.approx(cost, rel=1e-9)


def test_tag_breakdown_includes_untagged(cur_dir, direct):
    q = parse_query(QUERY.start.isoformat(), QUERY.end.isoformat(), group_by="TAG:Environment")
    got = cur_costs(open_cur(str(cur_dir)), q).by_group().set_index("name")["cost"]
    env = direct["resource_tags"].map(
        lambda kv: dict(kv).get("user_Environment", "") if kv is not None else ""
    )
    want = direct.groupby(env)["line_item_unblended_cost"].sum()
    want.index = [i or UNTAGGED for i in want.index]
    assert set(got.index) == {"prod", "staging", "dev", UNTAGGED}
    for name, cost in want.items():
        assert got[name] == pytest.approx(cost, rel=1e-9)
    tags = cost_by_tags(open_cur(str(cur_dir)), QUERY)
    assert set(tags["tag"]) == {"Environment", "Service", "Team"}
    for _tag, part in tags.groupby("tag"):
        assert part["cost"].sum() == pytest.approx(
            direct["line_item_unblended_cost"].sum(), rel=1e-9
        )
        assert part["share_pct"].sum() == pytest.approx(100, abs=0.5)
    env_rows = tags[tags["tag"] == "Environment"].set_index("value")["cost"]
    assert env_rows["prod"] == pytest.approx(want["prod"], rel=1e-9)


def test_top_resources_agree(cur_dir, direct):
    got = top_resources(open_cur(str(cur_dir)), QUERY, n=10)
    want = direct.groupby("line_item_resource_id")["line_item_unblended_cost"].sum().nlargest(10)
    assert list(got["resource_id"]) == list(want.index)
    assert list(got["cost"]) == pytest.approx(list(want.values), rel=1e-9)
    assert set(got.columns) >= {"resource_id", "service", "account", "region", "cost"}


def test_analyse_nat_and_instance_types(cur_dir, direct):
    rep = analyse(open_cur(str(cur_dir)), QUERY)
    nat = direct[direct["line_item_usage_type"].str.contains("NatGateway")][
        "line_item_unblended_cost"
    ].sum()
    assert rep.nat_cost == pytest.approx(nat, rel=1e-9)
    assert set(rep.instance_types["instance_type"]) == {"m5.large", "c6g.xlarge", "t3.medium"}
    assert rep.compute is not None and set(rep.compute["kind"]) == {
        "ec2",
        "fargate",
        "fargate-spot",
        "fargate-other",
    }
    assert rep.costs.total == pytest.approx(direct["line_item_unblended_cost"].sum(), rel=1e-9)


def _env(kv) -> str:
    return dict(kv).get("user_Environment", "") if kv is not None else ""


def test_compute_mix_agrees_with_direct_computation(cur_dir, direct):
    """x86/ARM EC2 and Fargate on-demand/Spot by environment, as the Graviton and Fargate Spot
    estimates read them, against pandas on the same rows."""
    got = compute_costs(open_cur(str(cur_dir)), QUERY)
    usage, inst = direct["line_item_usage_type"], direct["product_instance_type"]
    ec2 = direct[(direct["line_item_product_code"] == "AmazonEC2") & (inst != "")]
    graviton = ec2["product_instance_type"].str.contains(r"^[a-z]+\d+[a-z]*g[a-z]*\.")
    fargate = direct[usage.str.contains("Fargate")]
    fu = fargate["line_item_usage_type"]
    spot = fu.str.contains("SpotUsage-Fargate-")
    arm = fu.str.contains("Fargate-ARM-")
    storage = fu.str.contains("EphemeralStorage")
    x86_od = fargate[~spot & ~arm & ~storage]

    def total(kind, arch):
        return got[(got["kind"] == kind) & (got["arch"] == arch)]["cost"].sum()

    cost = "line_item_unblended_cost"
    assert total("ec2", "x86_64") == pytest.approx(ec2[~graviton][cost].sum(), rel=1e-9)
    assert total("ec2", "arm64") == pytest.approx(ec2[graviton][cost].sum(), rel=1e-9)
    assert total("fargate", "x86_64") == pytest.approx(x86_od[cost].sum(), rel=1e-9)
    assert total("fargate", "arm64") == pytest.approx(fargate[arm][cost].sum(), rel=1e-9)
    assert total("fargate-spot", "x86_64") == pytest.approx(fargate[spot][cost].sum(), rel=1e-9)
    assert total("fargate-other", "x86_64") == pytest.approx(fargate[storage][cost].sum(), rel=1e-9)
    assert set(got[got["kind"] == "ec2"]["instance_type"]) == {
        "m5.large",
        "t3.medium",
        "c6g.xlarge",
    }
    # by environment tag (untagged is "")
    env = x86_od["resource_tags"].map(_env)
    fx = got[(got["kind"] == "fargate") & (got["arch"] == "x86_64")]
    got_env = fx.groupby("environment")["cost"].sum()
    want_env = x86_od.groupby(env)[cost].sum()
    assert set(got_env.index) == {"prod", "staging", "dev", ""} == set(want_env.index)
    for name, value in want_env.items():
        assert got_env[name] == pytest.approx(value, rel=1e-9)
    # the report carries the same breakdown; DuckDB's parallel sums may differ in the last bits
    # and tie order between runs, so compare sorted, to 1e-9
    keys = [c for c in got.columns if c != "cost"]
    again = analyse(open_cur(str(cur_dir)), QUERY).compute

    def canon(df):
        return df.sort_values(keys).reset_index(drop=True)

    pd.testing.assert_frame_equal(canon(again), canon(got), check_exact=False, rtol=1e-9)


def test_duckdb_is_bounded_by_default(cur_dir):
    """Unbounded, DuckDB takes every core and 80% of RAM, so a CUR analysis peaks at a different
    RSS on every machine; opslib's connection sets both, spills outside the working directory."""
    import os

    import duckdb

    src = open_cur(str(cur_dir))
    con = connect(src)
    try:
        threads, limit, temp = con.execute(
            "SELECT current_setting('threads'), current_setting('memory_limit'), "
            "current_setting('temp_directory')"
        ).fetchone()
    finally:
        con.close()
    assert int(threads) == min(DEFAULT_THREADS, os.cpu_count())
    ref = duckdb.connect()
    ref.execute("SET memory_limit = ?", [DEFAULT_MEMORY_LIMIT])
    assert limit == ref.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit != duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert temp == str(TEMP_DIR)
    con = connect(src, threads=1, memory_limit="64MB")
    try:
        assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 1
        # bounded, the results are the same
        assert cur_costs(src, QUERY, con=con).total == pytest.approx(cur_costs(src, QUERY).total)
        # the top-N is DuckDB's Top N operator (a heap of n), never a sort of every resource
        plan = con.execute(
            "EXPLAIN SELECT line_item_resource_id, sum(line_item_unblended_cost) AS c FROM cur "
            "GROUP BY 1 ORDER BY c DESC LIMIT 20"
        ).fetchall()
        assert "Top N" in "".join(str(r) for r in plan)
    finally:
        con.close()


def test_single_file_path(cur_dir):
    f = sorted(cur_dir.rglob("*.parquet"))[0]
    src = open_cur(str(f))
    assert src.kind == "local" and len(src.files) == 1
    assert src.kind is CurLocation.LOCAL and src.summary()["kind"] == "local"


def test_missing_path_is_bad_input(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        open_cur(str(tmp_path / "nope"))
    assert issubclass(NotFoundError, BadInputError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="no .parquet"):
        open_cur(str(tmp_path / "empty"))


def test_parquet_without_cur_columns_is_bad_input(tmp_path):
    pq.write_table(pa.table({"a": [1, 2], "cost": [0.1, 0.2]}), tmp_path / "x.parquet")
    with pytest.raises(BadInputError, match="missing column.*line_item_unblended_cost"):
        open_cur(str(tmp_path / "x.parquet"))
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    pq.write_table(pa.table({"lineItem/UnblendedCost": [1.0]}), legacy / "y.parquet")
    with pytest.raises(BadInputError, match="legacy CUR"):
        open_cur(str(legacy))


def test_not_parquet_is_bad_input(tmp_path):
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(BadInputError, match="not a parquet file"):
        open_cur(str(tmp_path / "bad.parquet"))


def test_unsupported_metric_is_bad_input(cur_dir):
    q = parse_query("2026-10-05", "2026-10-25", metric="AmortizedCost")
    with pytest.raises(BadInputError, match="not supported on the CUR path"):
        cur_costs(open_cur(str(cur_dir)), q)


def test_s3_prefix_through_the_sandbox(sandbox, cur_dir, direct):
    session = clients.aws_session()
    s3 = clients.aws_client("s3", session=session)
    bucket = f"cur-test-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for f in cur_dir.rglob("*.parquet"):
        s3.upload_file(str(f), bucket, f"exports/opslib/{f.relative_to(cur_dir)}")
    src = open_cur(f"s3://{bucket}/exports/opslib/data/", s3=s3, session=session)
    assert src.kind == "s3" and len(src.files) == len(list(cur_dir.rglob("*.parquet")))
    assert "credentials" not in repr(src) and "testing" not in repr(src)
    data = cur_costs(src, QUERY)
    assert data.total == pytest.approx(direct["line_item_unblended_cost"].sum(), rel=1e-9)
    with pytest.raises(NotFoundError, match="no .parquet objects"):
        open_cur(f"s3://{bucket}/nothing-here/", s3=s3, session=session)
