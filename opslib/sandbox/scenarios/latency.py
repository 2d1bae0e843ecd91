"""Sandbox scenario for the high-latency triage runbook: one coherent demo incident.

What it seeds (the high-latency alarm procedure, with the quick health check and the database
checks beside it):

- CloudWatch: an ALB whose p99 climbs past 500 ms over the last ~25 minutes with a 5xx bump
  from the targets and a smaller one from the load balancer itself (HTTPCode_ELB_5XX_Count),
  on 40 % more requests than before (a load spike), one isolated 1-minute p99 spike 40 minutes
  ago (TargetResponseTime as Values+Counts, so endpoints that compute percentiles can; the
  local server falls back to Maximum, which carries the same tail), Aurora CPU at ~92 % with
  connections at ~86 % of the sandbox PostgreSQL's max_connections and read/write latency,
  Redis evictions and a ~62 % cache hit rate (AWS/ElastiCache), and the ECS service's CPU
  at ~85 % and memory at ~93 % (AWS/ECS);
- ECS: cluster ``fintech-cluster``, service ``fintech-api-service`` running 0 of 4 desired tasks,
  with recently stopped tasks whose stopReason is an out-of-memory kill;
- Kubernetes (namespace ``fintech-banking``): deployment ``auth-service`` whose pods restart
  with OOMKilled / CrashLoopBackOff, one healthy pod, and Warning events;
- PostgreSQL: database ``accounts`` with table ``accounts``; a background process
  (``python -m opslib.sandbox.scenarios.latency hold-locks``) keeps one session idle in
  transaction holding a row lock and three sessions waiting on it: a real blocking chain.

Re-seeding terminates the old chain and builds a new one, and resets the ECS desired count and
the deployment. CloudWatch data cannot be deleted: a reseed within ALB_REUSE_MINUTES keeps the
previous load balancer and its series, a later one writes a fresh climb for a NEW load balancer
id; RDS and cache series only get the minutes not yet written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import threading
import time
from typing import Any

from opslib.core.errors import SandboxError

RUNBOOKS: tuple[str, ...] = ("latency-triage",)

DB_NAME = "accounts"
TABLE = "accounts"
HOLDER_APP = "ledger-batch"  # the application whose forgotten transaction blocks everyone
WAITER_APP = "auth-service"
WAITERS = 3
HOLD_SECONDS = 4 * 3600  # the holder gives up after this long, so a forgotten sandbox heals
CHAIN_WAIT_S = 20.0

ALB_NAME = "fintech-alb"
DB_CLUSTER = "fintech-banking-db"
CACHE_CLUSTER = "fintech-redis-001"
ECS_CLUSTER = "fintech-cluster"
ECS_SERVICE = "fintech-api-service"
ECS_DESIRED = 4
K8S_NAMESPACE = "fintech-banking"
K8S_DEPLOYMENT = "auth-service"
K8S_REPLICAS = 3
SCENARIO_LABEL = "sandbox.opslib.dev/scenario"
IMAGE_ID = "docker-pullable://fintech/auth-service@sha256:" + "9f2c" * 16

WINDOW_MIN = 60
BREACH_START_MIN = 25  # the p99 starts climbing this many minutes ago
SPIKE_MIN = 40  # one isolated breaching minute this many minutes ago: a spike, not the alarm
DB_CONNECTIONS_SHARE = 0.86  # DatabaseConnections as a share of max_connections
ALB_REUSE_MINUTES = 15  # a reseed within this keeps the previous ALB series (see seed_metrics)


# --- CloudWatch ------------------------------------------------------------------------------


def _minutes(now: dt.datetime) -> list[dt.datetime]:
    """Whole minutes from WINDOW_MIN ago up to the last complete one, oldest first."""
    end = now.replace(second=0, microsecond=0)
    return [end - dt.timedelta(minutes=i) for i in range(WINDOW_MIN, 0, -1)]


def _alb_data(lb: str, minutes: list[dt.datetime]) -> list[dict[str, Any]]:
    dims = [{"Name": "LoadBalancer", "Value": lb}]
    data: list[dict[str, Any]] = []
    n = len(minutes)
    for i, ts in enumerate(minutes):
        ago = n - i
        if ago <= BREACH_START_MIN:
            ramp = (BREACH_START_MIN - ago + 1) / BREACH_START_MIN  # 0..1 as it gets worse
            tail = 0.45 + 0.95 * ramp  # seconds: crosses 0.5 s a few minutes in, ends ~1.4 s
            errors = int(8 + 60 * ramp)
            elb_errors = int(1 + 12 * ramp)  # 502/503 once targets are gone or too slow
            requests = 1400
        else:
            tail = 0.22 + 0.03 * math.sin(i / 3)
            if ago == SPIKE_MIN:
                tail = 0.9  # one bad minute, back to normal the next
            errors = 2
            elb_errors = 0
            requests = 1000
        # a 10-sample latency distribution per minute: 8 fast, 1 medium, 1 tail, so p50, p90 and p99
        # land on distinct values where percentiles are computed (CloudWatch); the local server
        # stores every counted sample, so keep the counts small (RequestCount carries the volume)
        data += [
            {
                "MetricName": "TargetResponseTime",
                "Dimensions": dims,
                "Timestamp": ts,
                "Unit": "Seconds",
                "Values": [0.04, round(0.11 + tail / 4, 3), round(tail, 3)],
                "Counts": [8.0, 1.0, 1.0],
            },
            {
                "MetricName": "RequestCount",
                "Dimensions": dims,
                "Timestamp": ts,
                "Unit": "Count",
                "Value": float(requests),
            },
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Timestamp": ts,
                "Unit": "Count",
                "Value": float(errors),
            },
            {
                "MetricName": "HTTPCode_ELB_5XX_Count",
                "Dimensions": dims,
                "Timestamp": ts,
                "Unit": "Count",
                "Value": float(elb_errors),
            },
        ]
    return data


def _ecs_data(ts: dt.datetime, i: int) -> list[dict]:
    """The service's CPU and memory (AWS/ECS per service): busy, and close to the OOM kills."""
    dims = [
        {"Name": "ClusterName", "Value": ECS_CLUSTER},
        {"Name": "ServiceName", "Value": ECS_SERVICE},
    ]
    wobble = math.sin(i / 5)
    return [
        {
            "MetricName": "CPUUtilization",
            "Dimensions": dims,
            "Timestamp": ts,
            "Unit": "Percent",
            "Value": 85.0 + 3 * wobble,
        },
        {
            "MetricName": "MemoryUtilization",
            "Dimensions": dims,
            "Timestamp": ts,
            "Unit": "Percent",
            "Value": 93.0 + 2 * wobble,
        },
    ]


