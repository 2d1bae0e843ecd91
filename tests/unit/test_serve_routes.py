"""Routes files: checked at load (exit 2 naming the line), first match wins, JMESPath mapping,
constants, resolved alerts per route, and the always-dry rule; ``--check-routes`` runs nothing.
"""

from __future__ import annotations

import json

import pytest

from opslib.cli import main
from opslib.serve.alerts import Alert, AlertState
from opslib.serve.routes import RoutesError, decide, load_routes
from tests.unit.serve_support import am_webhook, write_triage_notebook

GOOD = """\
routes:
  - name: latency
    source: alertmanager
    match:
      labels: {alertname: HighLatency, severity: {regex: "crit.*"}}
    runbook: triage
    parameters:
      service: "join('-', [commonLabels.service, 'api'])"
    constants: {severity: critical}
    on_resolved: run
  - name: catch-all
    source: alertmanager
    runbook: triage
"""


@pytest.fixture
def books(tmp_path, monkeypatch):
    write_triage_notebook(tmp_path / "nb")
    monkeypatch.setenv("OPSLIB_NOTEBOOKS", str(tmp_path / "nb"))
    return tmp_path


def alert(labels, state=AlertState.FIRING, context=None):
    return Alert("alertmanager", "k", state, labels.get("alertname", ""), labels, {}, context or {})


def test_first_match_maps_parameters_and_forces_dry(books):
    (books / "r.yaml").write_text(GOOD)
    routes = load_routes(books / "r.yaml")
    ctx = {"commonLabels": {"service": "auth"}}
    d = decide(routes, alert({"alertname": "HighLatency", "severity": "critical"}, context=ctx))
    assert d.route.name == "latency" and d.runs
    assert d.parameters == {
        "service": "auth-api",
        "severity": "critical",
        "dry_run": True,
        "approved_by": "",
    }
    d = decide(routes, alert({"alertname": "HighLatency", "severity": "warning"}))
    assert d.route.name == "catch-all"
    d = decide(routes, alert({"alertname": "HighLatency", "severity": "crit"}, AlertState.RESOLVED))
    assert d.runs  # on_resolved: run
    d = decide(routes[1:], alert({"alertname": "X"}, AlertState.RESOLVED))
    assert not d.runs and "ignores resolved" in d.skipped


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "routes:\n  - source: alertmanager\n    runbook: nope\n",
            "line 2 (route 1): Unknown runbook 'nope'",
        ),
        (
            GOOD.replace('service: "join', 'servce: "join'),
            "line 2 (route 1): runbook triage has no parameter 'servce'",
        ),
        (
            GOOD.replace("constants: {severity: critical}", "constants: {approved_by: me}"),
            "always dry runs",
        ),
        (
            GOOD
            + "  - source: alertmanager\n    runbook: triage\n    constants: {dry_run: false}\n",
            "line 14 (route 3): a route cannot set dry_run",
        ),
        (GOOD.replace("[commonLabels.service, 'api']", "[commonLabels.service"), "bad JMESPath"),
        (GOOD.replace('"crit.*"', '"crit(.*"'), "bad regex"),
        (GOOD.replace("source: alertmanager", "source: nagios", 1), "source must be one of"),
        (
            GOOD.replace("labels: {", "alarm_name: x\n      labels: {", 1),
            "cannot match alertmanager alerts on 'alarm_name'",
        ),
        (
            "routes:\n  - source: alertmanager\n    runbook: triage\n    constants: {sleep_s: slow}\n",
            "must be float",
        ),
        ("routes: [\n", "line 2: not valid YAML"),
        (
            GOOD.replace("on_resolved: run", "on_resolved: maybe"),
            "on_resolved must be ignore or run",
        ),
    ],
)
def test_bad_routes_exit_2_naming_the_line(books, capsys, text, needle):
    (books / "r.yaml").write_text(text)
    with pytest.raises(RoutesError) as exc:
        load_routes(books / "r.yaml")
    assert needle in str(exc.value)
    (books / "a.json").write_text(json.dumps(am_webhook()))
    assert (
        main(["serve", "--check-routes", str(books / "r.yaml"), "--payload", str(books / "a.json")])
        == 2
    )
    assert needle in capsys.readouterr().err


def test_check_routes_prints_route_and_parameters_and_runs_nothing(books, capsys):
    (books / "r.yaml").write_text(GOOD)
    (books / "a.json").write_text(json.dumps(am_webhook(service="ledger")))
    assert (
        main(["serve", "--check-routes", str(books / "r.yaml"), "--payload", str(books / "a.json")])
        == 0
    )
    out = capsys.readouterr().out
    assert "route 'latency' (line 2) -> triage, dry run" in out and "service = 'ledger-api'" in out
    assert (
        main(
            [
                "serve",
                "--check-routes",
                str(books / "r.yaml"),
                "--payload",
                str(books / "a.json"),
                "--json",
            ]
        )
        == 0
    )
    (item,) = json.loads(capsys.readouterr().out)
    assert item["parameters"]["dry_run"] is True and item["runs"] is True
    assert not (books / "evidence").exists()
    (books / "none.yaml").write_text("routes:\n  - source: pagerduty\n    runbook: triage\n")
    assert (
        main(
            [
                "serve",
                "--check-routes",
                str(books / "none.yaml"),
                "--payload",
                str(books / "a.json"),
            ]
        )
        == 1
    )
    assert "no route matches" in capsys.readouterr().out
