"""The db-failover flow: bad input refused before anything changes (one error naming each
parameter), status with the PostgreSQL view, and a failover whose API is denied or whose wait
times out, seen through verify() as the evidence shows it."""

from __future__ import annotations

import time
import uuid

import pytest

from opslib.clients import aws_client
from opslib.core.errors import BadInputError, SecretInParameterError
from opslib.core.findings import Severity
from opslib.core.plans import apply, approve
from opslib.runbooks import db_failover as flow
from opslib.sandbox.scenarios import failover as scenario

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def rds(sandbox):
    return aws_client("rds")


@pytest.mark.parametrize(
    "params, words",
    [
        ({}, "exactly one of db_instance"),
        ({"db_instance": scenario.MULTI_AZ, "db_cluster": scenario.CLUSTER}, "not both"),
        ({"db_instance": scenario.MULTI_AZ, "action": "restart"}, "action='restart'"),
        ({"db_instance": "no-such-db"}, "db_instance='no-such-db'"),
        ({"db_cluster": "no-such-cluster"}, "db_cluster='no-such-cluster'"),
        (
            {"db_instance": scenario.SINGLE_AZ, "action": "failover"},
            "single-AZ.*action=reboot.*--multi-az",
        ),
        ({"db_instance": scenario.MULTI_AZ, "wait_timeout_minutes": 0}, "wait_timeout_minutes=0"),
    ],
)
def test_bad_input_is_refused_before_anything_changes(rds, params, words):
    with pytest.raises(BadInputError, match=words):
        flow.inputs(**params, rds=rds)


def test_every_bad_parameter_is_named_in_one_error(rds):
    with pytest.raises(SecretInParameterError) as e:
        flow.inputs("no-such-db", action="explode", pg_dsn="host=x password=hunter2", rds=rds)
    msg = str(e.value)
    assert "db_instance='no-such-db'" in msg and "action='explode'" in msg
    assert "pg_dsn carries a password" in msg and "hunter2" not in msg


def test_status_plans_nothing_and_reads_postgres(sandbox, rds):
    inp = flow.inputs(scenario.MULTI_AZ, pg_dsn=sandbox_dsn(sandbox), rds=rds)
    conns = flow.connect(inp)
    st = flow.status(inp, conns)
    assert st.target.multi_az and st.pg is not None and st.pg.in_recovery is False
    assert st.pg.connections >= 1 and st.pg.standby_lag_seconds is None  # a primary
    assert [r.identifier for r in st.metrics.rows] == [scenario.MULTI_AZ]
    assert st.metrics.rows[0].cpu_pct is not None
    p = flow.plan(inp, st)
    assert p.empty
    v = flow.verify(inp, conns, st, p, None)
    assert (v.applied, v.writer_changed, v.downtime_seconds) == (False, False, None)
    s = flow.summary(inp, st, p, v)
    assert s.writer_before == s.writer_after == st.target.availability_zone


def sandbox_dsn(sandbox) -> str:
    from opslib.sandbox import presets

    return presets("db-failover")["pg_dsn"]


@pytest.fixture
def own_cluster(rds):
    """An Aurora cluster of this test's own, with a long simulated failover."""
    name = f"dbf-{uuid.uuid4().hex[:8]}"
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="app",
        MasterUserPassword="not-a-real-one-1",
        Tags=[{"Key": "sandbox.opslib.dev/reboot-seconds", "Value": "5"}],
    )
    for n in (1, 2):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-{n}",
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
        )
    yield name
    time.sleep(0.1)
    for n in (1, 2):
        rds.delete_db_instance(DBInstanceIdentifier=f"{name}-{n}", SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)


def test_a_failover_wait_that_times_out_is_a_failed_change_with_the_state_now(rds, own_cluster):
    inp = flow.inputs(db_cluster=own_cluster, action="failover", rds=rds)
    conns = flow.connect(inp)
    st = flow.status(inp, conns)
    p = flow.plan(inp, st)
    approval = approve(p, dry_run=False, approved_by="unit")
    result = apply(
        p, approval=approval, execute=flow.executor(conns, inp, timeout_s=1.5, poll_s=0.5)
    )
    assert result.outcomes[0].status.value == "failed"
    assert "RunbookTimeoutError" in result.outcomes[0].detail
    v = flow.verify(inp, conns, st, p, result)
    assert v.applied is False and v.downtime_seconds is None
    assert v.status_after == "failing-over" and v.writer_after == f"{own_cluster}-1"
    assert v.findings[0].severity is Severity.CRITICAL
    assert "action=status" in v.findings[0].next_action
    time.sleep(5)  # the simulated failover ends; the writer moves as AWS would keep going
    assert flow.status(inp, conns).target.writer == f"{own_cluster}-2"


def test_a_denied_failover_leaves_the_writer_and_says_so(rds, sandbox):
    from opslib.clients import aws_config, aws_session
    from tests.unit.faultproxy import FaultProxy

    inp = flow.inputs(db_cluster=scenario.CLUSTER, action="failover", rds=rds)
    with FaultProxy(sandbox.aws_endpoint, errors={"FailoverDBCluster": "AccessDenied"}) as proxy:
        via = aws_session().client("rds", endpoint_url=proxy.url, config=aws_config())
        conns = flow.Connections(rds=via, cloudwatch=aws_client("cloudwatch"))
        st = flow.status(inp, conns)
        p = flow.plan(inp, st)
        result = apply(
            p,
            approval=approve(p, dry_run=False, approved_by="unit"),
            execute=flow.executor(conns, inp, poll_s=0.5),
        )
        v = flow.verify(inp, conns, st, p, result)
    assert result.outcomes[0].status.value == "failed"
    assert "AccessDenied" in result.outcomes[0].detail
    assert v.writer_after == v.writer_before == scenario.WRITER and not v.writer_changed
    assert v.findings[0].severity is Severity.CRITICAL and "IAM" in v.findings[0].evidence
