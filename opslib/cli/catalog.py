"""``opslib list``: every runbook with its purpose and parameters, read from the notebooks."""

from __future__ import annotations

import argparse
import json

from opslib.catalog import list_runbooks, notebooks_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list runbooks with their purpose and parameters")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    books = list_runbooks()
    if args.json:
        print(json.dumps([b.to_dict() for b in books], indent=2, default=str))
        return 0
    if not books:
        print(f"no runbooks in {notebooks_dir()}")
        return 0
    for b in books:
        print(f"{b.name}: {b.purpose}")
        for p in b.parameters:
            print(f"    {p.name}: {p.type or '?'} = {p.default!r}  # {p.help}")
        print()
    return 0
