"""Sandbox scenario for the cost review: 60 days of spend with a spike, idle EC2 resources, a CUR.

What it seeds, consistently, so Cost Explorer, the CUR path and a direct computation agree:

- a synthetic CUR 2.0 export of 1.2M line items over the last 60 full days, Amazon S3 costing
  four times more in the last 7 days (``<scenario dir>/cur-<start>-60d/``; generated only when
  missing, so a second ``up`` the same day reuses it);
- Cost Explorer results computed from that CUR (daily, by SERVICE, UnblendedCost) and queued in
  moto through ``/moto-api/static/ce/cost-and-usage-results``: this period in two pages (so the
  runbook must follow NextPageToken) then the previous period;
- idle resources in us-east-1: two unattached volumes, two unassociated Elastic IPs, a NAT
  gateway with no traffic in its own VPC, and a log group without retention.

What moto ignores: it does not evaluate GetCostAndUsage's period, granularity, grouping,
filter or metric. It answers the first request it has not seen with the next queued result and
then repeats that answer for the same request. So the results match what the runbook asks for
only with the preset period, ``group_by=SERVICE`` and ``metric=UnblendedCost``, and the order of
queries (this period's pages, then the previous period) is the runbook's order. A re-seed queues
the results again; requests already answered keep their first answer. The queued pages carry
``GroupDefinitions`` (SERVICE), so a run grouped otherwise drops them and says so instead of
showing services under another heading.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from typing import TYPE_CHECKING, Any

from opslib.aws.cost_model import CostData, parse_query
from opslib.aws.cur import cur_costs, open_cur
from opslib.sandbox.context import ScenarioContext
from opslib.sandbox.curgen import cur_exists, generate_cur

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_logs.client import CloudWatchLogsClient

RUNBOOKS: tuple[str, ...] = ("cost-review",)

TAG = "opslib:scenario"
CUR_ROWS = 1_200_000
DAYS = 60
PERIOD_DAYS = 30
PAGE_SPLIT_DAYS = 15  # page 1 holds the first 15 days of the period, page 2 the rest
SPIKE_SERVICE = "AmazonS3"


def _ce_results(data: CostData, *, pages: int) -> list[dict[str, Any]]:
    """CostData -> GetCostAndUsage responses (``pages`` of them, linked by NextPageToken)."""
    by_day: dict[str, list[dict]] = {}
    for row in data.frame.itertuples():
        day = row.date.date().isoformat()
        by_day.setdefault(day, []).append(
            {
                "Keys": [row.group],
                "Metrics": {data.query.metric: {"Amount": repr(float(row.cost)), "Unit": "USD"}},
            }
        )
    days = sorted(by_day)
    last = days[-1] if days else ""
    periods = [
        {
            "TimePeriod": {
                "Start": d,
                "End": (_dt.date.fromisoformat(d) + _dt.timedelta(1)).isoformat(),
            },
            "Total": {},
            "Groups": by_day[d],
            "Estimated": d == last and data.query.end >= _dt.datetime.now(_dt.UTC).date(),
        }
        for d in days
    ]
    cut = [periods[:PAGE_SPLIT_DAYS], periods[PAGE_SPLIT_DAYS:]] if pages == 2 else [periods]
    out = []
    for i, chunk in enumerate(cut):
        page: dict[str, Any] = {
            "ResultsByTime": chunk,
            "DimensionValueAttributes": [],
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
        }
        if i < len(cut) - 1:
            page["NextPageToken"] = f"opslib-sandbox-page-{i + 2}"
        out.append(page)
    return out


def _queue_ce(endpoint: str, results: list[dict]) -> None:
    import urllib.request

    req = urllib.request.Request(
        endpoint.rstrip("/") + "/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps({"results": results}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.status != 201:
            raise RuntimeError(f"moto refused the Cost Explorer results: HTTP {resp.status}")


def _tags(kind: str, name: str) -> list[dict]:
    return [
        {"Key": TAG, "Value": "cost"},
        {"Key": "Name", "Value": name},
        {"Key": "kind", "Value": kind},
    ]


def _reset_ec2(ec2: EC2Client) -> None:
    """Remove what an earlier seed created (tagged opslib:scenario=cost): seeds are idempotent."""
    mine = [{"Name": f"tag:{TAG}", "Values": ["cost"]}]
    for n in ec2.describe_nat_gateways(Filters=mine).get("NatGateways", []):
        if n.get("State") not in ("deleted", "deleting"):
            ec2.delete_nat_gateway(NatGatewayId=n["NatGatewayId"])
    for a in ec2.describe_addresses(Filters=mine).get("Addresses", []):
        if a.get("AssociationId"):
            ec2.disassociate_address(AssociationId=a["AssociationId"])
        ec2.release_address(AllocationId=a["AllocationId"])
    for v in ec2.describe_volumes(Filters=mine).get("Volumes", []):
        ec2.delete_volume(VolumeId=v["VolumeId"])
    for s in ec2.describe_subnets(Filters=mine).get("Subnets", []):
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    for v in ec2.describe_vpcs(Filters=mine).get("Vpcs", []):
        ec2.delete_vpc(VpcId=v["VpcId"])


def _seed_ec2(ec2: EC2Client, region: str) -> dict[str, Any]:
    _reset_ec2(ec2)
    az = f"{region}a"
    vols = [
        ec2.create_volume(
            Size=size,
            AvailabilityZone=az,
            VolumeType=vtype,
            TagSpecifications=[{"ResourceType": "volume", "Tags": _tags("ebs-unattached", name)}],
        )["VolumeId"]
        for size, vtype, name in ((200, "gp3", "old-build-cache"), (50, "gp2", "detached-data"))
    ]
    eips = [
        ec2.allocate_address(
            Domain="vpc",
            TagSpecifications=[
                {"ResourceType": "elastic-ip", "Tags": _tags("eip-unassociated", name)}
            ],
        )["AllocationId"]
        for name in ("legacy-bastion", "old-vpn")
    ]
    vpc = ec2.create_vpc(
        CidrBlock="10.77.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags("vpc", "cost-demo")}],
    )["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(
        VpcId=vpc,
        CidrBlock="10.77.1.0/24",
        AvailabilityZone=az,
        TagSpecifications=[{"ResourceType": "subnet", "Tags": _tags("subnet", "cost-demo-public")}],
    )
    nat_eip = ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[
            {"ResourceType": "elastic-ip", "Tags": _tags("nat-eip", "cost-demo-nat")}
        ],
    )["AllocationId"]
    nat = ec2.create_nat_gateway(
        SubnetId=subnet["Subnet"]["SubnetId"],
        AllocationId=nat_eip,
        TagSpecifications=[
            {"ResourceType": "natgateway", "Tags": _tags("nat-idle", "cost-demo-nat")}
        ],
    )["NatGateway"]["NatGatewayId"]
    return {"volumes": vols, "eips": eips, "nat_gateway": nat, "vpc": vpc}


def _seed_logs(logs: CloudWatchLogsClient) -> str:
    name = "/opslib/cost-demo/app"
    existing = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
    if not any(g["logGroupName"] == name for g in existing):
        logs.create_log_group(logGroupName=name, tags={TAG: "cost"})
    logs.delete_retention_policy(logGroupName=name)
    return name


def seed(ctx: ScenarioContext) -> dict[str, dict]:
    today = _dt.datetime.now(_dt.UTC).date()
    start = today - _dt.timedelta(DAYS)
    period_start = today - _dt.timedelta(PERIOD_DAYS)
    cur_dir = ctx.scenario_dir("cost") / f"cur-{start.isoformat()}-{DAYS}d"
    if not cur_exists(cur_dir):
        for stale in cur_dir.parent.glob("cur-*"):  # an earlier day's CUR: dates no longer match
            shutil.rmtree(stale, ignore_errors=True)
        generate_cur(
            cur_dir,
            rows=CUR_ROWS,
            start=start,
            days=DAYS,
            seed=20261123,
            spike_service=SPIKE_SERVICE,
        )
    src = open_cur(str(cur_dir))
    query = parse_query(period_start.isoformat(), today.isoformat(), group_by="SERVICE")
    current = cur_costs(src, query)
    previous = cur_costs(src, query.previous())
    _queue_ce(ctx.info.aws_endpoint, _ce_results(current, pages=2) + _ce_results(previous, pages=1))

    region = ctx.info.region
    ec2 = _seed_ec2(ctx.aws("ec2", region=region), region)
    log_group = _seed_logs(ctx.aws("logs", region=region))
    # a budget just above what the previous 30 days cost: the spike pushes the forecast over it
    budget = float(round(previous.total * 1.02, -1))
    facts = {
        "cur_path": str(cur_dir),
        "cur_rows": CUR_ROWS,
        "start": query.start.isoformat(),
        "end": query.end.isoformat(),
        "ce_total": current.total,
        "previous_total": previous.total,
        "spike_service": "Amazon Simple Storage Service",
        "budget_monthly": budget,
        "region": region,
        "ec2": ec2,
        "log_group": log_group,
    }
    (ctx.scenario_dir("cost") / "scenario.json").write_text(json.dumps(facts, indent=2))
    return {
        "cost-review": {
            "start": query.start.isoformat(),
            "end": query.end.isoformat(),
            "group_by": "SERVICE",
            "metric": "UnblendedCost",
            "granularity": "DAILY",
            "cur_path": "",
            "budget_monthly": budget,
            "regions": region,
            "min_monthly_savings": 1.0,
        }
    }


def scenario_facts(info) -> dict[str, Any]:
    """What the last seed wrote (CUR path, period, totals, seeded ids), for tests and demos."""
    path = ScenarioContext(info).scenario_dir("cost") / "scenario.json"
    return json.loads(path.read_text()) if path.exists() else {}
