"""Routes: which alert runs which runbook, with which parameters.

A routes file is YAML::

    routes:
      - name: high-latency
        source: alertmanager            # alertmanager | sns | pagerduty
        match:                          # every key must match; a value is exact or {regex: ...}
          labels: {alertname: HighLatency, severity: {regex: "critical|page"}}
        runbook: latency-triage
        parameters:                     # JMESPath over the alert's payload
          k8s_namespace: commonLabels.namespace
          k8s_selector: "join('', ['app=', labels.app])"
        constants: {window_minutes: 30}
        on_resolved: ignore             # ignore (default) | run

The first route that matches wins. Everything is checked when the file is loaded (runbook and
parameter names, JMESPath and regex syntax, constants' types, secrets), so a typo stops
``opslib serve`` at start-up with exit 2 and the line, not at 3 a.m. when the alert fires. A
route may never set ``dry_run`` or an approval: runs from alerts are always dry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jmespath
import jmespath.exceptions
import yaml

from opslib import catalog
from opslib.core.errors import BadInputError
from opslib.serve import alertmanager, pagerduty, sns  # noqa: F401  registers the sources
from opslib.serve.alerts import Alert, AlertState, source_fields, source_names

#: parameters an alert can never set: the run stays a dry run and nobody has approved it
FORCED = {"dry_run": True}
APPROVAL_SUFFIX = "approved_by"


class RoutesError(BadInputError):
    """Raised when a routes file does not parse or names an unknown runbook, parameter or field."""


class OnResolved(StrEnum):
    IGNORE = "ignore"
    RUN = "run"


@dataclass(frozen=True)
class Matcher:
    """One condition: ``labels.<key>`` or a source field, exact or by regex (full match)."""

    key: str
    exact: str | None = None
    regex: re.Pattern[str] | None = None

    def test(self, alert: Alert) -> bool:
        if self.key.startswith("labels."):
            value = alert.labels.get(self.key[len("labels.") :])
        else:
            value = alert.fields.get(self.key)
        if value is None:
            return False
        if self.regex is not None:
            return self.regex.fullmatch(value) is not None
        return value == self.exact


@dataclass(frozen=True)
class Route:
    """One route, with the line it starts on for error messages."""

    name: str
    source: str
    runbook: str
    line: int
    match: tuple[Matcher, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)  # name -> compiled JMESPath
    expressions: Mapping[str, str] = field(default_factory=dict)  # name -> JMESPath text
    constants: Mapping[str, Any] = field(default_factory=dict)
    on_resolved: OnResolved = OnResolved.IGNORE
    info: catalog.RunbookInfo | None = field(default=None, repr=False, compare=False)

    def matches(self, alert: Alert) -> bool:
        return alert.source == self.source and all(m.test(alert) for m in self.match)


@dataclass(frozen=True)
class Decision:
    """What the router decided for one alert: a run (route, parameters) or why not."""

    alert: Alert
    route: Route | None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    skipped: str = ""  # "resolved: route ignores it", "no route matches", ...

    @property
    def runs(self) -> bool:
        return self.route is not None and not self.skipped


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings remember the line they start on."""


class _LineDict(dict):
    line = 0


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    d = _LineDict(loader.construct_mapping(node, deep=True))
    d.line = node.start_mark.line + 1
    return d


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _is_forced(name: str) -> bool:
    return name in FORCED or name.endswith(APPROVAL_SUFFIX)


def _matchers(spec: Any, source: str, where: str) -> tuple[Matcher, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, dict):
        raise RoutesError(f"{where}: 'match' must be a mapping")
    out: list[Matcher] = []
    items: list[tuple[str, Any]] = []
    for key, value in spec.items():
        if key == "labels":
            if not isinstance(value, dict):
                raise RoutesError(f"{where}: 'match.labels' must be a mapping of label: value")
            items += [(f"labels.{k}", v) for k, v in value.items()]
        elif key in source_fields(source):
            items.append((str(key), value))
        else:
            known = ", ".join(("labels", *source_fields(source)))
            raise RoutesError(f"{where}: cannot match {source} alerts on {key!r}; use {known}")
    for key, value in items:
        if isinstance(value, dict) and set(value) == {"regex"}:
            try:
                out.append(Matcher(key, regex=re.compile(str(value["regex"]))))
            except re.error as exc:
                raise RoutesError(f"{where}: bad regex for {key}: {exc}") from exc
        elif isinstance(value, str | int | float | bool):
            out.append(Matcher(key, exact=str(value)))
        else:
            raise RoutesError(f"{where}: match value of {key} must be a string or {{regex: ...}}")
    return tuple(out)


