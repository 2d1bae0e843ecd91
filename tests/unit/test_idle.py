"""Idle resources across regions on the sandbox's AWS server, and the gated cleanup.

Resources are created in a region no scenario uses (eu-central-1). The AccessDenied case runs
against a private moto server with IAM enforcement switched on (its /moto-api/reset-auth), and a
user whose policy lacks elasticloadbalancing:*: a real AccessDenied on the wire.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from opslib import clients
from opslib.aws import idle
from opslib.aws.pricing import HOURS_PER_MONTH, price_table
from opslib.core import executors
from opslib.core.errors import BadInputError
from opslib.core.findings import Severity
from opslib.core.plans import Change, ChangeStatus
from opslib.safety import gate

REGION = "eu-central-1"


def _tag(run: str) -> list[dict]:
    return [{"Key": "test-run", "Value": run}]


@pytest.fixture
def world(sandbox):
    """Idle things in REGION, tagged with this test's run id."""
    run = uuid.uuid4().hex[:8]
    session = clients.aws_session(region=REGION)
    ec2 = clients.aws_client("ec2", session=session)
    vol = ec2.create_volume(
        Size=100,
        AvailabilityZone=f"{REGION}a",
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": _tag(run)}],
    )["VolumeId"]
    vol2 = ec2.create_volume(
        Size=10,
        AvailabilityZone=f"{REGION}a",
        VolumeType="gp2",
        TagSpecifications=[{"ResourceType": "volume", "Tags": _tag(run)}],
    )["VolumeId"]
    eip = ec2.allocate_address(
        Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": _tag(run)}]
    )["AllocationId"]
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    sub_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.1.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]["SubnetId"]
    sub_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.2.0/24", AvailabilityZone=f"{REGION}b")[
        "Subnet"
    ]["SubnetId"]
    nat_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=sub_a, AllocationId=nat_eip)["NatGateway"]["NatGatewayId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    inst = ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=sub_a
    )["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[inst])
    snap = ec2.create_snapshot(VolumeId=vol2)["SnapshotId"]
    elb = clients.aws_client("elbv2", session=session)
    lb = elb.create_load_balancer(Name=f"lb-{run}", Subnets=[sub_a, sub_b], Type="application")
    ddb = clients.aws_client("dynamodb", session=session)
    table = f"idle-{run}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 200, "WriteCapacityUnits": 100},
    )
    logs = clients.aws_client("logs", session=session)
    group = f"/test/idle/{run}"
    logs.create_log_group(logGroupName=group)
    rds = clients.aws_client("rds", session=session)
    db = f"db-{run}"
    rds.create_db_instance(
        DBInstanceIdentifier=db,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin1",
        MasterUserPassword="not-a-real-secret-1",
        AllocatedStorage=20,
    )
    yield {
        "session": session,
        "ec2": ec2,
        "volumes": [vol, vol2],
        "eip": eip,
        "nat": nat,
        "instance": inst,
        "snapshot": snap,
        "lb": lb["LoadBalancers"][0]["LoadBalancerName"],
        "table": table,
        "log_group": group,
        "db": db,
    }
    for v in (vol, vol2):
        try:
            ec2.delete_volume(VolumeId=v)
        except ec2.exceptions.ClientError:
            pass  # deleted by a cleanup test
    try:
        ec2.release_address(AllocationId=eip)
    except ec2.exceptions.ClientError:
        pass
    ec2.terminate_instances(InstanceIds=[inst])
    ec2.delete_nat_gateway(NatGatewayId=nat)
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"])
    ddb.delete_table(TableName=table)
    logs.delete_log_group(logGroupName=group)
    rds.delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True)


def _by_id(report):
    return {r.resource_id: r for r in report.resources}


