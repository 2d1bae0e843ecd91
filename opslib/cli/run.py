"""``opslib run``: one runbook headless, its bundle path as the last line printed.

Exit codes a scheduler can act on: 0 succeeded, 1 the runbook failed, 2 bad input or refused
(not worth retrying), 3 findings at or above ``--fail-on SEVERITY``, 4 infrastructure error
(kernel died, evidence store unreachable: worth retrying). ``--result-json PATH`` writes the
record summary (status, exit code and why, bundle, results) for the scheduler's next step.
"""

from __future__ import annotations

import argparse

from opslib.api import run
from opslib.cli import err
from opslib.core.errors import OpslibError
from opslib.runner import RunResult
from opslib.schedule.exits import SEVERITIES, exit_code, summary, write_summary


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
    p.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="",
        help="exit 3 when the run records a finding at or above this severity",
    )
    p.add_argument(
        "--result-json", help="write the record summary (status, exit code, bundle) here"
    )
    p.add_argument(
        "--object-lock-mode",
        choices=("COMPLIANCE", "GOVERNANCE"),
        type=str.upper,
        default=None,
        help="s3:// evidence only: lock every object of the bundle (default OPSLIB_OBJECT_LOCK_MODE); "
        "a bucket without Object Lock is refused with exit 2",
    )
    p.add_argument(
        "--retention-days",
        type=int,
        default=None,
        help="days the locked bundle cannot be deleted or overwritten (default OPSLIB_RETENTION_DAYS)",
    )
    p.add_argument(
        "--max-output-mb",
        type=float,
        default=None,
        help="bound on one cell output in the notebook; larger ones move to attachments "
        "(default OPSLIB_MAX_OUTPUT_MB or 20)",
    )
    p.add_argument(
        "--require-approvers",
        type=int,
        default=None,
        help="distinct approvers a change needs (2: the two-person rule; default OPSLIB_REQUIRE_APPROVERS or 1)",
    )
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
            object_lock_mode=args.object_lock_mode,
            retention_days=args.retention_days,
            max_output_mb=args.max_output_mb,
            require_approvers=args.require_approvers,
        )
    except KeyboardInterrupt:
        err("interrupted before the runbook started; nothing ran")
        return 130
    except OpslibError as exc:
        if args.result_json:  # the next step still learns why nothing ran
            code = exc.exit_code if exc.exit_code == 2 else 4
            write_summary(args.result_json, {**summary(None, code=code, why=str(exc), bundle=None)})
        raise
    print_summary(result)
    code, why = exit_code(result.record, result.exit_code, fail_on=args.fail_on)
    if code != result.exit_code:
        print(f"exit {code}: {why}")
        print(result.bundle, flush=True)  # the bundle path stays the last line
    if args.result_json:
        write_summary(
            args.result_json, summary(result.record, code=code, why=why, bundle=result.bundle)
        )
    return int(code)
