"""opslib.runbooks.latency_triage on the seeded latency incident (sandbox: moto, PostgreSQL, Kubernetes emulator).

The scenario is reseeded before each test that reads it (a test that changes it needs nothing
more), so every test starts from the same incident: p99 past 500 ms, RDS CPU ~92 %, Redis evictions,
auth-service pods OOMKilled, and one idle-in-transaction session blocking three others.
"""

from __future__ import annotations

import socket

import pytest

from opslib import sandbox as sb
from opslib.core.errors import BadInputError, SecretInParameterError
from opslib.core.findings import Severity
from opslib.core.plans import ChangeStatus
from opslib.runbooks import latency_triage as triage
from opslib.safety import gate

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def incident(sandbox):
    errors = sb.seed(["latency"])
    assert errors.get("latency") == "", errors
    return sb.presets("latency-triage")


def run_all(params, **over):
    inp = triage.inputs(**{**params, **over})
    conns = triage.connect(inp)
    m = triage.fetch_metrics(inp, cloudwatch=conns.cloudwatch)
    lat = triage.latency_picture(inp, m)
    svc = triage.service_health(inp, ecs=conns.ecs, k8s=conns.k8s, metrics=m)
    db = triage.database(inp, m, conn=conns.pg, rds=conns.rds)
    cache = triage.cache(inp, m)
    return inp, conns, m, lat, svc, db, cache, triage.verdict(conns, lat, svc, db, cache)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_verdict_names_the_blocking_session_first(incident):
    inp, conns, m, lat, svc, db, cache, v = run_all(incident)
    try:
        assert m.series is not None and m.series.calls <= 3  # probe + one call (+ nothing else)
        assert lat.p99_ms is not None and lat.p99_ms > 500 and lat.breach_minutes >= 5
        assert lat.breaches and lat.p99_stat in ("p99", "Maximum")
        assert any("5xx rate" in f.title for f in lat.findings)
        top = v.top
        assert top.source == "postgres" and top.severity is Severity.CRITICAL
        assert str(db.blocking_pids[0]) in top.title and "blocks 3 session(s)" in top.title
        assert "Kill the blocking PID" in v.line
        titles = [f.title for f in v.findings]
        assert any(t.startswith("Aurora/RDS fintech-banking-db: CPU at 9") for t in titles)
        assert any("evictions/min (cache thrashing)" in t for t in titles)
        assert any("OOMKilled" in t for t in titles)
        assert sorted(svc.restarting_pods) == [
            "auth-service-7c9d8f-4xkqp",
            "auth-service-7c9d8f-9mzt2",
        ]
        assert svc.events and svc.ecs is not None and svc.ecs.oom_stops >= 2
        assert [s["severity"] for s in v.summary()][0] == "critical"
    finally:
        conns.close()


def test_empty_sources_are_skipped_visibly():
    inp = triage.inputs()
    conns = triage.connect(inp)
    m = triage.fetch_metrics(inp, cloudwatch=conns.cloudwatch)
    v = triage.verdict(
        conns,
        triage.latency_picture(inp, m),
        triage.service_health(inp),
        triage.database(inp, m),
        triage.cache(inp, m),
    )
    titles = [f.title for f in v.findings]
    for what in (
        "load_balancer",
        "ecs_cluster/ecs_service",
        "k8s_namespace",
        "db_cluster",
        "pg_dsn",
        "cache_cluster",
    ):
        assert f"skipped: no {what} given" in titles
    assert all(f.severity is Severity.INFO for f in v.findings)
    assert v.line.startswith("No problem found")


def test_unreachable_database_is_a_finding_and_the_rest_goes_on(incident):
    dsn = f"host=127.0.0.1 port={closed_port()} dbname=accounts"
    inp, conns, m, lat, svc, db, cache, v = run_all(incident, pg_dsn=dsn)
    pg_err = [f for f in v.findings if f.source == "postgres" and f.severity is Severity.ERROR]
    assert (
        pg_err and "ClientConfigError" in pg_err[0].title and "Cannot connect" in pg_err[0].evidence
    )
    assert conns.pg is None and db.activity is None and db.blocking_pids == []
    assert lat.p99_ms and lat.p99_ms > 500  # the other sources still answered
    assert svc.restarting_pods and len(db.frame)
    assert v.top.severity is Severity.CRITICAL and v.top.source != "postgres"


