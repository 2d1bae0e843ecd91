"""notebooks/cost_review.ipynb end to end on the sandbox: spend, CUR, idle, bad input, gated cleanup."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import opslib
from opslib import clients

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def facts(sandbox):
    from opslib.sandbox.scenarios.cost import scenario_facts

    f = scenario_facts(sandbox)
    assert f, f"the cost scenario did not seed: {sandbox.scenario_errors.get('cost')}"
    return f


NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "cost_review.ipynb"


def _code_cells() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_the_notebook_is_one_flow_call_per_step():
    """The flow decides the source and shapes the record; the cells only call and show."""
    params, setup, *steps = _code_cells()
    names = [ast.parse(line).body[0].target.id for line in params.splitlines() if line.strip()]
    call = re.search(r"run = review\.prepare\((.*)\)", setup)
    assert call, "the setup cell calls review.prepare(...)"
    passed = [k.split("=")[0].strip() for k in call.group(1).split(",")]
    gate_params = {"dry_run", "approved_by", "change_ticket"}
    assert passed == [n for n in names if n not in gate_params]  # every parameter, in order
    assert "review.inputs(" not in setup and "review.connect(" not in setup
    for cell in steps:
        tree = ast.parse(cell)
        assert "cur_path" not in cell, f"a cell decides on the cost source:\n{cell}"
        for node in ast.walk(tree):
            assert not isinstance(
                node, ast.ListComp | ast.DictComp | ast.GeneratorExp | ast.If | ast.IfExp
            ), f"a cell reshapes or branches:\n{cell}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("to_dict", "to_frame", "current"), (
                    f"a cell reshapes a result:\n{cell}"
                )
    record = [c for c in steps if "opslib.record" in c]
    assert len(record) == 1 and "opslib.record_all(review.summary(" in record[0]
    assert "opslib.record(" not in record[0]


def _cur_estimates(facts) -> tuple[float, float]:
    """Graviton and Fargate Spot from the parquet directly (pandas), as the runbook states them:
    20% of x86 EC2 + x86 on-demand Fargate; 70% of the non-production on-demand x86 Fargate."""
    t = (
        ds.dataset(facts["cur_path"], format="parquet")
        .to_table(
            columns=[
                "line_item_product_code",
                "line_item_usage_type",
                "product_instance_type",
                "resource_tags",
                "line_item_unblended_cost",
            ],
            filter=(ds.field("line_item_usage_start_date") >= pd.Timestamp(facts["start"]))
            & (ds.field("line_item_usage_start_date") < pd.Timestamp(facts["end"])),
        )
        .to_pandas()
    )
    usage, inst, cost = (
        t["line_item_usage_type"],
        t["product_instance_type"],
        t["line_item_unblended_cost"],
    )
    ec2_x86 = (t["line_item_product_code"] == "AmazonEC2") & inst.isin(["m5.large", "t3.medium"])
    fargate_x86 = usage.str.contains(r"-Fargate-(?:vCPU-Hours|GB-Hours)") & ~usage.str.contains(
        "SpotUsage"
    )
    env = t["resource_tags"].map(lambda kv: dict(kv).get("user_Environment", "") if kv else "")
    days = (pd.Timestamp(facts["end"]) - pd.Timestamp(facts["start"])).days
    graviton = cost[ec2_x86 | fargate_x86].sum() * 30 / days * 0.20
    spot = cost[fargate_x86 & env.isin(["staging", "dev"])].sum() * 30 / days * 0.70
    return graviton, spot


def _run(evidence_dir, **params):
    return opslib.run("cost-review", params, evidence_dir=evidence_dir, sandbox=True, timeout=600)


def _direct_total(facts) -> float:
    t = ds.dataset(facts["cur_path"], format="parquet").to_table(
        columns=["line_item_unblended_cost"],
        filter=(ds.field("line_item_usage_start_date") >= pd.Timestamp(facts["start"]))
        & (ds.field("line_item_usage_start_date") < pd.Timestamp(facts["end"])),
    )
    return pc.sum(t["line_item_unblended_cost"]).as_py()


def test_preset_run_finds_the_spike_the_budget_and_the_idle_resources(facts, evidence_dir):
    res = _run(evidence_dir)
    assert res.status == "succeeded", res.record.get("error")
    r = res.record["results"]
    assert r["period"] == f"{facts['start']}..{facts['end']}"
    assert r["source"] == "cost-explorer"
    assert r["currency"] == "USD"
    assert r["total_cost"] == pytest.approx(_direct_total(facts), abs=0.01)
    assert r["top_services"][0]["name"] == "Amazon Elastic Compute Cloud - Compute"
    assert {a["group"] for a in r["anomalies"]} == {facts["spike_service"]}
    assert len(r["anomalies"]) >= 5
    assert set(r["anomalies"][0]) == {"date", "group", "cost", "baseline"}
    assert r["budget"]["status"] in ("warning", "critical")
    assert r["idle_findings"] >= 5  # 2 volumes, 2 addresses, 1 NAT gateway seeded
    assert r["monthly_savings"] >= 200 * 0.08 + 50 * 0.10 + 2 * 3.65 + 32.85 - 0.01
    assert r["cleaned"] == []
    assert "Review and remove unused resources" in r["recommendations"]
    # Cost Explorer cannot tell x86 from Graviton or production from staging: not estimated
    assert r["graviton_monthly_savings"] is None and r["fargate_spot_monthly_savings"] is None
    assert [e["monthly_savings"] for e in r["savings_estimates"]] == [None, None]
    assert all(e["basis"].startswith("not estimated") for e in r["savings_estimates"])
    html = Path(res.bundle) / "cost-review.html"
    assert html.exists() and "data:image/png" in html.read_text()
    assert res.record["changes"] == []


def test_cur_run_agrees_with_cost_explorer_and_direct_computation(facts, evidence_dir):
    res = _run(evidence_dir, cur_path=facts["cur_path"])
    assert res.status == "succeeded", res.record.get("error")
    r = res.record["results"]
    assert r["source"] == "cur"
    assert r["total_cost"] == pytest.approx(round(facts["ce_total"], 2), abs=0.01)
    assert r["total_cost"] == pytest.approx(_direct_total(facts), abs=0.01)
    assert {a["group"] for a in r["anomalies"]} == {facts["spike_service"]}
    nb = (Path(res.bundle) / "cost-review.ipynb").read_text()
    assert "Top resources by cost" in nb and "Cost by allocation tag" in nb
    assert "Compute by kind and architecture" in nb
    graviton, spot = _cur_estimates(facts)
    assert graviton > 0 and spot > 0
    assert r["graviton_monthly_savings"] == pytest.approx(graviton, abs=0.01)
    assert r["fargate_spot_monthly_savings"] == pytest.approx(spot, abs=0.01)
    est = {e["item"]: e for e in r["savings_estimates"]}
    assert est["Graviton2: ~20% cost savings on compute"]["basis"].startswith("CUR: x86 EC2")
    assert "Graviton2: ~20% cost savings on compute" in r["recommendations"]
    assert "Enable Fargate Spot for non-production (up to 70% savings)" in r["recommendations"]


@pytest.fixture(scope="module")
def not_a_cur(tmp_path_factory):
    d = tmp_path_factory.mktemp("notcur")
    pq.write_table(pa.table({"cost": [1.0, 2.0], "day": ["a", "b"]}), d / "part-0.parquet")
    return str(d)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"start": "2026-02-30"}, "is not an ISO date"),
        ({"start": "2026-11-10", "end": "2026-11-01"}, "must be after start"),
        ({"group_by": "PROJECT"}, "group_by='PROJECT' is unknown"),
        ({"metric": "UnblendedCost,AmortizedCost"}, "one metric per run"),
        ({"cur_path": "/nonexistent/cur/export"}, "does not exist"),
        ({"cur_path": "NOT_A_CUR"}, "is not a CUR 2.0 export: missing column"),
        ({"cleanup": "nat-idle"}, "cannot be cleaned up"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(facts, evidence_dir, not_a_cur, params, message):
    params = {k: (not_a_cur if v == "NOT_A_CUR" else v) for k, v in params.items()}
    res = _run(evidence_dir, **params)
    assert (res.exit_code, res.status) == (2, "refused")
    assert message in res.record["error"]["evalue"]
    assert res.record["changes"] == []


def test_cleanup_dry_run_changes_nothing_then_approval_applies(facts, evidence_dir, sandbox):
    ec2 = clients.aws_client("ec2", region=facts["region"])
    vols, eips = facts["ec2"]["volumes"], facts["ec2"]["eips"]
    try:
        dry = _run(evidence_dir, cleanup="eip-unassociated,ebs-unattached")
        assert dry.status == "succeeded", dry.record.get("error")
        assert dry.record["results"]["cleaned"] == [] and dry.record["changes"] == []
        assert dry.record["approvals"] == []
        assert len(ec2.describe_volumes(VolumeIds=vols)["Volumes"]) == 2
        assert len(ec2.describe_addresses(AllocationIds=eips)["Addresses"]) == 2

        res = _run(
            evidence_dir,
            cleanup="eip-unassociated,ebs-unattached",
            dry_run=False,
            approved_by="test-oncall",
            change_ticket="CHG-42",
        )
        assert res.status == "succeeded", res.record.get("error")
        cleaned = set(res.record["results"]["cleaned"])
        assert set(vols) | set(eips) <= cleaned
        assert res.record["approvals"][0]["approver"] == "test-oncall"
        assert res.record["approvals"][0]["change_ticket"] == "CHG-42"
        assert all(c["status"] == "applied" for c in res.record["changes"])
        assert (
            ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": vols}])["Volumes"] == []
        )
        assert (
            ec2.describe_addresses(Filters=[{"Name": "allocation-id", "Values": eips}])["Addresses"]
            == []
        )
        snaps = ec2.describe_snapshots(Filters=[{"Name": "tag:opslib:cleanup-of", "Values": vols}])[
            "Snapshots"
        ]
        assert sorted(s["VolumeId"] for s in snaps) == sorted(vols)
        assert "testing" not in json.dumps(res.record)  # no credentials in the evidence
    finally:
        from opslib.sandbox import seed

        assert seed(["cost"], sandbox.state_dir) == {"cost": ""}  # put the scenario back for others