def test_every_kind_found_with_its_cost(world):
    prices = price_table()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=120)  # the snapshot is now "old"
    report = idle.scan_idle([REGION], session=world["session"], prices=prices, now=later)
    found = _by_id(report)
    vol = found[world["volumes"][0]]
    assert vol.kind == "ebs-unattached" and vol.monthly_cost == pytest.approx(100 * 0.08)
    assert "100 GiB gp3" in vol.evidence and prices.as_of in vol.evidence
    assert found[world["volumes"][1]].monthly_cost == pytest.approx(10 * 0.10)
    assert found[world["eip"]].monthly_cost == pytest.approx(0.005 * HOURS_PER_MONTH)
    assert found[world["nat"]].kind == "nat-idle"
    assert found[world["nat"]].monthly_cost == pytest.approx(0.045 * HOURS_PER_MONTH)
    assert found[world["instance"]].kind == "ec2-stopped"
    assert found[world["snapshot"]].kind == "snapshot-old"
    assert found[world["lb"]].kind == "lb-idle"
    assert found[world["lb"]].monthly_cost == pytest.approx(0.0225 * HOURS_PER_MONTH)
    assert found[world["db"]].kind == "rds-idle"
    assert found[world["db"]].monthly_cost == pytest.approx(0.018 * HOURS_PER_MONTH)
    ddb = found[world["table"]]
    # 200 RCU / 100 WCU with nothing consumed: all but 1 of each is waste
    assert ddb.kind == "dynamodb-overprovisioned"
    assert ddb.monthly_cost == pytest.approx((199 * 0.00013 + 99 * 0.00065) * HOURS_PER_MONTH)
    assert report.errors == ()
    costs = [r.monthly_cost for r in report.resources]
    assert costs == sorted(costs, reverse=True)
    assert report.monthly_savings == pytest.approx(sum(costs), abs=0.01)
    frame = report.to_frame()
    assert {"kind", "region", "resource_id", "monthly_cost", "evidence", "action"} <= set(
        frame.columns
    )


def test_min_monthly_savings_filters_and_says_so(world):
    report = idle.scan_idle([REGION], session=world["session"], min_monthly_savings=5)
    ids = _by_id(report)
    assert world["volumes"][0] in ids  # 8.00/month
    assert world["volumes"][1] not in ids  # 1.00/month
    assert any(r.resource_id == world["volumes"][1] for r in report.below_minimum)
    log_groups = [r for r in report.below_minimum if r.resource_id == world["log_group"]]
    assert log_groups and log_groups[0].kind == "logs-no-retention"
    info = [f for f in report.findings() if "below min_monthly_savings" in f.title]
    assert info and info[0].severity is Severity.INFO


def test_a_broken_region_is_a_finding_and_the_rest_continues(world):
    report = idle.scan_idle(
        ["xx-fake-1", REGION],
        session=world["session"],
        kinds=("ebs-unattached", "eip-unassociated"),
    )
    assert world["volumes"][0] in _by_id(report) and world["eip"] in _by_id(report)
    errors = [f for f in report.errors if f.source.startswith("idle:xx-fake-1")]
    assert errors and all(f.severity is Severity.ERROR for f in errors)
    assert any("skipped" in f.title and "eip-unassociated" in f.evidence for f in errors)


def test_unknown_kind_and_negative_minimum_refused(world):
    with pytest.raises(BadInputError, match="Unknown idle kind"):
        idle.scan_idle([REGION], session=world["session"], kinds=("ebs-gone",))
    with pytest.raises(BadInputError):
        idle.scan_idle([REGION], session=world["session"], min_monthly_savings=-1)


def test_every_kind_has_its_check_and_every_cleanup_action_its_handler():
    assert idle.registered_checks() == list(idle.KINDS)
    assert [str(k) for k in idle.KINDS] == [
        "ebs-unattached",
        "eip-unassociated",
        "nat-idle",
        "ec2-stopped",
        "snapshot-old",
        "lb-idle",
        "rds-idle",
        "dynamodb-overprovisioned",
        "logs-no-retention",
    ]
    assert set(idle.ACTIONS) == {"ec2:ReleaseAddress", "ec2:CreateSnapshot+DeleteVolume"}
    assert set(idle.ACTIONS) <= set(executors.registered())
    with pytest.raises(BadInputError, match="Unknown idle kind"):
        idle.get_check("ebs-gone")