def test_metric_with_no_data_is_an_info_finding(incident):
    inp, conns, m, lat, svc, db, cache, v = run_all(
        incident,
        load_balancer="app/nothing-here/0000000000000000",
        cache_cluster="no-such-cache",
        pg_dsn="",
        k8s_namespace="",
        k8s_selector="",
        ecs_cluster="",
        ecs_service="",
    )
    no_data = [f for f in v.findings if "no datapoints" in f.title]
    assert {f.source for f in no_data} >= {"alb", "cache"}
    assert all(f.severity is Severity.INFO for f in no_data)
    assert lat.p99_ms is None and lat.breach_minutes == 0
    assert any(f.source == "rds" and "CPU" in f.title for f in v.findings)  # still read


def test_bad_inputs_are_refused_before_anything_runs():
    with pytest.raises(SecretInParameterError, match="PGPASSWORD"):
        triage.inputs(pg_dsn="host=db user=app password=hunter2")
    with pytest.raises(SecretInParameterError):
        triage.inputs(pg_dsn="postgresql://app:hunter2@db/accounts")
    for bad in (
        {"window_minutes": 1},
        {"threshold_ms": 0},
        {"max_terminations": -1},
        {"scale_out_by": -2},
        {"ecs_cluster": "c"},
        {"k8s_selector": "app=x"},
        {"load_balancer": "my-alb"},
    ):
        with pytest.raises(BadInputError):
            triage.inputs(**bad)


def test_remediation_plan_respects_the_switches(incident):
    inp, conns, m, lat, svc, db, cache, v = run_all(incident)
    try:
        plan = triage.plan_remediation(inp, db=db, services=svc)
        assert plan.changes == () and any("terminate_blocking=True" in w for w in plan.warnings)
        inp2 = triage.inputs(**{**incident, "terminate_blocking": True, "scale_out_by": 2})
        plan2 = triage.plan_remediation(inp2, db=db, services=svc)
        assert [c.action for c in plan2.changes] == [
            "pg_terminate_backend",
            "ecs:UpdateService",
            "k8s:patch deployments/scale",
        ]
        assert plan2.changes[0].params["pid"] == db.blocking_pids[0]
        assert plan2.changes[0].params["pid"] not in (db.activity.own_pid,)
    finally:
        conns.close()


def test_blocker_choice_preselects_like_the_parameters_and_the_plan_follows_it(incident):
    inp, conns, m, lat, svc, db, cache, v = run_all(incident)
    try:
        root = db.blocking_pids[0]
        options, pre = triage.blocker_selection(inp, db)
        assert [pid for _label, pid in options] == [root] and pre == []
        label = options[0][0]
        assert f"pid {root}" in label and "ledger-batch" in label and "blocks 3" in label
        # headless: the preselection gives exactly today's plan, with or without the switch
        for over, expected in (
            ({}, []),
            ({"terminate_blocking": True}, [root]),
            ({"terminate_blocking": True, "max_terminations": 0}, []),
        ):
            inp2 = triage.inputs(**{**incident, **over})
            assert triage.blocker_selection(inp2, db)[1] == expected
            today = triage.plan_remediation(inp2, db=db, services=svc)
            chosen = triage.plan_remediation(inp2, db=db, services=svc, only_pids=expected)
            assert chosen.digest() == today.digest() and chosen.warnings == today.warnings
        # the engineer ticks the root although terminate_blocking=False: it is planned
        ticked = triage.plan_remediation(inp, db=db, services=svc, only_pids=[root])
        assert [c.params["pid"] for c in ticked.changes] == [root]
        # unticked although terminate_blocking=True: nothing is terminated, and the plan says so
        inp3 = triage.inputs(**{**incident, "terminate_blocking": True})
        unticked = triage.plan_remediation(inp3, db=db, services=svc, only_pids=[])
        assert unticked.changes == () and any("not chosen" in w for w in unticked.warnings)
        with pytest.raises(BadInputError, match="not root blockers"):
            triage.plan_remediation(inp3, db=db, services=svc, only_pids=[root + 100000])
    finally:
        conns.close()


def test_approved_termination_clears_the_chain(incident):
    params = {**incident, "terminate_blocking": True}
    inp, conns, m, lat, svc, db, cache, v = run_all(params)
    try:
        plan = triage.plan_remediation(inp, db=db, services=svc)
        assert gate(plan, dry_run=True, approved_by="x", execute=triage.executor(conns)) is None
        assert triage.database(inp, m, conn=conns.pg).blocking_pids == db.blocking_pids  # untouched
        res = gate(
            plan,
            dry_run=False,
            approved_by="oncall",
            change_ticket="INC-1",
            execute=triage.executor(conns),
        )
        assert [o.status for o in res.outcomes] == [ChangeStatus.APPLIED]
        assert triage.terminated_pids(res) == db.blocking_pids
        after = triage.recheck_blocking(conns, res)
        assert after is not None and after.cleared, after
        rows = conns.pg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'accounts' AND application_name = 'auth-service'"
        ).fetchone()
        assert rows[0] == 0  # the three waiters got their lock, committed and left
    finally:
        conns.close()