def _db_cache_data(
    ts: dt.datetime, i: int, max_connections: int = 100
) -> tuple[list[dict], list[dict]]:
    db = [{"Name": "DBClusterIdentifier", "Value": DB_CLUSTER}]
    cache = [{"Name": "CacheClusterId", "Value": CACHE_CLUSTER}]
    wobble = math.sin(i / 4)
    rds = [
        {
            "MetricName": "CPUUtilization",
            "Dimensions": db,
            "Timestamp": ts,
            "Unit": "Percent",
            "StatisticValues": {
                "SampleCount": 4,
                "Sum": 4 * (92 + wobble),
                "Minimum": 89.0,
                "Maximum": 95.0,
            },
        },
        {
            "MetricName": "DatabaseConnections",
            "Dimensions": db,
            "Timestamp": ts,
            "Unit": "Count",
            "Value": round(max_connections * DB_CONNECTIONS_SHARE + 3 * wobble, 1),
        },
        {
            "MetricName": "ReadLatency",
            "Dimensions": db,
            "Timestamp": ts,
            "Unit": "Seconds",
            "Value": 0.018 + 0.004 * wobble,
        },
        {
            "MetricName": "WriteLatency",
            "Dimensions": db,
            "Timestamp": ts,
            "Unit": "Seconds",
            "Value": 0.045 + 0.01 * wobble,
        },
    ]
    redis = [
        {
            "MetricName": "Evictions",
            "Dimensions": cache,
            "Timestamp": ts,
            "Unit": "Count",
            "Value": float(1200 + int(300 * wobble)),
        },
        {
            "MetricName": "EngineCPUUtilization",
            "Dimensions": cache,
            "Timestamp": ts,
            "Unit": "Percent",
            "Value": 71.0 + 3 * wobble,
        },
        {
            "MetricName": "CPUUtilization",
            "Dimensions": cache,
            "Timestamp": ts,
            "Unit": "Percent",
            "Value": 38.0 + 2 * wobble,
        },
        {
            "MetricName": "CurrConnections",
            "Dimensions": cache,
            "Timestamp": ts,
            "Unit": "Count",
            "Value": 950.0 + 20 * wobble,
        },
        {
            "MetricName": "CacheHits",
            "Dimensions": cache,
            "Timestamp": ts,
            "Unit": "Count",
            "Value": float(6200 + int(200 * wobble)),
        },
        {
            "MetricName": "CacheMisses",
            "Dimensions": cache,
            "Timestamp": ts,
            "Unit": "Count",
            "Value": 3800.0,
        },
    ]
    return rds, redis