def test_the_cleanup_executor_performs_only_cleanup_actions():
    execute = idle.cleanup_executor(session=None)
    with pytest.raises(executors.UnknownActionError, match="not one this runbook performs"):
        execute(Change("ecs:UpdateService", "svc", "scale"))
    out = execute(Change("ec2:ReleaseAddress", "eipalloc-1", "release", {"region": REGION}))
    assert out.status is ChangeStatus.FAILED and "no session" in out.detail


def test_cleanup_parameter_validated():
    assert idle.parse_cleanup(" eip-unassociated, ebs-unattached ") == [
        "eip-unassociated",
        "ebs-unattached",
    ]
    with pytest.raises(BadInputError, match="nat-idle cannot be cleaned up"):
        idle.parse_cleanup("nat-idle")


def test_dry_run_changes_nothing_and_approved_cleanup_does(world):
    ec2 = world["ec2"]
    report = idle.scan_idle(
        [REGION], session=world["session"], kinds=("ebs-unattached", "eip-unassociated")
    )
    mine = {world["eip"], *world["volumes"]}
    report = idle.IdleReport(
        tuple(r for r in report.resources if r.resource_id in mine),
        (),
        (),
        report.regions,
        report.prices,
    )
    plan = idle.plan_cleanup(report, ["eip-unassociated", "ebs-unattached"])
    assert {c.action for c in plan.changes} == {
        "ec2:ReleaseAddress",
        "ec2:CreateSnapshot+DeleteVolume",
    }
    assert len(plan.changes) == 3
    with pytest.raises(BadInputError, match="max_cleanup"):
        idle.plan_cleanup(report, ["eip-unassociated", "ebs-unattached"], max_changes=2)
    only_eips = idle.plan_cleanup(report, ["eip-unassociated"])
    assert [c.action for c in only_eips.changes] == ["ec2:ReleaseAddress"]

    execute = idle.cleanup_executor(session=world["session"])
    assert gate(plan, dry_run=True, approved_by="alice", execute=execute) is None
    assert gate(plan, dry_run=False, approved_by="", execute=execute) is None
    assert len(ec2.describe_volumes(VolumeIds=world["volumes"])["Volumes"]) == 2
    assert ec2.describe_addresses(AllocationIds=[world["eip"]])["Addresses"]

    result = gate(plan, dry_run=False, approved_by="alice", change_ticket="CHG-1", execute=execute)
    assert result.applied == 3 and result.failed == 0
    assert set(idle.cleaned_ids(result)) == mine
    left = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": world["volumes"]}])[
        "Volumes"
    ]
    assert left == []
    assert not ec2.describe_addresses(
        Filters=[{"Name": "allocation-id", "Values": [world["eip"]]}]
    )["Addresses"]
    snaps = ec2.describe_snapshots(
        Filters=[{"Name": "tag:opslib:cleanup-of", "Values": world["volumes"]}]
    )["Snapshots"]
    assert sorted(s["VolumeId"] for s in snaps) == sorted(world["volumes"])
    assert all(s["State"] == "completed" for s in snaps)


def test_cleanup_choice_preselects_the_named_kinds_and_the_plan_follows_it(world):
    report = idle.scan_idle(
        [REGION], session=world["session"], kinds=("ebs-unattached", "eip-unassociated")
    )
    mine = {world["eip"], *world["volumes"]}
    report = idle.IdleReport(
        tuple(r for r in report.resources if r.resource_id in mine),
        (),
        (),
        report.regions,
        report.prices,
    )
    selection = idle.cleanup_selection(report, ["eip-unassociated"])
    options, pre = selection.options, list(selection.preselected)
    assert {v for _label, v in options} == mine  # every cleanable resource is offered
    assert pre == [world["eip"]]  # preselected: the kinds named in `cleanup`
    label = dict((v, label) for label, v in options)[world["volumes"][0]]
    assert "ebs-unattached" in label and REGION in label and "/month" in label
    assert idle.cleanup_selection(report, []).preselected == ()

    # headless: the preselection gives exactly today's plan
    for kinds in ([], ["eip-unassociated"], ["eip-unassociated", "ebs-unattached"]):
        chosen = idle.cleanup_selection(report, kinds).preselected
        today = idle.plan_cleanup(report, kinds)
        assert idle.plan_cleanup(report, kinds, only_ids=chosen).digest() == today.digest()
    # the engineer unticks one volume: only the rest is planned
    keep = [world["eip"], world["volumes"][1]]
    plan = idle.plan_cleanup(report, ["eip-unassociated", "ebs-unattached"], only_ids=keep)
    assert sorted(c.params.get("allocation_id") or c.params["volume_id"] for c in plan.changes) == (
        sorted(keep)
    )
    # ... or ticks a volume although `cleanup` named only EIPs: it is planned, and the kinds say so
    plan = idle.plan_cleanup(report, ["eip-unassociated"], only_ids=[world["volumes"][0]])
    assert [c.params["volume_id"] for c in plan.changes] == [world["volumes"][0]]
    assert plan.limits["kinds"] == "eip-unassociated,ebs-unattached"
    # the blast-radius limit still applies to the choice
    with pytest.raises(BadInputError, match="max_cleanup"):
        idle.plan_cleanup(report, [], max_changes=2, only_ids=sorted(mine))
    # an id that is not a cleanable resource of the scan is refused before anything is planned
    with pytest.raises(BadInputError, match="not a cleanable idle resource"):
        idle.plan_cleanup(report, [], only_ids=["vol-00000000000000000"])