def _route(raw: Any, index: int, origin: str) -> Route:
    line = getattr(raw, "line", 0)
    where = f"{origin} line {line} (route {index + 1})"
    if not isinstance(raw, dict):
        raise RoutesError(f"{where}: a route must be a mapping")
    unknown = set(raw) - {
        "name",
        "source",
        "match",
        "runbook",
        "parameters",
        "constants",
        "on_resolved",
    }
    if unknown:
        raise RoutesError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    source = str(raw.get("source", ""))
    if source not in source_names():
        raise RoutesError(f"{where}: source must be one of {', '.join(source_names())}")
    try:
        info = catalog.resolve(str(raw.get("runbook", "")))
    except BadInputError as exc:
        raise RoutesError(f"{where}: {exc}") from exc
    exprs = raw.get("parameters") or {}
    consts = raw.get("constants") or {}
    if not isinstance(exprs, dict) or not isinstance(consts, dict):
        raise RoutesError(f"{where}: 'parameters' and 'constants' must be mappings")
    compiled: dict[str, Any] = {}
    for name in {**exprs, **consts}:
        if _is_forced(str(name)):
            raise RoutesError(
                f"{where}: a route cannot set {name}: runs started by alerts are always dry runs "
                "with no approval; approve the plan afterwards with the bundle"
            )
        if info.param(str(name)) is None:
            raise RoutesError(
                f"{where}: runbook {info.name} has no parameter {name!r}.\n{info.usage()}"
            )
    for name, expr in exprs.items():
        try:
            compiled[str(name)] = jmespath.compile(str(expr))
        except jmespath.exceptions.JMESPathError as exc:
            raise RoutesError(f"{where}: parameter {name}: bad JMESPath {expr!r}: {exc}") from exc
    try:
        constants = catalog.validate(info, dict(consts))
    except BadInputError as exc:
        raise RoutesError(f"{where}: {exc}") from exc
    try:
        on_resolved = OnResolved(str(raw.get("on_resolved", "ignore")))
    except ValueError as exc:
        raise RoutesError(f"{where}: on_resolved must be ignore or run") from exc
    return Route(
        name=str(raw.get("name") or f"route-{index + 1}"),
        source=source,
        runbook=info.name,
        line=line,
        match=_matchers(raw.get("match"), source, where),
        parameters=compiled,
        expressions={str(k): str(v) for k, v in exprs.items()},
        constants=constants,
        on_resolved=on_resolved,
        info=info,
    )


def load_routes(path: str | Path) -> tuple[Route, ...]:
    """Parse and check a routes file; RoutesError (exit 2) naming the line on any problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutesError(f"Cannot read routes file {p}: {exc}") from exc
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506  a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise RoutesError(f"{p}{at}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("routes"), list):
        raise RoutesError(f"{p}: expected a mapping with a 'routes' list")
    return tuple(_route(r, i, str(p)) for i, r in enumerate(doc["routes"]))


def resolve_parameters(route: Route, alert: Alert) -> dict[str, Any]:
    """The route's parameters for this alert: constants, then JMESPath values, then FORCED.

    An expression that finds nothing (``None``), or fails on this payload's types, leaves the
    runbook's default. The result is
    validated like ``opslib run`` input (types, secrets), raising BadInputError.
    """
    info = route.info or catalog.resolve(
        route.runbook
    )  # read once, at load: notebooks are slow to inspect
    params: dict[str, Any] = dict(route.constants)
    for name, expr in route.parameters.items():
        try:
            value = expr.search(alert.context)
        except jmespath.exceptions.JMESPathError:  # e.g. join() over a label the alert lacks
            value = None  # same as a path that finds nothing: the runbook's default applies
        if value is not None:
            params[name] = value
    params = catalog.validate(info, params)
    return force_dry(info, params)


def force_dry(info: catalog.RunbookInfo, params: Mapping[str, Any]) -> dict[str, Any]:
    """``dry_run=True`` and every ``*approved_by`` empty, whatever was given."""
    out = dict(params)
    for p in info.parameters:
        if p.name in FORCED:
            out[p.name] = FORCED[p.name]
        elif p.name.endswith(APPROVAL_SUFFIX):
            out[p.name] = ""
    return out


def decide(routes: tuple[Route, ...], alert: Alert) -> Decision:
    """The first route that matches, or why nothing runs (never raises for a non-match)."""
    route = next((r for r in routes if r.matches(alert)), None)
    if route is None:
        return Decision(alert, None, skipped="no route matches")
    if alert.state is AlertState.OTHER:
        return Decision(alert, route, skipped=f"{alert.state.value} events are recorded, not run")
    if alert.state is AlertState.RESOLVED and route.on_resolved is OnResolved.IGNORE:
        return Decision(alert, route, skipped="resolved, and the route ignores resolved alerts")
    return Decision(alert, route, resolve_parameters(route, alert))