def _put(cw, namespace: str, data: list[dict]) -> None:
    for i in range(0, len(data), 500):  # PutMetricData takes up to 1000 datums; stay well below
        cw.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])


def seed_metrics(ctx, now: dt.datetime | None = None, *, max_connections: int = 100) -> str:
    """Write the ALB, RDS, ElastiCache and ECS series; returns the load balancer dimension.

    The local AWS server keeps every datapoint forever and scans all of those in the window
    for each query and period, so a reseed within ALB_REUSE_MINUTES keeps the previous load
    balancer and its series (still a climb past 500 ms inside the last hour) instead of adding
    another copy; later, a new load balancer id gets a fresh climb ending now.
    """
    now = now or dt.datetime.now(dt.UTC)
    cw = ctx.aws("cloudwatch")
    minutes = _minutes(now)
    state_file = ctx.scenario_dir("latency") / "metrics.json"
    try:
        state = json.loads(state_file.read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    alb = state.get("alb") or {}
    fresh = False
    if alb.get("lb") and alb.get("seeded_at"):
        age = now - dt.datetime.fromisoformat(alb["seeded_at"])
        fresh = dt.timedelta(0) <= age <= dt.timedelta(minutes=ALB_REUSE_MINUTES)
    if fresh and alb.get("endpoint") == ctx.info.aws_endpoint:
        lb = alb["lb"]
    else:
        lb = f"app/{ALB_NAME}/{int(now.timestamp() * 1e6):016x}"
        _put(cw, "AWS/ApplicationELB", _alb_data(lb, minutes))
        alb = {"lb": lb, "seeded_at": now.isoformat(), "endpoint": ctx.info.aws_endpoint}

    written = (
        set(state.get("minutes", [])) if state.get("endpoint") == ctx.info.aws_endpoint else set()
    )
    same = state.get("endpoint") == ctx.info.aws_endpoint
    # the ECS series came later than the others: minutes of their own, so a sandbox seeded
    # before them gets them without a second copy of the RDS and cache minutes
    written_ecs = set(state.get("ecs_minutes", [])) if same else set()
    rds: list[dict] = []
    redis: list[dict] = []
    ecs: list[dict] = []
    for ts in minutes:
        key = ts.isoformat()
        i = int(ts.timestamp() // 60)  # wobble by absolute minute
        if key not in written:
            r, c = _db_cache_data(ts, i, max_connections)
            rds += r
            redis += c
            written.add(key)
        if key not in written_ecs:
            ecs += _ecs_data(ts, i)
            written_ecs.add(key)
    _put(cw, "AWS/RDS", rds)
    _put(cw, "AWS/ElastiCache", redis)
    _put(cw, "AWS/ECS", ecs)
    day_ago = (now - dt.timedelta(days=1)).isoformat()
    state_file.write_text(
        json.dumps(
            {
                "alb": alb,
                "minutes": sorted(k for k in written if k >= day_ago),
                "ecs_minutes": sorted(k for k in written_ecs if k >= day_ago),
                "endpoint": ctx.info.aws_endpoint,
            }
        )
    )
    return lb


# --- ECS -------------------------------------------------------------------------------------


def seed_ecs(ctx) -> None:
    """Cluster and service at 0/4 running, with tasks stopped by out-of-memory kills."""
    ecs = ctx.aws("ecs")
    ec2 = ctx.aws("ec2")
    ecs.create_cluster(clusterName=ECS_CLUSTER)  # idempotent in ECS
    td = ecs.register_task_definition(
        family=ECS_SERVICE,
        containerDefinitions=[
            {"name": "api", "image": "fintech/api:1.42.0", "memory": 512, "essential": True}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    svc = ecs.describe_services(cluster=ECS_CLUSTER, services=[ECS_SERVICE])["services"]
    if svc and svc[0].get("status") == "ACTIVE":
        ecs.update_service(
            cluster=ECS_CLUSTER, service=ECS_SERVICE, desiredCount=ECS_DESIRED, taskDefinition=td
        )
    else:
        ecs.create_service(
            cluster=ECS_CLUSTER,
            serviceName=ECS_SERVICE,
            taskDefinition=td,
            desiredCount=ECS_DESIRED,
        )
    if not ecs.list_container_instances(cluster=ECS_CLUSTER)["containerInstanceArns"]:
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.large")
        doc = {"instanceId": inst["Instances"][0]["InstanceId"], "region": ctx.info.region}
        ecs.register_container_instance(
            cluster=ECS_CLUSTER, instanceIdentityDocument=json.dumps(doc)
        )
    # stop whatever is still running from an earlier seed, then add fresh OOM-killed tasks
    for arn in ecs.list_tasks(cluster=ECS_CLUSTER, desiredStatus="RUNNING")["taskArns"]:
        ecs.stop_task(
            cluster=ECS_CLUSTER, task=arn, reason="Scaling activity initiated by (sandbox reseed)"
        )
    tasks = ecs.run_task(
        cluster=ECS_CLUSTER,
        taskDefinition=td,
        count=3,
        launchType="EC2",
        startedBy="ecs-svc/sandbox",
        group=f"service:{ECS_SERVICE}",
    )["tasks"]
    reasons = [
        "Essential container in task exited: OutOfMemoryError: Container killed due to memory usage",
        "Essential container in task exited: OutOfMemoryError: Container killed due to memory usage",
        "Task failed ELB health checks in (target-group fintech-api-tg)",
    ]
    for t, reason in zip(tasks, reasons, strict=False):
        ecs.stop_task(cluster=ECS_CLUSTER, task=t["taskArn"], reason=reason)


# --- Kubernetes ------------------------------------------------------------------------------


def _ts(delta_s: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=delta_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod(name: str, *, restarts: int, crashloop: bool) -> dict:
    labels = {"app": K8S_DEPLOYMENT, "pod-template-hash": "7c9d8f", SCENARIO_LABEL: "latency"}
    if crashloop:
        cstatus = {
            "name": K8S_DEPLOYMENT,
            "image": "fintech/auth-service:2.3.1",
            "imageID": IMAGE_ID,
            "ready": False,
            "restartCount": restarts,
            "started": False,
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 2m40s restarting failed container={K8S_DEPLOYMENT}",
                }
            },
            "lastState": {
                "terminated": {
                    "reason": "OOMKilled",
                    "exitCode": 137,
                    "startedAt": _ts(240),
                    "finishedAt": _ts(95),
                }
            },
        }
        conditions = [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]
    else:
        cstatus = {
            "name": K8S_DEPLOYMENT,
            "image": "fintech/auth-service:2.3.1",
            "imageID": IMAGE_ID,
            "ready": True,
            "restartCount": restarts,
            "started": True,
            "state": {"running": {"startedAt": _ts(5400)}},
        }
        conditions = [{"type": "Ready", "status": "True"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": K8S_NAMESPACE, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": K8S_DEPLOYMENT,
                    "image": "fintech/auth-service:2.3.1",
                    "resources": {"limits": {"memory": "512Mi"}},
                }
            ]
        },
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "containerStatuses": [cstatus],
            "startTime": _ts(5400),
        },
    }


