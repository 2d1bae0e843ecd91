"""``opslib serve --check-routes``: which route a saved payload matches, and the parameters
it would pass, without running anything (and without the HTTP server's libraries).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opslib.core.errors import BadInputError
from opslib.serve import alertmanager, pagerduty, sns  # noqa: F401  registers the sources
from opslib.serve.alerts import Delivery, Rejected, SourceConfig, get_source, source_names
from opslib.serve.routes import Decision, decide, load_routes


def guess_source(payload: Any) -> str:
    if isinstance(payload, dict):
        if "alerts" in payload:
            return "alertmanager"
        if "AlarmName" in payload or payload.get("Type") in {
            "Notification",
            "SubscriptionConfirmation",
        }:
            return "sns"
        if isinstance(payload.get("event"), dict):
            return "pagerduty"
    raise BadInputError(
        "Cannot tell which source sent this payload; give --source alertmanager|sns|pagerduty."
    )


@dataclass(frozen=True)
class CheckResult:
    """What ``--check-routes`` found for each alert of a payload."""

    source: str
    decisions: tuple[Decision, ...]

    def lines(self) -> list[str]:
        out = []
        for d in self.decisions:
            head = f"{d.alert.source} alert {d.alert.name!r} ({d.alert.state.value})"
            if d.route is None:
                out.append(f"{head}: no route matches; nothing would run")
                continue
            where = f"route {d.route.name!r} (line {d.route.line}) -> {d.route.runbook}"
            if d.skipped:
                out.append(f"{head}: {where}: not run: {d.skipped}")
                continue
            out.append(f"{head}: {where}, dry run, parameters:")
            out += [f"  {k} = {v!r}" for k, v in sorted(d.parameters.items())]
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "alert": d.alert.trigger(),
                "route": d.route.name if d.route else None,
                "line": d.route.line if d.route else None,
                "runbook": d.route.runbook if d.route else None,
                "parameters": dict(d.parameters),
                "runs": d.runs,
                "skipped": d.skipped,
            }
            for d in self.decisions
        ]


def check_routes(
    routes_path: str | Path, payload_path: str | Path, *, source: str = ""
) -> CheckResult:
    """Which route each alert of a saved payload matches and the parameters it would pass.

    Signatures are not checked (a saved payload is not a live delivery) and nothing runs.
    """
    routes = load_routes(routes_path)
    try:
        body = Path(payload_path).read_bytes()
        payload = json.loads(body)
    except (OSError, ValueError) as exc:
        raise BadInputError(f"Cannot read payload {payload_path}: {exc}") from exc
    source = source or guess_source(payload)
    parser = get_source(source)
    if parser is None:
        raise BadInputError(f"Unknown source {source!r}; use one of {', '.join(source_names())}.")
    try:
        intake = parser(Delivery(body=body, headers={}), SourceConfig(verify=False))
    except Rejected as exc:
        raise BadInputError(
            f"Payload {payload_path} is not a {source} alert: {exc.reason}"
        ) from exc
    return CheckResult(source, tuple(decide(routes, a) for a in intake.alerts))
