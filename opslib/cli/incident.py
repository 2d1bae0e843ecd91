"""``opslib incident report TICKET``: the timeline of every run of an incident, for the post-mortem."""

from __future__ import annotations

import argparse
from pathlib import Path

from opslib.incident import report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("incident", help="incident timelines from the evidence")
    isub = p.add_subparsers(dest="incident_command", required=True)
    r = isub.add_parser("report", help="every run of TICKET in time order, as Markdown or HTML")
    r.add_argument("ticket", help="change ticket or alert id, e.g. INC-42")
    r.add_argument("--evidence-dir", default="evidence", help="directory or s3://bucket/prefix")
    r.add_argument("--format", default="md", choices=["md", "html"])
    r.add_argument(
        "--metric", default="", help="result to chart across runs (default: p99_ms, ...)"
    )
    r.add_argument(
        "-o", "--out", default="", help="write to this file (md: the chart beside it as .png)"
    )
    r.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    chart = ""
    if args.out and args.format == "md":
        chart = str(Path(args.out).with_suffix(".png"))
    text = report(
        args.ticket,
        evidence_dir=args.evidence_dir,
        fmt=args.format,
        metric=args.metric,
        chart_path=chart,
    )
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(args.out)
    else:
        print(text)
    return 0