def seed_k8s(ctx) -> None:
    """auth-service: 2 of 3 pods OOMKilled and in CrashLoopBackOff, with Warning events."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = ctx.k8s()
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    try:
        core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": K8S_NAMESPACE}}
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": K8S_DEPLOYMENT,
            "namespace": K8S_NAMESPACE,
            "labels": {"app": K8S_DEPLOYMENT, SCENARIO_LABEL: "latency"},
        },
        "spec": {
            "replicas": K8S_REPLICAS,
            "selector": {"matchLabels": {"app": K8S_DEPLOYMENT}},
            "template": {
                "metadata": {"labels": {"app": K8S_DEPLOYMENT}},
                "spec": {
                    "containers": [{"name": K8S_DEPLOYMENT, "image": "fintech/auth-service:2.3.1"}]
                },
            },
        },
    }
    # the emulator's deployment controller: deleting the deployment removes its ReplicaSet and
    # pods; the seeded pods are created first so the new ReplicaSet adopts them (their
    # pod-template-hash names it) instead of starting healthy pods of its own
    try:
        apps.delete_namespaced_deployment(K8S_DEPLOYMENT, K8S_NAMESPACE)
    except ApiException as exc:
        if exc.status != 404:
            raise
    sel = f"{SCENARIO_LABEL}=latency"
    for p in core.list_namespaced_pod(K8S_NAMESPACE, label_selector=sel).items:
        core.delete_namespaced_pod(p.metadata.name, K8S_NAMESPACE)
    for e in core.list_namespaced_event(K8S_NAMESPACE).items:
        if (e.metadata.labels or {}).get(SCENARIO_LABEL) == "latency":
            core.delete_namespaced_event(e.metadata.name, K8S_NAMESPACE)
    pods = [
        ("auth-service-7c9d8f-4xkqp", 7, True),
        ("auth-service-7c9d8f-9mzt2", 5, True),
        ("auth-service-7c9d8f-b2lwn", 0, False),
    ]
    for name, restarts, crash in pods:
        core.create_namespaced_pod(K8S_NAMESPACE, _pod(name, restarts=restarts, crashloop=crash))
    apps.create_namespaced_deployment(K8S_NAMESPACE, dep)  # status follows the adopted pods
    events = []
    for name, restarts, crash in pods:
        if not crash:
            continue
        events += [
            (
                name,
                "BackOff",
                f"Back-off restarting failed container {K8S_DEPLOYMENT} in pod {name}",
                restarts * 4,
            ),
            (
                name,
                "OOMKilling",
                f"Memory cgroup out of memory: Killed process (java) in container {K8S_DEPLOYMENT}",
                restarts,
            ),
            (
                name,
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
                restarts * 2,
            ),
        ]
    for i, (pod, reason, message, count) in enumerate(events):
        core.create_namespaced_event(
            K8S_NAMESPACE,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{pod}.latency{i:02d}",
                    "namespace": K8S_NAMESPACE,
                    "labels": {SCENARIO_LABEL: "latency"},
                },
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": K8S_NAMESPACE},
                "reason": reason,
                "message": message,
                "type": "Warning",
                "count": count,
                "firstTimestamp": _ts(1800),
                "lastTimestamp": _ts(30 + 20 * i),
                "source": {"component": "kubelet"},
            },
        )


# --- PostgreSQL blocking chain ---------------------------------------------------------------


def _terminate_old_chain(conn) -> int:
    """End the sessions of an earlier chain (killing its process alone leaves waiters queued)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name IN (%s, %s) AND pid <> pg_backend_pid()",
            (DB_NAME, HOLDER_APP, WAITER_APP),
        )
        return int(cur.fetchone()[0])


