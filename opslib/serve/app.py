"""The HTTP face of the receiver (Starlette on uvicorn): intake, health, recent runs.

``POST /alerts/<source>`` answers at once: the body is read up to ``max_body`` bytes (413
beyond), the source's parser authenticates and decodes it (4xx with the reason, nothing
stored), routes decide, and the alerts are written to SQLite before the 202. Running is the
dispatcher's job, in the background. ``GET /healthz`` and ``GET /runs`` read the store.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as HttpRoute

from opslib.core.errors import BadInputError
from opslib.core.redact import Redactor
from opslib.serve import alertmanager, pagerduty, sns  # noqa: F401  registers the sources
from opslib.serve.alerts import Delivery, Intake, Rejected, SourceConfig, get_source
from opslib.serve.dispatch import Dispatcher
from opslib.serve.routes import Decision, Route, decide
from opslib.serve.store import AlertStore

log = logging.getLogger("opslib.serve")
#: default bound on a webhook body: Alertmanager groups of a few hundred alerts fit
MAX_BODY = 1024 * 1024


@dataclass
class Service:
    """Everything a request needs: routes, sender config, store, dispatcher, limits."""

    routes: tuple[Route, ...]
    config: SourceConfig
    store: AlertStore
    dispatcher: Dispatcher
    max_body: int = MAX_BODY
    redactor: Redactor = field(default_factory=Redactor)
    rejected: Counter = field(default_factory=Counter)
    duplicates: int = 0

    def intake(self, source: str, delivery: Delivery) -> tuple[int, dict[str, Any]]:
        """Authenticate, route and persist one webhook; (HTTP status, answer). Runs nothing."""
        parser = get_source(source)
        if parser is None:
            self.rejected["404"] += 1
            return 404, {"error": f"unknown alert source {source!r}"}
        try:
            intake: Intake = parser(delivery, self.config)
            decisions = [decide(self.routes, a) for a in intake.alerts]
        except Rejected as exc:
            self.rejected[str(exc.status)] += 1
            return exc.status, {"error": exc.reason}
        except BadInputError as exc:  # a mapped value of the wrong type, a secret in the payload
            self.rejected["422"] += 1
            return 422, {"error": f"the alert's parameters are not valid: {exc}"}
        if not intake.alerts:
            return 200, {"note": intake.note or "nothing to run"}
        routed = [d for d in decisions if d.route is not None]
        if not routed:
            self.rejected["422"] += 1
            names = ", ".join(sorted({d.alert.name or "?" for d in decisions}))
            return 422, {"error": f"no route matches alert(s) {names}; nothing run"}
        # the redacted payload goes into new rows only: a duplicate (most of a burst) skips it
        raw = functools.cache(lambda: self.redactor.obj(_json_or_text(delivery.body)))
        outcomes = self.store.accept([self._row(d, raw) for d in routed])
        self.dispatcher.wake()
        answer: dict[str, Any] = {"accepted": [], "duplicates": [], "ignored": [], "unrouted": []}
        for d, (kind, row_id) in zip(routed, outcomes, strict=True):
            key = {"accepted": "accepted", "duplicate": "duplicates", "ignored": "ignored"}[kind]
            answer[key].append({"id": row_id, "alert": d.alert.name, "runbook": d.route.runbook})
            self.duplicates += kind == "duplicate"
        answer["unrouted"] = [d.alert.name for d in decisions if d.route is None]
        return 202, answer

    def _row(self, d: Decision, raw: Callable[[], Any]) -> dict[str, Any]:
        assert d.route is not None
        route = d.route.name

        def trigger() -> dict[str, Any]:
            return {**d.alert.trigger(), "route": route, "payload": raw()}

        return {
            "dedup_key": d.alert.dedup_key,
            "source": d.alert.source,
            "route": d.route.name,
            "runbook": d.route.runbook,
            "parameters": dict(d.parameters),
            "trigger": trigger,
            "skipped": d.skipped,
            "executor": self.dispatcher.executor.name,
        }


def _json_or_text(body: bytes) -> Any:
    import json

    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(service: Service) -> Starlette:
    """The ASGI app over ``service`` (the dispatcher is started by the caller)."""

    async def alerts(request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        source = request.path_params["source"]
        try:
            body = await _read_body(request, service.max_body)
        except Rejected as exc:
            service.rejected[str(exc.status)] += 1
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        delivery = Delivery(body=body, headers={k.lower(): v for k, v in request.headers.items()})
        status, answer = await run_in_threadpool(service.intake, source, delivery)
        if status >= 400:
            log.warning("rejected %s webhook: %s %s", source, status, answer.get("error"))
        # the receiver's own time (read, verify, route, fsync), for benchmarks and dashboards
        timing = {"Server-Timing": f"intake;dur={(time.perf_counter() - t0) * 1000:.2f}"}
        return JSONResponse(answer, status_code=status, headers=timing)

    async def healthz(_request: Request) -> JSONResponse:
        counts = await run_in_threadpool(service.store.counts)
        return JSONResponse(
            {
                "ok": True,
                "executor": service.dispatcher.executor.name,
                "max_concurrent": service.dispatcher.max_concurrent,
                "active": service.dispatcher.active,
                "alerts": counts,
                "rejected": dict(service.rejected),
                "duplicates": service.duplicates,
                "routes": len(service.routes),
            }
        )

    async def runs(request: Request) -> JSONResponse:
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return JSONResponse({"error": "limit must be an integer"}, status_code=400)
        return JSONResponse(await run_in_threadpool(service.store.recent, limit))

    return Starlette(
        routes=[
            HttpRoute("/alerts/{source}", alerts, methods=["POST"]),
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/runs", runs, methods=["GET"]),
        ]
    )
