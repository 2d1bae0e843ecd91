"""opslib.aws.rds_failover against the sandbox's AWS server: the writer as read, plans that say
the downtime, a Multi-AZ failover that swaps the AZs, a wait that times out, a denied API."""

from __future__ import annotations

import time
import uuid

import pytest

from opslib.aws import rds_failover as rf
from opslib.clients import aws_client, aws_config, aws_session
from opslib.core.errors import AccessDeniedError, NotFoundError, RunbookTimeoutError
from opslib.sandbox.scenarios import failover as scenario
from tests.unit.faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def rds(sandbox):
    return aws_client("rds")


@pytest.fixture
def multi_az(rds):
    """A throwaway Multi-AZ instance of this test's own (the scenario's stay as seeded)."""
    name = f"dbf-{uuid.uuid4().hex[:8]}"
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="app",
        MasterUserPassword="not-a-real-one-1",
        AllocatedStorage=20,
        MultiAZ=True,
        Tags=[{"Key": "sandbox.opslib.dev/reboot-seconds", "Value": "2"}],
    )
    yield name
    rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)


def test_cluster_writer_readers_and_endpoints_as_read(rds):
    t = rf.describe_target("cluster", scenario.CLUSTER, rds=rds)
    assert t.kind is rf.TargetKind.CLUSTER and t.engine == "aurora-postgresql"
    assert t.writer == scenario.WRITER and t.readers == (scenario.READER,)
    assert t.can_fail_over and t.status == "available"
    names = [e.name for e in t.endpoints]
    assert names[:2] == ["cluster (writer)", "reader"]
    writer_address, reader_address = t.endpoints[0].address, t.endpoints[1].address
    assert reader_address and writer_address and reader_address != writer_address


def test_single_az_instance_has_no_standby_and_a_missing_one_is_not_found(rds):
    t = rf.describe_target("instance", scenario.SINGLE_AZ, rds=rds)
    assert not t.multi_az and not t.can_fail_over and t.secondary_availability_zone == ""
    with pytest.raises(NotFoundError, match="db_instance='no-such-db'"):
        rf.describe_target("instance", "no-such-db", rds=rds)


def test_plans_name_the_exact_call_and_say_the_downtime(rds):
    t = rf.describe_target("instance", scenario.MULTI_AZ, rds=rds)
    reboot = rf.plan_reboot(t, timeout_s=600)
    [c] = reboot.changes
    assert (c.action, dict(c.params)) == (
        "rds:RebootDBInstance",
        {"DBInstanceIdentifier": t.identifier},
    )
    assert "DOWNTIME: last resort" in c.effect and "Reboot is the last resort" in reboot.warnings[0]
    [f] = rf.plan_failover(t, timeout_s=600).changes
    assert f.params == {"DBInstanceIdentifier": t.identifier, "ForceFailover": True}
    assert t.secondary_availability_zone in f.effect


def test_multi_az_failover_swaps_primary_and_standby_and_records_events(rds, multi_az):
    t = rf.describe_target("instance", multi_az, rds=rds)
    primary, standby = t.availability_zone, t.secondary_availability_zone
    assert primary and standby and primary != standby
    [change] = rf.plan_failover(t, timeout_s=60).changes
    out = rf.reboot_instance(change, rds=rds, timeout_s=30, poll_s=0.5)
    assert out.data["writer_before"] == primary and out.data["writer_after"] == standby
    assert 1.5 <= out.data["downtime_seconds"] <= 10
    assert out.data["statuses_seen"][0] == "rebooting" and out.data["status_after"] == "available"
    after = rf.describe_target("instance", multi_az, rds=rds)
    assert after.secondary_availability_zone == primary
    msgs = [e.message for e in rf.recent_events(after, rds=rds).events]
    assert "Multi-AZ instance failover completed." in msgs and "DB instance restarted." in msgs


