"""``opslib schedule kubernetes|argo RUNBOOK``: print the manifest that runs a runbook on a schedule.

    opslib schedule kubernetes RUNBOOK --cron "0 7 * * *" -f params.yaml --evidence-dir s3://b/p [--job]
    opslib schedule argo RUNBOOK [--cron ...] -f params.yaml [--evidence-dir s3://b/p]

Parameters are checked as ``opslib run`` checks them (exit 2 on a bad value or a secret)
before anything is printed; apply the output with ``kubectl apply -f -``.
"""

from __future__ import annotations

import argparse

import yaml

from opslib import schedule
from opslib.core.errors import BadInputError
from opslib.schedule import argo, kubernetes
from opslib.schedule.exits import SEVERITIES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedule", help="print a Kubernetes CronJob/Job or Argo workflow manifest")
    p.add_argument("target", choices=["kubernetes", "argo"])
    p.add_argument("runbook", help="a name from `opslib list`")
    p.add_argument("--cron", default="", help='five-field schedule, e.g. "0 7 * * *"')
    p.add_argument("--job", action="store_true", help="kubernetes: a one-off Job, not a CronJob")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"))
    p.add_argument("-f", "--param-file", help="YAML file of parameters (-p values override it)")
    p.add_argument(
        "--evidence-dir", default="", help="s3://bucket/prefix (required for kubernetes)"
    )
    p.add_argument("--image", default=kubernetes.DEFAULT_IMAGE)
    p.add_argument("--name", default="", help="resource name (default opslib-RUNBOOK)")
    p.add_argument("--namespace", default="")
    p.add_argument("--service-account", default="opslib", help="ServiceAccount (IRSA role)")
    p.add_argument("--timeout", type=float, default=3600.0, help="the run's timeout, seconds")
    p.add_argument("--fail-on", default="", choices=["", *SEVERITIES])
    p.add_argument("--retries", type=int, default=2, help="backoffLimit / retryStrategy.limit")
    p.add_argument(
        "--starting-deadline", type=int, default=300, help="seconds a late start may run"
    )
    p.add_argument("--time-zone", default="", help="IANA zone for --cron (default: the cluster's)")
    p.set_defaults(func=cmd_schedule)


def cmd_schedule(args: argparse.Namespace) -> int:
    given = {name: value for name, value in (args.param or [])}
    name, params = schedule.parameters(args.runbook, given, param_file=args.param_file)
    common = {
        "cron": "" if args.job else args.cron,
        "image": args.image,
        "name": args.name,
        "namespace": args.namespace,
        "service_account": args.service_account,
        "timeout": args.timeout,
        "fail_on": args.fail_on,
        "starting_deadline_s": args.starting_deadline,
        "time_zone": args.time_zone,
    }
    if args.target == "kubernetes":
        if not args.cron and not args.job:
            raise BadInputError('Give --cron "m h dom mon dow" for a CronJob, or --job for a Job.')
        docs = kubernetes.manifests(
            name, params, evidence_dir=args.evidence_dir, backoff_limit=args.retries, **common
        )
    else:
        docs = argo.manifests(
            name, params, evidence_dir=args.evidence_dir, retries=args.retries, **common
        )
    print(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True), end="")
    return 0
