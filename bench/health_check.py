"""Benchmark: the health check's fan-out, 10x the resources against the same runbook at 1x.

The morning check must not slow down in step with the estate: on the sandbox, the flow's
``check()`` over 50 ECS services, 200 SQS queues and 100 CloudWatch alarms must take at most
3x the same check over 5 services, 20 queues and 10 alarms. Each size gets its own resources
under a unique prefix (an ECS cluster with N services, N queues with a few messages each, N
alarms of which one in ten is in ALARM), the check is pointed at them (``ecs_clusters``,
``queues`` prefix; alarms are read region-wide, so the small size is timed before the large
one is created), and timed ``--rounds`` times per size (median). PostgreSQL and Kubernetes are
left out (their cost does not grow with these resources). Prints both medians, the ratio
beside the 3x floor, and the API calls per source and operation, counted by a botocore
``before-call`` hook on each source's clients (every listing goes through a paginator).

    .venv/bin/python bench/health_check.py [--rounds 3] [--concurrency 8] [--state-dir DIR]

The sandbox in ``--state-dir`` (default ``$OPSLIB_SANDBOX_DIR`` or ``./.sandbox``) is started if
needed (without seeding the scenarios); everything the benchmark creates is deleted at the end.
Exit 1 when the ratio is above the floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

FLOOR = 3.0
SMALL = {"services": 5, "queues": 20, "alarms": 10}
LARGE = {"services": 50, "queues": 200, "alarms": 100}
SOURCES = ("ecs", "alb", "alarms", "sqs", "rds", "elasticache", "acm", "backups")


def create(prefix: str, size: dict[str, int], *, ecs, sqs, cloudwatch) -> dict:
    """An ECS cluster with the services, the queues (3 messages each), the alarms."""
    cluster = f"{prefix}-cluster"
    ecs.create_cluster(clusterName=cluster)
    family = f"{prefix}-task"
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "app", "image": "nginx:1.27", "memory": 128}],
    )
    for i in range(size["services"]):
        ecs.create_service(
            cluster=cluster,
            serviceName=f"{prefix}-svc{i:03d}",
            taskDefinition=family,
            desiredCount=1,
        )
    urls = []
    for i in range(size["queues"]):
        url = sqs.create_queue(QueueName=f"{prefix}-q{i:03d}")["QueueUrl"]
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(k), "MessageBody": f"m{k}"} for k in range(3)]
        )
        urls.append(url)
    alarms = []
    for i in range(size["alarms"]):
        name = f"{prefix}-alarm{i:03d}"
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="Bench",
            MetricName=f"m{i}",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        if i % 10 == 0:
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="bench")
        alarms.append(name)
    return {"cluster": cluster, "family": family, "queues": urls, "alarms": alarms}


def delete(made: dict, *, ecs, sqs, cloudwatch) -> None:
    for arn in [
        a
        for p in ecs.get_paginator("list_services").paginate(cluster=made["cluster"])
        for a in p["serviceArns"]
    ]:
        ecs.delete_service(cluster=made["cluster"], service=arn, force=True)
    ecs.delete_cluster(cluster=made["cluster"])
    for url in made["queues"]:
        sqs.delete_queue(QueueUrl=url)
    for i in range(0, len(made["alarms"]), 100):
        cloudwatch.delete_alarms(AlarmNames=made["alarms"][i : i + 100])


def timed(hc, inp, rounds: int):
    times, report = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        report = hc.check(inp, only=SOURCES)
        times.append(time.perf_counter() - t0)
    failed = [s.source for s in report.sections if s.checked == 0 and s.findings]
    if any(f.severity.value == "error" for s in report.sections for f in s.findings):
        raise SystemExit(f"a source failed during the benchmark: {failed}")
    return statistics.median(times), times, report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="timed checks per size (median)")
    ap.add_argument("--concurrency", type=int, default=8, help="the runbook's concurrency")
    ap.add_argument("--state-dir", default="", help="sandbox state dir")
    args = ap.parse_args(argv)

    from opslib import sandbox as sb
    from opslib.sandbox.state import env_vars

    info = sb.up(args.state_dir or None, seed=False)
    os.environ.update(env_vars(info))

    from opslib.clients import aws_client
    from opslib.runbooks import health_check as hc

    aws = {s: aws_client(s) for s in ("ecs", "sqs", "cloudwatch")}
    run = f"hcb{uuid.uuid4().hex[:6]}"
    made, figures = [], {}
    try:
        for label, size in (("small", SMALL), ("large", LARGE)):
            prefix = f"{run}-{label}"
            t0 = time.perf_counter()
            made.append(create(prefix, size, **aws))
            print(f"{label}: created {size} under {prefix}- in {time.perf_counter() - t0:.1f}s")
            inp = hc.inputs(
                ecs_clusters=f"{prefix}-cluster",
                queues=f"{prefix}-",
                concurrency=args.concurrency,
                region=info.region,
            )
            hc.check(inp, only=SOURCES)  # warm-up: clients, models, the server's caches
            figures[label] = timed(hc, inp, args.rounds)
    finally:
        for m in made:
            delete(m, **aws)

    (small, s_times, s_rep), (large, l_times, l_rep) = figures["small"], figures["large"]
    ratio = large / small
    print()
    print(f"small {SMALL}: median {small:.2f}s  ({', '.join(f'{t:.2f}' for t in s_times)})")
    print(f"large {LARGE}: median {large:.2f}s  ({', '.join(f'{t:.2f}' for t in l_times)})")
    print(
        f"ratio large/small: {ratio:.2f}x   floor: <= {FLOOR:g}x   -> {'OK' if ratio <= FLOOR else 'OVER'}"
    )
    print()
    print(
        f"{'source':<12} {'checked s/l':>12} {'calls s/l':>10} {'seconds s/l':>13}  operations (large)"
    )
    for src in SOURCES:
        a, b = s_rep.section(src), l_rep.section(src)
        ops = ", ".join(f"{op} {n}" for op, n in b.calls_by_operation)
        print(
            f"{src:<12} {a.checked:>5}/{b.checked:<6} {a.api_calls:>4}/{b.api_calls:<5} "
            f"{a.seconds:>6.2f}/{b.seconds:<6.2f}  {ops}"
        )
    print(
        f"{'total':<12} {'':>12} {sum(s_rep.api_calls.values()):>4}/{sum(l_rep.api_calls.values()):<5}"
    )
    return 0 if ratio <= FLOOR else 1


if __name__ == "__main__":
    raise SystemExit(main())
