"""Sandbox scenario for the morning health check, PostgreSQL maintenance and queue operations.

It extends the demo incident (the latency scenario's ECS service ``fintech-api-service``
already runs 0 of 4 tasks) with:

- ELBv2: ALB ``fintech-alb`` with target group ``fintech-api-tg`` of two instances, one of
  them stopped, so DescribeTargetHealth reports it as not serving (the local AWS server
  reports a stopped instance as ``unused`` / ``Target.InvalidState``, where AWS would report
  ``unhealthy`` once the health checks fail; the check treats every non-healthy state alike);
- CloudWatch: two alarms in ALARM (``fintech-api-5xx-high``, ``fintech-db-connections-high``)
  and one OK, set with SetAlarmState as an evaluation would;
- SQS: ``fintech-payments-queue`` with 10,050 visible messages (the critical backlog) and
  ``fintech-notifications-queue`` nearly empty. The backlog is put in by the sandbox's AWS
  server itself (a queue created with the tag ``sandbox.opslib.dev/fill = N`` is filled to N
  messages in the server process, see
  :func:`opslib.sandbox.aws_server.install_queue_fill`): sending ten thousand
  messages over HTTP at every sandbox start cost minutes on a loaded machine;
- Kubernetes: ingress ``fintech-banking/public-api`` that its controller never gave an address;
- PostgreSQL database ``payments``: table ``public.orders`` with 40 % dead tuples and
  autovacuum disabled on it, one statement that dominates ``pg_stat_statements`` (run a few
  hundred times), and a long-running query from ``reporting-export`` held by a background
  process (``python -m opslib.sandbox.scenarios.health long-query``).

The long-running query is only seconds old when the seed returns, so the ``db-maintenance``
preset lowers ``long_query_minutes`` to 0.1 (6 seconds); on a real server keep the default.
Re-seeding terminates the old query, rebuilds the table and resets the statements.
"""

from __future__ import annotations

import argparse
import sys
import time

from opslib.core.errors import SandboxError
from opslib.sandbox.aws_server import FILL_TAG

RUNBOOKS: tuple[str, ...] = ("health-check", "db-maintenance", "queue-ops")

DB_NAME = "payments"
TABLE = "orders"
ROWS = 10_000
DEAD_PCT = 40
LONG_APP = "reporting-export"
LONG_SECONDS = 4 * 3600
DOMINANT_CALLS = 150
LONG_QUERY_MINUTES_PRESET = 0.1

ALB_NAME = "fintech-alb"
TARGET_GROUP = "fintech-api-tg"
ALARMS_IN_ALARM = ("fintech-api-5xx-high", "fintech-db-connections-high")
ALARM_OK = "fintech-api-cpu-high"
BIG_QUEUE = "fintech-payments-queue"
SMALL_QUEUE = "fintech-notifications-queue"
BIG_QUEUE_MESSAGES = 10_050
QUEUE_PREFIX = "fintech-"


# --- PostgreSQL ------------------------------------------------------------------------------


def _terminate_long(conn) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
        (DB_NAME, LONG_APP),
    )


