"""``opslib evidence verify|list``: check bundles and their chain; list runs."""

from __future__ import annotations

import argparse

from opslib.evidence.collect import format_table, list_runs
from opslib.evidence.manifest import verify


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evidence", help="verify or list evidence bundles")
    esub = p.add_subparsers(dest="evidence_command", required=True)
    e = esub.add_parser(
        "verify", help="re-check the hashes and the chain link of a bundle or evidence dir"
    )
    e.add_argument("path")
    e.set_defaults(func=cmd_verify)
    e = esub.add_parser("list", help="table of runs in an evidence dir")
    e.add_argument("dir", nargs="?", default="evidence")
    e.set_defaults(func=cmd_list)


def cmd_verify(args: argparse.Namespace) -> int:
    result = verify(args.path)
    print(result)
    return 0 if result.ok else 1


def cmd_list(args: argparse.Namespace) -> int:
    rows = list_runs(args.dir)
    print(format_table(rows, ["runbook", "started", "status", "operator", "key_results", "bundle"]))
    return 0
