"""opslib.runbooks.latency_triage on the seeded latency incident (sandbox: moto, PostgreSQL, Kubernetes emulator).

The scenario is reseeded before each test that reads it, and after each test that changes it,
so every test starts from the same incident: p99 past 500 ms, RDS CPU ~92 %, Redis evictions,
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
    params = sb.presets("latency-triage")
    yield params
    sb.seed(["latency"])  # leave the incident as the next test expects it


def run_all(params, **over):
    inp = triage.inputs(**{**params, **over})
    conns = triage.connect(inp)
    m = triage.fetch_metrics(inp, cloudwatch=conns.cloudwatch)
    lat = triage.latency_picture(inp, m)
    svc = triage.service_health(inp, ecs=conns.ecs, k8s=conns.k8s)
    db = triage.database(inp, m, conn=conns.pg)
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
