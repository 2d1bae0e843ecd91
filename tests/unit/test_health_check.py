"""health-check flow against the session sandbox: each section finds what the scenario seeded.

One full check with the scenario's presets is shared by the module (it reads every source
once); the fault tests narrow ``check`` to one or two sources and put the fault proxy in front
of the AWS server through ``AWS_ENDPOINT_URL_<SERVICE>`` (botocore's own per-service endpoint
variable), so nothing in the code under test is patched.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import replace

import pytest

from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity
from opslib.runbooks import health_check as hc
from opslib.sandbox.scenarios import health as scenario
from opslib.sandbox.testing import ecs_service_back_on_the_failing_release

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def params(sandbox):
    from opslib import sandbox as sb

    ecs_service_back_on_the_failing_release()

    p = sb.presets("health-check")
    assert p.get("pg_dsn") and p.get("queues") == scenario.QUEUE_PREFIX, p
    return p


@pytest.fixture(scope="module")
def report(params):
    return hc.check(hc.inputs(**params))


def titles(report, source: str) -> list[str]:
    return [f.title for f in report.section(source).findings]


def test_overall_status_is_red_and_first_items_are_red(report):
    assert report.status is hc.Status.RED
    items = report.items_frame()
    assert list(items.columns) == ["status", "item", "source", "next_action"]
    assert items["status"].iloc[0] == "red" and set(items["status"]) == {"red", "amber"}
    assert items["next_action"].str.len().min() > 0  # every item says what to do next
    assert set(report.checked) == set(hc.SOURCES)


def test_ecs_section_finds_the_service_running_0_of_4(report):
    s = report.section("ecs")
    assert s.status is hc.Status.RED and s.checked >= 1
    assert any("fintech-api-service: 0 of 4 tasks running" in t for t in titles(report, "ecs"))
    row = next(r for r in s.rows if r["service"].endswith("/fintech-api-service"))
    assert (row["desired"], row["running"]) == (4, 0)


def test_alb_section_finds_the_stopped_target(report):
    s = report.section("alb")
    f = next(f for f in s.findings if scenario.TARGET_GROUP in f.title)
    assert f.severity is Severity.WARNING  # one of two targets down: amber, not red
    assert "1 of 2 not healthy" in f.evidence
    row = next(r for r in s.rows if r["target_group"] == scenario.TARGET_GROUP)
    assert (row["targets"], row["not_healthy"]) == (2, 1)


def test_alarms_section_finds_the_two_alarms_in_alarm_and_the_cli_agrees(report, sandbox):
    s = report.section("alarms")
    firing = {r["alarm"] for r in s.rows}
    assert set(scenario.ALARMS_IN_ALARM) <= firing and scenario.ALARM_OK not in firing
    assert s.checked >= 3 and s.status is hc.Status.RED
    assert s.api_calls == 1  # one paginated DescribeAlarms for the count and the firing ones
    out = subprocess.run(
        ["aws", "cloudwatch", "describe-alarms", "--state-value", "ALARM", "--output", "json",
         "--endpoint-url", os.environ["AWS_ENDPOINT_URL"], "--region", sandbox.region],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert {a["AlarmName"] for a in json.loads(out.stdout)["MetricAlarms"]} == firing


def test_sqs_section_finds_the_critical_queue(report):
    s = report.section("sqs")
    f = next(f for f in s.findings if scenario.BIG_QUEUE in f.title)
    assert f.severity is Severity.CRITICAL and f.data["visible"] >= scenario.BIG_QUEUE_MESSAGES
    assert not any(scenario.SMALL_QUEUE in t for t in titles(report, "sqs"))
    assert s.checked >= 2  # both fintech- queues, and only those (the prefix filter)
    assert all(r["queue"].startswith(scenario.QUEUE_PREFIX) for r in s.rows)


def test_postgres_section_finds_the_dead_tuples(report):
    s = report.section("postgres")
    f = next(f for f in s.findings if "dead tuples" in f.title)
    assert f"public.{scenario.TABLE}" in f.title and f.severity is Severity.WARNING
    assert f.next_action.startswith("db-maintenance runbook:")
    assert any(r["what"] == f"dead tuples public.{scenario.TABLE}" for r in s.rows)


def test_k8s_section_finds_the_crashing_pods(report):
    s = report.section("k8s")
    assert s.checked > 0 and s.status is hc.Status.RED
    assert any("OOMKilled" in t for t in titles(report, "k8s")), titles(report, "k8s")
    assert all(not r["ready"] or r["restarts"] for r in s.rows)


def test_k8s_section_finds_the_ingress_without_an_address_and_kubectl_agrees(report, sandbox):
    import shutil

    want = f"ingress {scenario.K8S_NAMESPACE}/{scenario.INGRESS} has no address"
    assert want in titles(report, "k8s"), titles(report, "k8s")
    assert shutil.which("kubectl"), "kubectl is needed to check what the emulator serves"
    out = subprocess.run(
        ["kubectl", "-n", scenario.K8S_NAMESPACE, "get", "ingress", scenario.INGRESS, "-o", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert not (json.loads(out.stdout).get("status") or {}).get("loadBalancer", {}).get("ingress")


def test_backups_reuse_the_backup_audit(report, sandbox):
    """The section's ages are the backup audit's own reading of the same snapshots."""
    from opslib.aws.snapshots import audit
    from opslib.clients import aws_client

    s = report.section("backups")
    assert s.checked >= 1 and s.api_calls >= 2
    rds = aws_client("rds")
    for row in s.rows:
        kind, ident = row["database"].split(" ", 1)
        a = (audit.audit_instance if kind == "instance" else audit.audit_cluster)(ident, rds=rds)
        newest = min(
            (h for h in (a.newest_automated_age_hours, a.newest_manual_age_hours) if h is not None),
            default=None,
        )
        if newest is None:
            assert row["age_h"] is None
        else:
            assert row["age_h"] == pytest.approx(newest, abs=0.2)


def test_each_section_counts_its_api_calls_by_operation(report):
    for s in report.sections:
        if s.checked:
            assert s.api_calls == sum(n for _, n in s.calls_by_operation) > 0, s.source
    sqs_ops = dict(report.section("sqs").calls_by_operation)
    assert sqs_ops["sqs:ListQueues"] == 1
    assert sqs_ops["sqs:GetQueueAttributes"] == report.section("sqs").checked


# --- status and comparison (no sandbox) -------------------------------------------------------


def f(sev: Severity, title: str = "x") -> Finding:
    return Finding(sev, title, "test")


def test_status_of():
    assert hc.status_of([]) is hc.Status.GREEN
    assert hc.status_of([f(Severity.OK), f(Severity.INFO)]) is hc.Status.GREEN
    assert hc.status_of([f(Severity.INFO), f(Severity.WARNING)]) is hc.Status.AMBER
    assert hc.status_of([f(Severity.ERROR)]) is hc.Status.AMBER  # a source that failed
    assert hc.status_of([f(Severity.WARNING), f(Severity.CRITICAL)]) is hc.Status.RED


def bundle(tmp_path, name: str, red: list[str], amber: list[str], status="succeeded"):
    d = tmp_path / "evidence" / hc.RUNBOOK / name
    d.mkdir(parents=True)
    results = {"status": "red" if red else "amber", "red": red, "amber": amber}
    (d / "record.json").write_text(
        json.dumps({"runbook": hc.RUNBOOK, "status": status, "results": results})
    )
    return d


def section(*found: Finding) -> hc.Section:
    return hc.Section("test", hc.status_of(found), len(found), tuple(found), 0, 0.0)


def test_compare_with_new_resolved_unchanged(tmp_path):
    first = bundle(
        tmp_path,
        "20260101T060000Z_a",
        ["SQS q: backlog over 10,000 messages", "CloudWatch alarm a in ALARM"],
        ["PostgreSQL: public.orders has 40% dead tuples"],
    )
    now = hc.HealthReport(
        hc.Status.RED,
        (
            section(
                f(Severity.CRITICAL, "CloudWatch alarm a in ALARM"),
                f(Severity.CRITICAL, "CloudWatch alarm b in ALARM"),
                f(Severity.WARNING, "PostgreSQL: public.orders has 41% dead tuples"),
                f(Severity.INFO, "informational, never compared"),
            ),
        ),
        1.0,
    )
    got = hc.compare(now, str(hc.previous_record_path(str(first))))
    assert got.new_since == ("CloudWatch alarm b in ALARM",)
    assert got.resolved_since == ("SQS q: backlog over 10,000 messages",)
    # the same problem with another number is unchanged, not resolved + new
    assert got.unchanged == (
        "CloudWatch alarm a in ALARM",
        "PostgreSQL: public.orders has 41% dead tuples",
    )
    assert got.compared_with == str(first)
    res = hc.results(got)
    assert res["new_since"] == ["CloudWatch alarm b in ALARM"] and res["status"] == "red"


def test_compare_with_an_evidence_dir_takes_the_newest_finished_run(tmp_path):
    bundle(tmp_path, "20260101T060000Z_a", ["old"], [])
    newest = bundle(tmp_path, "20260102T060000Z_b", [], ["newer"])
    refused = tmp_path / "evidence" / hc.RUNBOOK / "20260103T060000Z_c"
    refused.mkdir()
    (refused / "record.json").write_text(
        json.dumps({"runbook": hc.RUNBOOK, "status": "refused", "results": {}})
    )
    assert hc.previous_record_path(str(tmp_path / "evidence")) == newest / "record.json"
    inp = hc.inputs(compare_with=str(tmp_path / "evidence"))
    assert inp.compare_with == str(newest / "record.json")


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"concurrency": 0}, "concurrency=0"),
        ({"concurrency": 33}, "concurrency=33"),
        ({"window_minutes": 1}, "window_minutes=1"),
        ({"cert_warn_days": 0}, "cert_warn_days=0"),
        ({"compare_with": "/no/such/bundle"}, "no such bundle"),
    ],
)
def test_bad_input_is_refused_before_anything_is_read(bad, words):
    with pytest.raises(BadInputError, match=words):
        hc.inputs(**bad)


def test_compare_with_a_dir_without_health_check_runs_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="no health-check run"):
        hc.inputs(compare_with=str(tmp_path))


# --- faults and the concurrency bound ---------------------------------------------------------


def test_access_denied_source_is_an_amber_item_not_a_crash(sandbox, monkeypatch):
    from tests.unit.faultproxy import FaultProxy

    with FaultProxy(sandbox.aws_endpoint, errors={"ListQueues": "AccessDenied"}) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
        r = hc.check(hc.inputs(queues=scenario.QUEUE_PREFIX), only=["sqs", "alarms"])
        assert proxy.counts["error:ListQueues"] >= 1
    s = r.section("sqs")
    assert s.status is hc.Status.AMBER and s.checked == 0
    (item,) = s.findings
    assert item.severity is Severity.ERROR and item.title == "sqs: not checked, access denied"
    assert "ListQueues" in item.evidence and "UNKNOWN" in item.next_action
    assert "sqs: not checked, access denied" in r.titles(hc.Status.AMBER)
    assert hc.results(r)["failed_sources"] == ["sqs"]
    assert r.section("alarms").checked >= 3  # the other source still ran


def test_a_source_that_does_not_answer_in_time_is_an_amber_timeout(sandbox, monkeypatch):
    from tests.unit.faultproxy import FaultProxy

    with FaultProxy(sandbox.aws_endpoint, delay={"ListQueues": 8.0}) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
        inp = replace(hc.inputs(queues=scenario.QUEUE_PREFIX), timeout_s=2.0)
        t0 = time.monotonic()
        r = hc.check(inp, only=["sqs"])
        assert time.monotonic() - t0 < 7.0  # the check did not wait for the slow answer
    (item,) = r.section("sqs").findings
    assert item.title == "sqs: not checked, timed out" and "2s" in item.evidence
    assert item.severity is Severity.ERROR and r.status is hc.Status.AMBER


def overlap(sections) -> int:
    """The most sections running at one instant."""
    events = sorted([(s.started_s, 1) for s in sections] + [(s.ended_s, -1) for s in sections])
    most = now = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):
        now += d
        most = max(most, now)
    return most


def test_concurrency_bound_is_respected(sandbox):
    four = ["alarms", "elasticache", "acm", "rds"]
    one = hc.check(replace(hc.inputs(), concurrency=1), only=four)
    assert overlap(one.sections) == 1
    ordered = sorted(one.sections, key=lambda s: s.started_s)
    assert all(a.ended_s <= b.started_s for a, b in zip(ordered, ordered[1:], strict=False))
    two = hc.check(replace(hc.inputs(), concurrency=2), only=four)
    assert overlap(two.sections) <= 2
    assert [s.source for s in two.sections] == ["alarms", "rds", "elasticache", "acm"]


def test_rds_connections_against_max_connections_at_80_and_95_percent():
    from opslib.aws import rds_health

    def db(connections, ceiling):
        return rds_health.DbInstance(
            "db-1", "postgres", "available", 100, 10.0, connections, 50.0, ceiling
        )

    titles = {
        (c, m): [(f.severity, f.title) for f in rds_health.findings([db(c, m)])]
        for c, m in ((70, 100), (85, 100), (96, 100), (96, None))
    }
    assert titles[(70, 100)] == [] and titles[(96, None)] == []  # under, or ceiling unknown
    assert titles[(85, 100)] == [
        (Severity.WARNING, "RDS db-1: connections at 85% of max_connections")
    ]
    assert titles[(96, 100)][0][0] is Severity.CRITICAL
