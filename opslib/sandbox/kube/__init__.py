"""The sandbox's Kubernetes API emulator, which the real kubectl and the official client read.

``server`` (the store and HTTP dispatch), ``discovery`` (what ``kubectl api-resources`` lists),
``tables`` (``kubectl get`` columns), ``controller`` (Deployments -> ReplicaSets -> pods, with
revisions) and ``selectors`` (label/field selectors, patches).

Run as ``python -m opslib.sandbox.kube --port 0 --state DIR``; the bound port is written
to ``DIR/port`` once the server accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from opslib.sandbox.kube.selectors import (
    SelectorError,
    match_fields,
    match_labels,
    merge_patch,
    strategic_merge_patch,
)
from opslib.sandbox.kube.server import (
    LOG_ANNOTATION,
    RESOURCES,
    SandboxKube,
    parse_resource_path,
    serve,
    write_kubeconfig,
)

__all__ = [
    "LOG_ANNOTATION",
    "RESOURCES",
    "SandboxKube",
    "SelectorError",
    "main",
    "match_fields",
    "match_labels",
    "merge_patch",
    "parse_resource_path",
    "serve",
    "strategic_merge_patch",
    "write_kubeconfig",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m opslib.sandbox.kube",
        description="The opslib sandbox's Kubernetes API emulator.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state", required=True, type=Path, help="dir for objects.json and port")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.state))