def test_latency_chart_has_threshold_breach_shading_and_5xx_panel(incident):
    import matplotlib

    matplotlib.use("Agg")
    from opslib.report.latency import latency_figure

    inp = triage.inputs(load_balancer=incident["load_balancer"], region=incident["region"])
    conns = triage.connect(inp)
    pic = triage.latency_picture(inp, triage.fetch_metrics(inp, cloudwatch=conns.cloudwatch))
    fig = latency_figure(pic)
    top, bottom = fig.axes
    assert any(
        line.get_ydata()[0] == inp.threshold_ms for line in top.get_lines()
    )  # threshold line
    assert top.collections, "breach periods are shaded"
    assert bottom.get_ylabel() == "5xx %" and len(bottom.patches) == len(pic.frame)
    empty = triage.latency_picture(triage.inputs(), triage.Metrics(None))
    assert empty.skipped and latency_figure(empty) is None


# --- alarm semantics, 5xx, percentiles, ECS, cache, connections, load spike ------------------


def _put_alb(lb: str, rows: list[tuple[int, float, float, float, float]]) -> None:
    """rows: (minutes ago, p99 seconds, requests, target 5xx, ELB 5xx) for one load balancer."""
    import datetime as dt

    from opslib.clients import aws_client

    cw = aws_client("cloudwatch")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    dims = [{"Name": "LoadBalancer", "Value": lb}]
    data = []
    for ago, p99, req, t5, e5 in rows:
        ts = now - dt.timedelta(minutes=ago)
        data += [
            {"MetricName": "TargetResponseTime", "Dimensions": dims, "Timestamp": ts, "Value": p99},
            {"MetricName": "RequestCount", "Dimensions": dims, "Timestamp": ts, "Value": req},
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Timestamp": ts,
                "Value": t5,
            },
            {
                "MetricName": "HTTPCode_ELB_5XX_Count",
                "Dimensions": dims,
                "Timestamp": ts,
                "Value": e5,
            },
        ]
    cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data)


def _picture(lb: str, **over):
    inp = triage.inputs(load_balancer=lb, window_minutes=30, **over)
    conns = triage.connect(inp)
    return triage.latency_picture(inp, triage.fetch_metrics(inp, cloudwatch=conns.cloudwatch))


def _lb() -> str:
    import uuid

    return f"app/lt-{uuid.uuid4().hex[:8]}/{uuid.uuid4().hex[:16]}"


def test_a_breach_shorter_than_the_alarm_is_a_spike_not_the_alarm(sandbox):
    lb = _lb()
    # 4 minutes at 900 ms then back under: one breaching minute short of the alarm
    _put_alb(lb, [(ago, 0.9 if 10 <= ago < 14 else 0.2, 1000, 1, 0) for ago in range(1, 25)])
    pic = _picture(lb)
    assert pic.p99_ms and pic.p99_ms >= 899
    assert not pic.alarm and pic.breach_minutes == 0 and pic.spike_minutes == 4
    alb = [f for f in pic.findings if f.source == "alb" and "p99" in f.title]
    assert alb[0].severity is Severity.INFO and "no alarm" in alb[0].title
    # the same four minutes with alarm_minutes=3: the alarm holds
    pic3 = _picture(lb, alarm_minutes=3)
    assert pic3.alarm and pic3.breach_minutes == 4 and pic3.spike_minutes == 0
    assert [f.severity for f in pic3.findings if "p99" in f.title] == [Severity.WARNING]


def test_a_sustained_breach_is_the_alarm_and_critical_past_one_second(sandbox):
    lb = _lb()
    # six minutes at 1.2 s up to now, plus one isolated minute at 800 ms 21 minutes ago
    rows = [
        (ago, 1.2 if ago <= 6 else 0.8 if ago == 21 else 0.2, 1000, 0, 0) for ago in range(1, 25)
    ]
    _put_alb(lb, rows)
    pic = _picture(lb)
    assert pic.alarm and pic.breach_minutes == 6 and pic.longest_breach_minutes == 6
    assert pic.spike_minutes == 1 and len(pic.spikes) == 1
    f = next(f for f in pic.findings if "p99" in f.title)
    assert f.severity is Severity.CRITICAL and "for 6 consecutive min" in f.title
    assert "1 isolated spike(s)" in f.evidence


