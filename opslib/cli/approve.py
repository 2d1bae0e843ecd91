"""``opslib approve BUNDLE --by NAME``: approve a dry run's plan later; it applies only if unchanged."""

from __future__ import annotations

import argparse
import functools

from opslib.approvals import approve, load_dry_run
from opslib.cli.run import print_summary
from opslib.runner import run as run_headless


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "approve",
        help="approve the plan of a dry run's bundle; re-runs it and applies if the plan is unchanged",
    )
    p.add_argument("bundle", help="the dry run's bundle (path or s3:// URL)")
    p.add_argument(
        "--by", required=True, help="who approves (recorded with the time and plan digest)"
    )
    p.add_argument("--ticket", default="", help="change/incident ticket, e.g. INC-42")
    p.add_argument(
        "--require-approvers",
        type=int,
        default=None,
        help="distinct approvers the change needs (2: the two-person rule); default OPSLIB_REQUIRE_APPROVERS or 1",
    )
    p.add_argument(
        "--evidence-dir",
        default=None,
        help="where the approved run's bundle goes (default: beside the dry run)",
    )
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="run against the local sandbox (default: as the dry run did)",
    )
    p.add_argument("--timeout", type=float, default=None, help="whole-run timeout in seconds")
    p.set_defaults(func=cmd_approve)


def _runner(sandbox: bool):
    if not sandbox:
        return run_headless
    from opslib.sandbox.extra import require_extra

    require_extra()
    from opslib.sandbox.runs import run_on_sandbox

    return functools.partial(run_on_sandbox, use_presets=False)


def cmd_approve(args: argparse.Namespace) -> int:
    dry = load_dry_run(args.bundle)
    sandbox = args.sandbox or bool(dry.record.get("sandbox"))
    outcome = approve(
        args.bundle,
        by=args.by,
        ticket=args.ticket,
        require_approvers=args.require_approvers,
        run=_runner(sandbox),
        evidence_dir=args.evidence_dir,
        timeout=args.timeout,
    )
    for note in outcome.notes:
        print(note)
    if outcome.result is not None:
        print_summary(outcome.result)
    return outcome.exit_code
