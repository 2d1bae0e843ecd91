"""``python -m opslib.sandbox up|down|status|env|seed [--state-dir DIR]``: a dev shortcut.

The user-facing command is ``opslib sandbox ...`` (opslib/cli.py); this one needs nothing
but the package, so it works while the CLI is being changed.
"""

from __future__ import annotations

import argparse
import logging
import sys

from opslib import sandbox as sb
from opslib.core.errors import OpslibError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opslib.sandbox")
    parser.add_argument("command", choices=["up", "down", "status", "env", "seed"])
    parser.add_argument("names", nargs="*", help="scenarios for `seed` (default: all)")
    parser.add_argument(
        "--state-dir", default=None, help="default: $OPSLIB_SANDBOX_DIR or ./.sandbox"
    )
    parser.add_argument("--no-seed", action="store_true", help="up: do not seed the scenarios")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.command == "up":
            print(sb.describe(sb.up(args.state_dir, seed=not args.no_seed)))
        elif args.command == "down":
            stopped = sb.down(args.state_dir)
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        elif args.command == "seed":
            for name, err in sb.seed(args.names or None, args.state_dir).items():
                print(f"{name}: {'ok' if not err else 'FAILED ' + err}")
        else:
            info = sb.status(args.state_dir)
            if info is None:
                print(f"no sandbox in {sb.resolve_state_dir(args.state_dir)}", file=sys.stderr)
                return 1
            print(sb.format_env(info) if args.command == "env" else sb.describe(info))
    except OpslibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
