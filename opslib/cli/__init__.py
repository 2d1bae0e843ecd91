"""The ``opslib`` command: parses arguments, calls the Python API, prints. No logic of its own.

    opslib list
    opslib run RUNBOOK [-p NAME VALUE]... [-f params.yaml] [--evidence-dir DIR] [--sandbox] [--timeout S]
    opslib evidence verify PATH
    opslib evidence list [DIR]
    opslib sandbox up|down|status|env|seed [NAME...]
    opslib demo [--evidence-dir DIR]   (every runbook dry-run, then the scenarios' approved demo runs)

Exit codes: 0 success, 1 a runbook failed (or was interrupted / timed out), 2 bad input.
``run`` prints the bundle path as its last line, so scripts can ``tail -n1``.

Each subcommand is a module of this package with ``register(subparsers)`` (a registry, not
a branch): a new command is a new module. Modules are registered in :data:`COMMANDS` order.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from opslib.core.errors import OpslibError
from opslib.core.fast_exit import exit_now

#: subcommand modules, in the order `opslib --help` lists them
COMMANDS = (
    "catalog",
    "run",
    "evidence",
    "approve",
    "incident",
    "sandbox",
    "demo",
    "serve",
    "schedule",
)


def err(msg: str) -> None:
    """Print to stderr at once (progress and warnings; stdout is for results)."""
    print(msg, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opslib", description="SRE runbooks as notebooks, with evidence."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OpslibError as exc:
        err(f"error: {exc}")
        return exc.exit_code


def entry_point() -> None:
    """The ``opslib`` console script: :func:`main`, then exit without the interpreter's
    teardown (:func:`opslib.core.fast_exit.exit_now`: 0.6-0.9 s after a run, for nothing)."""
    exit_now(main())
