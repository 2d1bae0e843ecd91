"""The ``opslib`` command: parses arguments, calls the Python API, prints. No logic of its own.

    opslib list
    opslib run RUNBOOK [-p NAME VALUE]... [-f params.yaml] [--evidence-dir DIR] [--sandbox] [--timeout S]
    opslib evidence verify PATH
    opslib evidence list [DIR]
    opslib sandbox up|down|status|env|seed [NAME...]
    opslib demo [--evidence-dir DIR]   (every runbook dry-run, then the scenarios' approved demo runs)

Exit codes: 0 success, 1 a runbook failed (or was interrupted / timed out), 2 bad input.
``run`` prints the bundle path as its last line, so scripts can ``tail -n1``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from opslib.core.errors import OpslibError


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_list(args: argparse.Namespace) -> int:
    from opslib.catalog import list_runbooks, notebooks_dir

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


def _run_summary(result: Any) -> None:
    rec = result.record or {}
    print(f"{rec.get('runbook', '?')}: {result.status} (exit {result.exit_code})")
    err = rec.get("error")
    if err:
        where = f" in cell {err['cell_index']}" if err.get("cell_index") is not None else ""
        print(f"error{where}: {err.get('ename', '')}: {err.get('evalue', '')}")
    if rec.get("evidence_store_error"):
        _err(f"warning: {rec['evidence_store_error']}; bundle kept locally instead")
    if result.html:
        print(f"html: {result.html}")
    print(result.bundle, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from opslib.api import run

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
        _err("interrupted before the runbook started; nothing ran")
        return 130
    _run_summary(result)
    return result.exit_code


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    from opslib.evidence.manifest import verify

    result = verify(args.path)
    print(result)
    return 0 if result.ok else 1


def cmd_evidence_list(args: argparse.Namespace) -> int:
    from opslib.evidence.collect import format_table, list_runs

    rows = list_runs(args.dir)
    print(format_table(rows, ["runbook", "started", "status", "operator", "key_results", "bundle"]))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    import logging

    from opslib import sandbox as sb

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.action == "up":
        print(sb.describe(sb.up(args.state_dir, seed=not args.no_seed)))
    elif args.action == "down":
        stopped = sb.down(args.state_dir)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    elif args.action == "seed":
        failed = False
        for name, err in sb.seed(args.names or None, args.state_dir).items():
            failed |= bool(err)
            print(f"{name}: {'ok' if not err else 'FAILED ' + err}")
        return 1 if failed else 0
    else:
        info = sb.status(args.state_dir)
        if info is None:
            _err(
                f"no sandbox running in {sb.resolve_state_dir(args.state_dir)}; start one: opslib sandbox up"
            )
            return 1
        print(sb.format_env(info) if args.action == "env" else sb.describe(info))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the sandbox, run every runbook headless on it, print the bundles."""
    from opslib.evidence.collect import format_table
    from opslib.sandbox.demo import run_demo

    rows = run_demo(evidence_dir=args.evidence_dir, timeout=args.timeout)
    if not rows:
        _err("no runbooks found in notebooks/")
        return 1
    print(format_table([r.to_dict() for r in rows], ["runbook", "status", "html"]))
    return 0 if all(r.status == "succeeded" for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opslib", description="SRE runbooks as notebooks, with evidence."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list runbooks with their purpose and parameters")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

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

    p = sub.add_parser("evidence", help="verify or list evidence bundles")
    esub = p.add_subparsers(dest="evidence_command", required=True)
    e = esub.add_parser(
        "verify", help="re-check the hashes and the chain link of a bundle or evidence dir"
    )
    e.add_argument("path")
    e.set_defaults(func=cmd_evidence_verify)
    e = esub.add_parser("list", help="table of runs in an evidence dir")
    e.add_argument("dir", nargs="?", default="evidence")
    e.set_defaults(func=cmd_evidence_list)

    p = sub.add_parser("sandbox", help="the local sandbox: up, down, status, env, seed")
    p.add_argument("action", choices=["up", "down", "status", "env", "seed"])
    p.add_argument("names", nargs="*", help="scenarios for `seed` (default: all)")
    p.add_argument("--state-dir", default=None, help="default: $OPSLIB_SANDBOX_DIR or ./.sandbox")
    p.add_argument("--no-seed", action="store_true", help="up: do not seed the demo incident")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("demo", help="start the sandbox and run every runbook on it")
    p.add_argument("--evidence-dir", default="evidence", help="directory or s3://bucket/prefix")
    p.add_argument("--timeout", type=float, default=600, help="per-runbook timeout in seconds")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OpslibError as exc:
        _err(f"error: {exc}")
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
