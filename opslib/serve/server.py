"""``opslib serve`` as a Python API: load and check routes, open the store, start the pool,
serve HTTP (Starlette on uvicorn, the ``[serve]`` extra).

The command line (``opslib.cli.serve``) only parses arguments and composes in what this
package may not import (the sandbox's environment, the scheduler's Job manifest).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from opslib.core import runtime
from opslib.serve.alerts import SourceConfig
from opslib.serve.app import MAX_BODY, Service, create_app
from opslib.serve.dispatch import Dispatcher
from opslib.serve.executors import Executor
from opslib.serve.routes import load_routes
from opslib.serve.store import AlertStore

log = logging.getLogger("opslib.serve")

#: environment variables holding the senders' secrets (never a flag or a file the repo holds)
ALERTMANAGER_TOKENS_ENV = runtime.SERVE_ALERTMANAGER_TOKENS_ENV
PAGERDUTY_SECRETS_ENV = runtime.SERVE_PAGERDUTY_SECRETS_ENV


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.replace(",", " ").split() if v)


def source_config(
    *,
    sns_regions: tuple[str, ...] = (),
    sns_endpoint: str = "",
    sns_topics: tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
) -> SourceConfig:
    """Sender authentication from the environment; SNS regions default to the AWS region."""
    env = os.environ if environ is None else environ
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    return SourceConfig(
        alertmanager_tokens=_split(env.get(ALERTMANAGER_TOKENS_ENV, "")),
        pagerduty_secrets=_split(env.get(PAGERDUTY_SECRETS_ENV, "")),
        sns_regions=sns_regions or ((region,) if region else ()),
        sns_endpoint=sns_endpoint,
        sns_topics=sns_topics,
    )


def build_service(
    *,
    routes_path: str | Path,
    state_dir: str | Path,
    executor: Executor,
    config: SourceConfig,
    max_concurrent: int = 2,
    dedup_window_s: float = 3600.0,
    max_body: int = MAX_BODY,
) -> Service:
    """Routes checked (exit 2 on a bad file), store opened, dispatcher built (not started)."""
    routes = load_routes(routes_path)
    store = AlertStore(state_dir, dedup_window_s=dedup_window_s)
    dispatcher = Dispatcher(store, executor, max_concurrent=max_concurrent)
    return Service(
        routes=routes, config=config, store=store, dispatcher=dispatcher, max_body=max_body
    )


def serve(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    announce: Callable[[str], None] = print,
    log_level: str = "warning",
) -> None:
    """Start the dispatcher (replaying what a previous process left), then serve until stopped."""
    import uvicorn

    recovered = service.dispatcher.start()
    sock = socket.create_server((host, port), reuse_port=False)
    # Accepted connections inherit this (Linux): without it, Nagle holds the second segment of
    # each keep-alive response until the client's delayed ACK, ~40 ms added to every 202.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bound = sock.getsockname()[1]
    announce(
        f"opslib serve: listening on http://{host}:{bound} ({len(service.routes)} routes, "
        f"executor {service.dispatcher.executor.name}, max {service.dispatcher.max_concurrent} "
        f"concurrent, {recovered} run(s) resumed); runs from alerts are always dry"
    )
    config = uvicorn.Config(create_app(service), log_level=log_level, access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        service.dispatcher.stop()
        sock.close()