def _wait_stat(conn, column: str, least: int, timeout: float = 15.0) -> None:
    """Table statistics reach the shared view about a second after the transaction."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            f"SELECT {column} FROM pg_stat_user_tables WHERE relname = %s",  # noqa: S608 - constant
            (TABLE,),
        ).fetchone()
        if row and row[0] >= least:
            return
        time.sleep(0.2)
    raise SandboxError(f"statistics of {DB_NAME}.{TABLE} did not show {column} >= {least}")


def seed_database(ctx) -> None:
    """payments.public.orders with 40 % dead tuples, a dominating statement, statements reset."""
    from psycopg import sql

    with ctx.pg_connect() as conn:
        if (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            is None
        ):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    with ctx.pg_connect(DB_NAME) as conn:
        _terminate_long(conn)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(f"DROP TABLE IF EXISTS public.{TABLE}")
        conn.execute(
            f"CREATE TABLE public.{TABLE} (id int PRIMARY KEY, customer int NOT NULL, "
            "amount numeric(12,2) NOT NULL, note text) WITH (autovacuum_enabled = false)"
        )
        conn.execute(
            f"INSERT INTO public.{TABLE} SELECT g, g % 500, (g % 997) * 1.5, "  # noqa: S608
            f"'order ' || g FROM generate_series(1, {ROWS}) g"
        )
        _wait_stat(conn, "n_tup_ins", ROWS)
        conn.execute(f"ANALYZE public.{TABLE}")
        conn.execute(f"DELETE FROM public.{TABLE} WHERE id % 100 < {DEAD_PCT}")  # noqa: S608
        _wait_stat(conn, "n_dead_tup", ROWS * DEAD_PCT // 100)
        conn.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = %s), 0)",
            (DB_NAME,),
        )
        for i in range(DOMINANT_CALLS):  # the report-style query the application runs constantly
            conn.execute(
                f"SELECT a.customer, sum(a.amount) FROM public.{TABLE} a "  # noqa: S608
                f"JOIN public.{TABLE} b ON b.id = a.id + 1 WHERE a.note LIKE %s GROUP BY 1",
                (f"order {i}%",),
            )
        conn.execute(f"SELECT count(*) FROM public.{TABLE}")  # noqa: S608 - a cheap one beside it


def wait_for_long_query(ctx, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    with ctx.pg_connect(DB_NAME) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
                "AND state = 'active'",
                (DB_NAME, LONG_APP),
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.2)
    raise SandboxError(
        f"the long-running query did not start within {timeout:.0f}s; see "
        f"{ctx.info.state_dir}/logs/spawn-health-long-query.log"
    )


def long_query(conninfo: str, *, seconds: float = LONG_SECONDS) -> int:
    """Play the reporting job whose export query never ends (no statement timeout, like the real one)."""
    import psycopg

    try:
        with psycopg.connect(
            conninfo, application_name=LONG_APP, autocommit=True, options="-c statement_timeout=0"
        ) as c:
            print(f"long query pid {c.info.backend_pid}", flush=True)
            c.execute("SELECT pg_sleep(%s)", (float(seconds),))
    except psycopg.Error as exc:  # the expected end: terminated by the runbook or a reseed
        print(
            f"long query ended: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}",
            flush=True,
        )
    return 0


# --- AWS -------------------------------------------------------------------------------------


def seed_alb(ctx) -> str:
    """ALB fintech-alb -> fintech-api-tg with two instances, one stopped (not serving)."""
    elbv2, ec2 = ctx.aws("elbv2"), ctx.aws("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    lbs = [
        lb
        for lb in elbv2.describe_load_balancers()["LoadBalancers"]
        if lb["LoadBalancerName"] == ALB_NAME
    ]
    lb = (
        lbs[0]
        if lbs
        else elbv2.create_load_balancer(Name=ALB_NAME, Subnets=subnets, Type="application")[
            "LoadBalancers"
        ][0]
    )
    try:
        tgs = elbv2.describe_target_groups(Names=[TARGET_GROUP])["TargetGroups"]
    except elbv2.exceptions.TargetGroupNotFoundException:
        tgs = []
    if tgs:
        tg = tgs[0]["TargetGroupArn"]
        old = [
            d["Target"]
            for d in elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        ]
        if old:
            elbv2.deregister_targets(TargetGroupArn=tg, Targets=old)
    else:
        tg = elbv2.create_target_group(Name=TARGET_GROUP, Protocol="HTTP", Port=8080, VpcId=vpc)[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
        )
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t3.small")[
            "Instances"
        ]
    ]
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": i, "Port": 8080} for i in ids])
    ec2.stop_instances(InstanceIds=ids[1:])
    return lb["LoadBalancerName"]


def seed_alarms(ctx) -> None:
    """Two alarms in ALARM, one OK, as an evaluation would leave them."""
    cw = ctx.aws("cloudwatch")
    specs = [
        (ALARMS_IN_ALARM[0], "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", 50.0),
        (ALARMS_IN_ALARM[1], "AWS/RDS", "DatabaseConnections", 160.0),
        (ALARM_OK, "AWS/ECS", "CPUUtilization", 80.0),
    ]
    for name, ns, metric, threshold in specs:
        cw.put_metric_alarm(
            AlarmName=name,
            Namespace=ns,
            MetricName=metric,
            Statistic="Sum" if "5XX" in metric else "Average",
            Period=60,
            EvaluationPeriods=5,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
        )
        alarm = name in ALARMS_IN_ALARM
        cw.set_alarm_state(
            AlarmName=name,
            StateValue="ALARM" if alarm else "OK",
            StateReason=(
                f"Threshold Crossed: 5 datapoints were greater than the threshold ({threshold:g})"
                if alarm
                else "back to normal"
            ),
        )


def seed_queues(ctx) -> None:
    """fintech-payments-queue over 10,000 visible messages; fintech-notifications-queue small."""
    sqs = ctx.aws("sqs")
    big = sqs.create_queue(QueueName=BIG_QUEUE, tags={FILL_TAG: str(BIG_QUEUE_MESSAGES)})[
        "QueueUrl"
    ]
    small = sqs.create_queue(QueueName=SMALL_QUEUE)["QueueUrl"]
    # emptied by receive + delete, not PurgeQueue: SQS refuses a second purge within 60 s, so
    # a reseed right after the first one would fail
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=small, MaxNumberOfMessages=10, VisibilityTimeout=30)
        msgs = got.get("Messages", [])
        if not msgs:
            break
        sqs.delete_message_batch(
            QueueUrl=small,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)
            ],
        )
    sqs.send_message(QueueUrl=small, MessageBody='{"type": "email", "id": 1}')
    # "All": the local server rebuilds every attribute for each name asked (see aws/sqs/ops.py)
    have = int(
        sqs.get_queue_attributes(QueueUrl=big, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    if have < BIG_QUEUE_MESSAGES:
        raise SandboxError(
            f"{BIG_QUEUE} holds {have} messages, not {BIG_QUEUE_MESSAGES}: the sandbox AWS server "
            "is not opslib's (python -m opslib.sandbox.aws_server); restart it with opslib "
            "sandbox down && opslib sandbox up"
        )


# --- Kubernetes ------------------------------------------------------------------------------

K8S_NAMESPACE = "fintech-banking"
INGRESS = "public-api"


def seed_ingress(ctx) -> None:
    """fintech-banking/public-api: an ingress the controller never gave an address."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core, net = client.CoreV1Api(ctx.k8s()), client.NetworkingV1Api(ctx.k8s())
    try:
        core.create_namespace({"metadata": {"name": K8S_NAMESPACE}})
    except ApiException as exc:  # the latency scenario made it first (scenarios seed in parallel)
        if exc.status != 409:
            raise
    try:
        net.delete_namespaced_ingress(INGRESS, K8S_NAMESPACE)
    except ApiException as exc:
        if exc.status != 404:
            raise
    net.create_namespaced_ingress(
        K8S_NAMESPACE,
        {
            "metadata": {"name": INGRESS},
            "spec": {
                "ingressClassName": "alb",
                "rules": [
                    {
                        "host": "api.fintech.example",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "api", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )


# --- the scenario ----------------------------------------------------------------------------


def seed(ctx) -> dict[str, dict]:
    """(Re)create the scenario; returns the presets of its runbooks."""
    seed_database(ctx)
    alb = seed_alb(ctx)
    seed_alarms(ctx)
    seed_queues(ctx)
    seed_ingress(ctx)
    ctx.spawn(
        "health-long-query",
        [
            sys.executable,
            "-m",
            "opslib.sandbox.scenarios.health",
            "long-query",
            "--conninfo",
            ctx.pg_conninfo(DB_NAME),
        ],
    )
    wait_for_long_query(ctx)
    pg_dsn = ctx.pg_conninfo(DB_NAME)  # trust auth on loopback: no password in it
    return {
        "db-maintenance": {"pg_dsn": pg_dsn, "long_query_minutes": LONG_QUERY_MINUTES_PRESET},
        "health-check": {
            "pg_dsn": pg_dsn,
            "queues": QUEUE_PREFIX,
            "k8s_namespaces": "fintech-banking",
            "load_balancers": alb,
            "region": ctx.info.region,
        },
        "queue-ops": {"queues": QUEUE_PREFIX + "*", "region": ctx.info.region},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m opslib.sandbox.scenarios.health")
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("long-query", help="run one query that does not end")
    q.add_argument("--conninfo", required=True)
    q.add_argument("--seconds", type=float, default=LONG_SECONDS)
    args = p.parse_args(argv)
    return long_query(args.conninfo, seconds=args.seconds)


if __name__ == "__main__":
    sys.exit(main())