def seed_database(ctx) -> None:
    """Database and table ``accounts`` with a few rows (idempotent)."""
    from psycopg import sql

    with ctx.pg_connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if row is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    with ctx.pg_connect(DB_NAME) as conn:
        _terminate_old_chain(conn)
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, owner text NOT NULL, "
                "balance numeric(14,2) NOT NULL DEFAULT 0)"
            ).format(sql.Identifier(TABLE))
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, 'customer-' || g, 1000 FROM generate_series(1, 100) g "
                "ON CONFLICT (id) DO NOTHING"
            ).format(sql.Identifier(TABLE))
        )


def wait_for_chain(ctx, *, timeout: float = CHAIN_WAIT_S) -> dict:
    """Poll pg_stat_activity until the holder is idle in transaction and all waiters wait on it."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    with ctx.pg_connect(DB_NAME) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT pid, application_name, state, wait_event_type, pg_blocking_pids(pid) "
                "FROM pg_stat_activity WHERE datname = %s AND application_name IN (%s, %s)",
                (DB_NAME, HOLDER_APP, WAITER_APP),
            ).fetchall()
            holders = [r[0] for r in rows if r[1] == HOLDER_APP and r[2] == "idle in transaction"]
            waiting = [r[0] for r in rows if r[1] == WAITER_APP and r[3] == "Lock" and r[4]]
            last = {"holders": holders, "waiting": waiting}
            if len(holders) == 1 and len(waiting) == WAITERS:
                return last
            time.sleep(0.2)

    raise SandboxError(
        f"The latency blocking chain did not appear within {timeout:.0f}s (saw {last}); see "
        f"{ctx.info.state_dir}/logs/spawn-latency-locks.log"
    )


def seed(ctx) -> dict[str, dict]:
    """(Re)create the whole incident; returns the presets of ``latency-triage``."""
    with ctx.pg_connect() as conn:  # connections are seeded as a share of the real ceiling
        max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    lb = seed_metrics(ctx, max_connections=max_connections)
    seed_ecs(ctx)
    seed_k8s(ctx)
    seed_database(ctx)
    ctx.spawn(
        "latency-locks",
        [
            sys.executable,
            "-m",
            "opslib.sandbox.scenarios.latency",
            "hold-locks",
            "--conninfo",
            ctx.pg_conninfo(DB_NAME),
            "--waiters",
            str(WAITERS),
        ],
    )
    wait_for_chain(ctx)
    pg_dsn = ctx.pg_conninfo(DB_NAME)  # trust auth on loopback: no password in it
    return {
        "latency-triage": {
            "load_balancer": lb,
            "ecs_cluster": ECS_CLUSTER,
            "ecs_service": ECS_SERVICE,
            "db_cluster": DB_CLUSTER,
            "cache_cluster": CACHE_CLUSTER,
            "pg_dsn": pg_dsn,
            "k8s_namespace": K8S_NAMESPACE,
            "k8s_selector": f"app={K8S_DEPLOYMENT}",
            "region": ctx.info.region,
        }
    }


# --- the lock-holding process ----------------------------------------------------------------


def hold_locks(conninfo: str, *, waiters: int = WAITERS, hold_seconds: float = HOLD_SECONDS) -> int:
    """Play the application: one forgotten transaction holding a row lock, ``waiters`` stuck behind.

    These are the simulated application's own connections (not opslib's), so they are opened
    directly with the application's name; no statement or lock timeout, like the real thing.
    Exits when the waiters are through (the holder was terminated) or after ``hold_seconds``.
    """
    import psycopg

    holder = psycopg.connect(
        conninfo,
        application_name=HOLDER_APP,
        autocommit=False,
        options="-c statement_timeout=0 -c lock_timeout=0",
    )
    holder.execute(f"UPDATE {TABLE} SET balance = balance + 0 WHERE id = 1")  # noqa: S608 - constant
    print(f"holder pid {holder.info.backend_pid} holds the row lock on {TABLE} id=1", flush=True)
    done: list[str] = []

    def wait_in_line(n: int) -> None:
        try:
            with psycopg.connect(
                conninfo,
                application_name=WAITER_APP,
                autocommit=True,
                options="-c statement_timeout=0 -c lock_timeout=0",
            ) as c:
                print(f"waiter {n} pid {c.info.backend_pid} queued", flush=True)
                c.execute(f"UPDATE {TABLE} SET balance = balance - 1 WHERE id = 1")  # noqa: S608
                done.append(f"waiter {n} finished")
                print(f"waiter {n} finished", flush=True)
        except psycopg.Error as exc:  # terminated by a reseed: reported, then the thread ends
            print(f"waiter {n} ended: {exc}", flush=True)

    threads = [
        threading.Thread(target=wait_in_line, args=(n,), daemon=True) for n in range(1, waiters + 1)
    ]
    for t in threads:
        t.start()
        time.sleep(0.1)  # a stable queue order
    deadline = time.monotonic() + hold_seconds
    while time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.5)
    try:
        holder.rollback()
        holder.close()
    except psycopg.Error as exc:  # the expected end: the runbook terminated the holder
        print(
            f"holder ended: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}",
            flush=True,
        )
    for t in threads:
        t.join(timeout=10)
    print(f"chain over: {len(done)} of {waiters} waiter(s) finished", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m opslib.sandbox.scenarios.latency")
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hold-locks", help="hold a row lock with three sessions waiting on it")
    h.add_argument("--conninfo", required=True)
    h.add_argument("--waiters", type=int, default=WAITERS)
    h.add_argument("--hold-seconds", type=float, default=HOLD_SECONDS)
    args = p.parse_args(argv)
    return hold_locks(args.conninfo, waiters=args.waiters, hold_seconds=args.hold_seconds)


if __name__ == "__main__":
    sys.exit(main())