def test_cleanup_leaves_a_volume_attached_since_the_plan(world):
    ec2 = world["ec2"]
    report = idle.scan_idle([REGION], session=world["session"], kinds=("ebs-unattached",))
    report = idle.IdleReport(
        tuple(r for r in report.resources if r.resource_id == world["volumes"][0]),
        (),
        (),
        report.regions,
        report.prices,
    )
    plan = idle.plan_cleanup(report, ["ebs-unattached"])
    ec2.start_instances(InstanceIds=[world["instance"]])
    ec2.attach_volume(VolumeId=world["volumes"][0], InstanceId=world["instance"], Device="/dev/sdf")
    result = gate(
        plan,
        dry_run=False,
        approved_by="alice",
        execute=idle.cleanup_executor(session=world["session"]),
    )
    assert result.outcomes[0].status.value == "skipped"
    assert ec2.describe_volumes(VolumeIds=[world["volumes"][0]])["Volumes"]
    ec2.detach_volume(VolumeId=world["volumes"][0], InstanceId=world["instance"])


# --- AccessDenied on the wire: a private moto server with IAM enforcement ---------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def iam_server(tmp_path):
    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    log = open(tmp_path / "moto.log", "wb")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(
                    f"private moto server did not start: {(tmp_path / 'moto.log').read_text()[-500:]}"
                ) from None
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def test_access_denied_is_a_finding_and_the_rest_continues(iam_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", iam_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    admin = clients.aws_session(region="us-east-1")
    iam = clients.aws_client("iam", session=admin)
    iam.create_user(UserName="cost-reviewer")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Resource": "*",
                "Action": [
                    "ec2:Describe*",
                    "cloudwatch:GetMetricData",
                    "rds:Describe*",
                    "dynamodb:ListTables",
                    "dynamodb:DescribeTable",
                    "logs:DescribeLogGroups",
                ],
            }
        ],
    }  # no elasticloadbalancing:*
    iam.put_user_policy(
        UserName="cost-reviewer", PolicyName="read", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="cost-reviewer")["AccessKey"]
    vol = clients.aws_client("ec2", session=admin).create_volume(
        Size=30, AvailabilityZone="us-east-1a"
    )["VolumeId"]
    req = urllib.request.Request(
        iam_server + "/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(req, timeout=5).close()  # from now on every call is authorised by IAM

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    session = clients.aws_session(region="us-east-1")
    report = idle.scan_idle(["us-east-1"], session=session)
    assert vol in _by_id(report)
    denied = [f for f in report.errors if f.source == "idle:us-east-1:lb-idle"]
    assert len(denied) == 1 and denied[0].severity is Severity.ERROR
    assert "AccessDenied" in denied[0].evidence or "AccessDenied" in denied[0].title
    assert "permission" in denied[0].next_action
    assert len(report.errors) == 1  # the other checks ran
    assert os.environ["AWS_ENDPOINT_URL"] == iam_server
