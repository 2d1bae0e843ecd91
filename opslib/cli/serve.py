"""``opslib serve``: the alert receiver; ``opslib serve --check-routes`` to test a routes file.

    opslib serve --routes routes.yaml [--port 8080] [--max-concurrent 2] [--executor local|kubernetes]
    opslib serve --check-routes routes.yaml --payload alert.json [--source alertmanager|sns|pagerduty]

This module composes what the receiver may not import itself: the sandbox (``--sandbox``:
its environment and the scenario presets fill the parameters an alert does not give) and the
Kubernetes Job manifest of ``opslib schedule`` (``--executor kubernetes``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

from opslib.cli import err
from opslib.core.errors import MissingExtraError

SERVE_MODULES = ("starlette", "uvicorn")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="receive alerts and run their runbooks (always dry)")
    p.add_argument("--routes", help="routes YAML: which alert runs which runbook")
    p.add_argument(
        "--check-routes", metavar="ROUTES", help="print what --payload would run; run nothing"
    )
    p.add_argument("--payload", help="with --check-routes: a saved alert payload (JSON)")
    p.add_argument(
        "--source", default="", help="with --check-routes: alertmanager, sns or pagerduty"
    )
    p.add_argument("--json", action="store_true", help="with --check-routes: JSON output")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port (printed)")
    p.add_argument("--state-dir", default=".opslib-serve", help="where alerts.sqlite lives")
    p.add_argument("--evidence-dir", default="evidence", help="directory or s3://bucket/prefix")
    p.add_argument("--max-concurrent", type=int, default=2, help="runs at once (kernels or Jobs)")
    p.add_argument("--dedup-window", type=float, default=3600.0, help="seconds a repeat is dropped")
    p.add_argument("--max-body", type=int, default=1024 * 1024, help="largest webhook body, bytes")
    p.add_argument("--timeout", type=float, default=1800.0, help="whole-run timeout, seconds")
    p.add_argument("--executor", default="local", choices=["local", "kubernetes"])
    p.add_argument("--sandbox", action="store_true", help="run against the local sandbox")
    p.add_argument("--sns-region", action="append", default=[], help="SNS region to trust (repeat)")
    p.add_argument("--sns-endpoint", default="", help="an SNS stand-in whose certificates to trust")
    p.add_argument("--sns-topic", action="append", default=[], help="accept only these topic ARNs")
    p.add_argument("--image", default="", help="kubernetes executor: the opslib image")
    p.add_argument("--namespace", default="default", help="kubernetes executor: Jobs' namespace")
    p.add_argument("--service-account", default="opslib", help="kubernetes executor: pod identity")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=cmd_serve)


def _installed(module: str) -> bool:
    """find_spec, where an import hook that refuses the module counts as not installed."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    if args.check_routes:
        return _check(args)
    if not args.routes:
        err("error: give --routes routes.yaml (or --check-routes routes.yaml --payload alert.json)")
        return 2
    missing = [m for m in SERVE_MODULES if not _installed(m)]
    if missing:
        raise MissingExtraError(
            f"opslib serve needs the [serve] extra ({', '.join(missing)} not installed): "
            "pip install 'opslib[serve]'."
        )
    from opslib.serve import server
    from opslib.serve.executors import open_executor

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(message)s")
    config = server.source_config(
        sns_regions=tuple(args.sns_region),
        sns_endpoint=args.sns_endpoint,
        sns_topics=tuple(args.sns_topic),
    )
    if args.executor == "kubernetes":
        executor = _kubernetes_executor(args)
    else:
        env, defaults_for = _sandbox(args) if args.sandbox else ({}, lambda _rb: {})
        executor = open_executor(
            "local",
            evidence_dir=args.evidence_dir,
            env=env,
            defaults_for=defaults_for,
            timeout=args.timeout,
        )
    service = server.build_service(
        routes_path=args.routes,
        state_dir=args.state_dir,
        executor=executor,
        config=config,
        max_concurrent=args.max_concurrent,
        dedup_window_s=args.dedup_window,
        max_body=args.max_body,
    )
    server.serve(
        service,
        host=args.host,
        port=args.port,
        announce=lambda s: print(s, flush=True),
        log_level=args.log_level,
    )
    return 0


def _sandbox(args: argparse.Namespace):
    """The sandbox's environment (set in this process too) and its presets per runbook."""
    from opslib import sandbox as sb

    sb.require_extra()
    info = sb.up()
    env = sb.env_vars(info)
    # Concurrent runs each set and restore these around their run; having them set for the
    # whole process makes those restores no-ops instead of a race between runs.
    os.environ.update(env)
    return env, lambda runbook: sb.presets(runbook) or {}


def _kubernetes_executor(args: argparse.Namespace):
    from opslib.clients import k8s_api
    from opslib.schedule.kubernetes import DEFAULT_IMAGE, job_builder
    from opslib.serve.executors import open_executor

    build = job_builder(
        evidence_dir=args.evidence_dir,
        image=args.image or DEFAULT_IMAGE,
        service_account=args.service_account,
        timeout=args.timeout,
    )
    return open_executor(
        "kubernetes",
        build=build,
        api=k8s_api,
        namespace=args.namespace,
        evidence_dir=args.evidence_dir,
    )


def _check(args: argparse.Namespace) -> int:
    from opslib.serve.check import check_routes

    if not args.payload:
        err("error: --check-routes needs --payload alert.json")
        return 2
    result = check_routes(Path(args.check_routes), Path(args.payload), source=args.source)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print("\n".join(result.lines()))
    return 0 if any(d.route is not None for d in result.decisions) else 1
