"""``opslib run``: one runbook headless, its bundle path as the last line printed."""

from __future__ import annotations

import argparse

from opslib.api import run
from opslib.cli import err
from opslib.runner import RunResult


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a runbook headless and write its evidence bundle")
    p.add_argument("runbook", help="a name from `opslib list` or a path to a .ipynb")
    p.add_argument(
        "-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter"
    )
    p.add_argument("-f", "--param-file", help="YAML file of parameters (-p values override it)")
    p.add_argument("--evidence-dir", default="evidence", help="directory or s3://bucket/prefix")
    p.add_argument(
        "--sandbox", action="store_true", help="run against the local sandbox (started if needed)"
    )
    p.add_argument("--timeout", type=float, default=None, help="whole-run timeout in seconds")
    p.set_defaults(func=cmd_run)


def print_summary(result: RunResult) -> None:
    """Status, error, HTML path, then the bundle path last (scripts ``tail -n1``)."""
    rec = result.record or {}
    print(f"{rec.get('runbook', '?')}: {result.status} (exit {result.exit_code})")
    error = rec.get("error")
    if error:
        where = f" in cell {error['cell_index']}" if error.get("cell_index") is not None else ""
        print(f"error{where}: {error.get('ename', '')}: {error.get('evalue', '')}")
    if rec.get("evidence_store_error"):
        err(f"warning: {rec['evidence_store_error']}; bundle kept locally instead")
    if result.html:
        print(f"html: {result.html}")
    print(result.bundle, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    params = {name: value for name, value in (args.param or [])}
    try:
        result = run(
            args.runbook,
            params,
            evidence_dir=args.evidence_dir,
            sandbox=args.sandbox,
            timeout=args.timeout,
            param_file=args.param_file,
        )
    except KeyboardInterrupt:
        err("interrupted before the runbook started; nothing ran")
        return 130
    print_summary(result)
    return result.exit_code