def test_error_rate_is_sustained_with_a_minimum_request_count(sandbox):
    lb = _lb()
    # one minute of 1 request with 1 error (100 % for a minute), otherwise clean: no finding
    _put_alb(
        lb, [(ago, 0.1, 1 if ago == 5 else 40, 1 if ago == 5 else 0, 0) for ago in range(1, 25)]
    )
    pic = _picture(lb)
    titles = [f.title for f in pic.findings]
    assert pic.error_rate_pct is not None and pic.error_rate_pct < 1.0, titles
    assert not any(f.severity in (Severity.WARNING, Severity.CRITICAL) for f in pic.findings), (
        titles
    )
    # under min_requests in every window: not judged, and the finding says so
    low = _picture(lb, min_requests=10_000)
    assert low.error_rate_pct is None and any(
        "not judged" in t for t in (f.title for f in low.findings)
    )
    # 3 % sustained over five minutes: a warning with the split of target and ELB 5xx
    lb2 = _lb()
    _put_alb(
        lb2,
        [(ago, 0.1, 1000, 20 if ago <= 6 else 0, 10 if ago <= 6 else 0) for ago in range(1, 25)],
    )
    pic2 = _picture(lb2)
    f = next(f for f in pic2.findings if "5xx rate" in f.title)
    assert f.severity is Severity.WARNING and pic2.error_rate_pct == pytest.approx(3.0)
    assert pic2.target_5xx == 120 and pic2.elb_5xx == 60
    assert "120 target 5xx and 60 load-balancer 5xx" in f.evidence
    assert any("Load balancer generated 60 5xx" in t for t in (x.title for x in pic2.findings))


def test_p95_is_fetched_beside_p50_p90_p99():
    inp = triage.inputs(
        load_balancer="app/x/0", ecs_cluster="c", ecs_service="s", cache_cluster="r"
    )
    ids = {q.id: q for q in triage.metric_queries(inp)}
    assert [ids[f"alb_{s}"].stat for s in ("p50", "p90", "p95", "p99")] == [
        "p50",
        "p90",
        "p95",
        "p99",
    ]
    assert ids["alb_elb_5xx"].metric == "HTTPCode_ELB_5XX_Count"
    assert (ids["ecs_cpu"].namespace, ids["ecs_cpu"].metric) == ("AWS/ECS", "CPUUtilization")
    assert dict(ids["ecs_mem"].dimensions) == {"ClusterName": "c", "ServiceName": "s"}
    assert ids["cache_hits"].metric == "CacheHits" and ids["cache_misses"].metric == "CacheMisses"


def test_incident_reads_ecs_utilisation_cache_hit_rate_elb_5xx_and_connections(incident):
    inp, conns, m, lat, svc, db, cache, v = run_all(incident)
    try:
        assert "p95_ms" in lat.frame and lat.elb_5xx > 0 and lat.target_5xx > lat.elb_5xx
        assert lat.alarm and lat.spike_minutes == 1  # the seeded isolated minute 40 min ago
        ecs = {f.title: f for f in svc.findings if f.source == "ecs" and "%" in f.title}
        mem = next(f for t, f in ecs.items() if "memory at" in t)
        cpu = next(f for t, f in ecs.items() if "CPU at" in t)
        assert mem.severity is Severity.CRITICAL and cpu.severity is Severity.WARNING
        assert "80% task CPU alert" in cpu.evidence and len(svc.utilisation)
        hr = next(f for f in cache.findings if "hit rate" in f.title)
        assert hr.severity is Severity.WARNING and 55 <= hr.data["hit_rate_pct"] < 70
        c = next(f for f in db.findings if "of max_connections" in f.title)
        assert db.max_connections.source == "SHOW max_connections"
        assert c.severity is Severity.WARNING and 80 <= db.connections_pct < 95
        assert c.data["max_connections"] == db.activity.max_connections
        assert v.top.source == "postgres"  # the cause still comes first
    finally:
        conns.close()