def test_a_reboot_is_waited_for_and_its_downtime_measured(rds, multi_az):
    t = rf.describe_target("instance", multi_az, rds=rds)
    [change] = rf.plan_reboot(t, timeout_s=60).changes
    out = rf.reboot_instance(change, rds=rds, timeout_s=30, poll_s=0.5)
    assert out.data["statuses_seen"][0] == "rebooting" and out.data["status_after"] == "available"
    assert 1.5 <= out.data["downtime_seconds"] <= 10
    assert out.data["writer_before"] == out.data["writer_after"] == t.availability_zone
    assert out.detail.startswith("rebooted; available again, back after")


def test_a_reboot_no_poll_saw_has_no_made_up_downtime(rds, multi_az, monkeypatch):
    """Faster than one poll: after the grace it counts as back, with the downtime not measured
    (None), never the grace itself."""
    rds.add_tags_to_resource(
        ResourceName=rf.describe_target("instance", multi_az, rds=rds).arn,
        Tags=[{"Key": "sandbox.opslib.dev/reboot-seconds", "Value": "0"}],
    )
    monkeypatch.setattr(rf, "REBOOT_GRACE_SECONDS", 1.0)
    [change] = rf.plan_reboot(
        rf.describe_target("instance", multi_az, rds=rds), timeout_s=60
    ).changes
    out = rf.reboot_instance(change, rds=rds, timeout_s=30, poll_s=0.5)
    assert out.data["downtime_seconds"] is None
    assert "downtime not measured" in out.detail


def test_a_reboot_longer_than_the_wait_times_out_saying_how_to_resume(rds, multi_az):
    rds.add_tags_to_resource(
        ResourceName=rf.describe_target("instance", multi_az, rds=rds).arn,
        Tags=[{"Key": "sandbox.opslib.dev/reboot-seconds", "Value": "6"}],
    )
    [change] = rf.plan_reboot(
        rf.describe_target("instance", multi_az, rds=rds), timeout_s=1
    ).changes
    with pytest.raises(RunbookTimeoutError, match="rebooting.*aws rds wait db-instance-available"):
        rf.reboot_instance(change, rds=rds, timeout_s=1.5, poll_s=0.5)
    time.sleep(6)  # let it finish before the fixture deletes it
    assert rf.describe_target("instance", multi_az, rds=rds).status == "available"


def test_a_denied_failover_is_an_access_denied_error_and_nothing_moves(rds, sandbox):
    t = rf.describe_target("cluster", scenario.CLUSTER, rds=rds)
    [change] = rf.plan_failover(t, timeout_s=60).changes
    with FaultProxy(sandbox.aws_endpoint, errors={"FailoverDBCluster": "AccessDenied"}) as proxy:
        via = aws_session().client("rds", endpoint_url=proxy.url, config=aws_config())
        with pytest.raises(AccessDeniedError, match="rds:FailoverDBCluster.*IAM permission"):
            rf.failover_cluster(change, rds=via, timeout_s=5, poll_s=0.5)
        assert proxy.counts["error:FailoverDBCluster"] == 1
    assert rf.describe_target("cluster", scenario.CLUSTER, rds=rds).writer == t.writer


def test_denied_events_and_metrics_are_findings_not_errors(rds, sandbox):
    t = rf.describe_target("cluster", scenario.CLUSTER, rds=rds)
    errors = {"DescribeEvents": "AccessDenied", "GetMetricData": "ThrottlingException"}
    with FaultProxy(sandbox.aws_endpoint, errors=errors) as proxy:
        via = aws_session().client("rds", endpoint_url=proxy.url, config=aws_config())
        cw = aws_session().client(
            "cloudwatch", endpoint_url=proxy.url, config=aws_config(retries={"max_attempts": 1})
        )
        ev = rf.recent_events(t, rds=via)
        m = rf.metrics(t, rds=via, cloudwatch=cw)
    assert ev.events == () and "denied" in ev.findings[0].title
    assert m.findings and "throttled" in m.findings[0].title
    assert [r.identifier for r in m.rows] == [scenario.WRITER, scenario.READER]
