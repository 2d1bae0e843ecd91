"""``opslib sandbox up|down|status|env|seed``: the local stack on 127.0.0.1."""

from __future__ import annotations

import argparse
import logging
import sys

from opslib import sandbox as sb
from opslib.cli import err


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="the local sandbox: up, down, status, env, seed")
    p.add_argument("action", choices=["up", "down", "status", "env", "seed"])
    p.add_argument("names", nargs="*", help="scenarios for `seed` (default: all)")
    p.add_argument("--state-dir", default=None, help="default: $OPSLIB_SANDBOX_DIR or ./.sandbox")
    p.add_argument("--no-seed", action="store_true", help="up: do not seed the demo incident")
    p.set_defaults(func=cmd_sandbox)


def cmd_sandbox(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.action == "up":
        print(sb.describe(sb.up(args.state_dir, seed=not args.no_seed)))
    elif args.action == "down":
        stopped = sb.down(args.state_dir)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    elif args.action == "seed":
        sb.require_extra()
        failed = False
        for name, error in sb.seed(args.names or None, args.state_dir).items():
            failed |= bool(error)
            print(f"{name}: {'ok' if not error else 'FAILED ' + error}")
        return 1 if failed else 0
    else:
        info = sb.status(args.state_dir)
        if info is None:
            err(
                f"no sandbox running in {sb.resolve_state_dir(args.state_dir)}; start one: opslib sandbox up"
            )
            return 1
        print(sb.format_env(info) if args.action == "env" else sb.describe(info))
    return 0