def test_load_spike_proposes_plus_two_with_the_parameters_to_rerun(incident):
    inp, conns, m, lat, svc, db, cache, v = run_all(incident)
    try:
        assert inp.scale_out_by == 0 and lat.load_spike_ratio and lat.load_spike_ratio >= 1.25
        spike = next(f for f in v.findings if f.source == "load")
        assert spike.severity is Severity.WARNING and "scale_out_by=2" in spike.next_action
        assert "opslib run latency-triage" in spike.next_action
        assert v.rerun["scale_out_by"] == 2 and v.rerun["ecs_service"] == incident["ecs_service"]
        assert v.rerun["load_balancer"] == incident["load_balancer"]
        # nothing scales by default; the proposed parameters plan exactly the +2
        plan = triage.plan_remediation(inp, db=db, services=svc)
        assert not [c for c in plan.changes if c.action == "ecs:UpdateService"]
        inp2 = triage.inputs(**{**incident, **v.rerun})
        plan2 = triage.plan_remediation(inp2, db=db, services=svc)
        scale = next(c for c in plan2.changes if c.action == "ecs:UpdateService")
        assert scale.params["desiredCount"] == svc.ecs.desired + 2
        # asked already: the finding says it is planned, and no rerun is proposed
        lat2 = triage.latency_picture(inp2, m)
        assert not lat2.rerun and any(
            "is in the remediation plan" in f.next_action for f in lat2.findings
        )
    finally:
        conns.close()


def test_connections_against_the_parameter_group_without_pg_dsn(sandbox):
    import datetime as dt
    import uuid

    from opslib.clients import aws_client

    rds, cw = aws_client("rds"), aws_client("cloudwatch")
    name = f"lt-{uuid.uuid4().hex[:8]}"
    rds.create_db_parameter_group(
        DBParameterGroupName=name, DBParameterGroupFamily="postgres16", Description="t"
    )
    rds.modify_db_parameter_group(
        DBParameterGroupName=name,
        Parameters=[
            {
                "ParameterName": "max_connections",
                "ParameterValue": "200",
                "ApplyMethod": "pending-reboot",
            }
        ],
    )
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-a-real-one-1",
        AllocatedStorage=20,
        DBParameterGroupName=name,
    )
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    dims = [{"Name": "DBInstanceIdentifier", "Value": name}]
    cw.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            m
            for ago in range(1, 10)
            for m in (
                {
                    "MetricName": "CPUUtilization",
                    "Dimensions": dims,
                    "Timestamp": now - dt.timedelta(minutes=ago),
                    "Value": 20.0,
                },
                {
                    "MetricName": "DatabaseConnections",
                    "Dimensions": dims,
                    "Timestamp": now - dt.timedelta(minutes=ago),
                    "Value": 195.0,
                },
            )
        ],
    )
    inp = triage.inputs(db_cluster=name)
    conns = triage.connect(inp)
    assert conns.rds is not None
    db = triage.database(inp, triage.fetch_metrics(inp, cloudwatch=conns.cloudwatch), rds=conns.rds)
    f = next(f for f in db.findings if "max_connections" in f.title)
    assert f.severity is Severity.CRITICAL and "98% of max_connections (195 of 200)" in f.title
    assert db.max_connections.source == f"parameter group {name}"


def test_parameter_group_denied_or_unsupported_is_a_finding(sandbox):
    """Through the fault proxy: DescribeDBParameters answers AccessDenied, then InvalidAction."""
    import uuid

    from opslib.aws.rds_params import from_parameter_group
    from opslib.clients import aws_client, aws_config, aws_session
    from tests.unit.faultproxy import FaultProxy

    rds = aws_client("rds")
    name = f"lt-{uuid.uuid4().hex[:8]}"
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-a-real-one-1",
        AllocatedStorage=20,
    )
    for code, kind in (("AccessDenied", "denied"), ("InvalidAction", "unsupported")):
        with FaultProxy(rds.meta.endpoint_url, errors={"DescribeDBParameters": code}) as proxy:
            via = aws_session().client("rds", endpoint_url=proxy.url, config=aws_config())
            got = from_parameter_group(name, rds=via)
            assert got.value is None and got.error_kind == kind and code in got.note
            assert proxy.counts["error:DescribeDBParameters"] >= 1
    inp = triage.inputs(db_cluster=name)
    frame = __import__("pandas").DataFrame({"connections": [50.0]})
    from opslib.aws.rds_params import MaxConnections
    from opslib.runbooks.latency_triage.signals import connections_finding

    _, f = connections_finding(inp, frame, MaxConnections(None, "", "denied", "denied"))
    assert f.severity is Severity.WARNING and "max_connections not known" in f.title
