"""``opslib demo``: start the sandbox, run every runbook on it, print the bundles."""

from __future__ import annotations

import argparse

from opslib.cli import err
from opslib.evidence.collect import format_table
from opslib.sandbox.demo import run_demo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="start the sandbox and run every runbook on it")
    p.add_argument("--evidence-dir", default="evidence", help="directory or s3://bucket/prefix")
    p.add_argument("--timeout", type=float, default=600, help="per-runbook timeout in seconds")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    rows = run_demo(evidence_dir=args.evidence_dir, timeout=args.timeout)
    if not rows:
        err("no runbooks found in notebooks/")
        return 1
    print(format_table([r.to_dict() for r in rows], ["runbook", "status", "html"]))
    return 0 if all(r.status == "succeeded" for r in rows) else 1
