"""The sandbox's AWS APIs: moto's server mode as a background process on 127.0.0.1.

A real HTTP server rather than in-process ``mock_aws``: notebooks run in their own kernels
and ``opslib run`` in its own process, and all of them must see the same seeded queues,
tables and clusters through plain ``AWS_ENDPOINT_URL``.

The server runs as ``python -m opslib.sandbox.aws_server``: moto's own server, plus ECS
deployments (:func:`install_ecs_deployments`), which moto 5 does not model: there
``UpdateService`` changes the service's task definition but leaves its one deployment as it
was (old task definition, PRIMARY), so no rollback or restart could ever be seen to complete.
With the extension, an ``UpdateService`` that changes the task definition or forces a new
deployment makes a new PRIMARY deployment (IN_PROGRESS, 0 running) and turns the old one
ACTIVE; ``ECS_ROLLOUT_SECONDS`` later (read on DescribeServices) the new one is COMPLETED with
all desired tasks running and the old one is gone, or FAILED (circuit breaker, 0 running, the
old one stays ACTIVE) when its task definition carries the tag ``sandbox.opslib.dev/rollout``
= ``fails``. Tasks are not started or stopped: only the service's and deployments' counts move.

Two seeding shortcuts live in the scenarios that need them and are installed here: RDS
snapshots that report an older creation time (:func:`install_snapshot_ages`) and
queues filled in-process to a backlog (:func:`install_queue_fill`), and a DynamoDB latest
restorable time that follows the clock (:func:`install_pitr_clock`).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from opslib.core.errors import SandboxError
from opslib.sandbox import procs

START_TIMEOUT = 30


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=2) as resp:
            return resp.status < 500
    except OSError:
        return False


def launch(*, log: Path, env: dict[str, str]) -> dict:
    """Spawn the server (moto plus ECS deployments) on a free port without waiting (see :func:`ready`)."""
    port = procs.free_port()
    rec = procs.spawn(
        [sys.executable, "-m", "opslib.sandbox.aws_server", "-H", "127.0.0.1", "-p", str(port)],
        log=log,
        env=env,
    )
    return {**rec, "port": port, "url": f"http://127.0.0.1:{port}"}


def ready(rec: dict, *, log: Path, env: dict[str, str], attempts: int = 3) -> dict:
    """Wait (bounded) until the launched server answers; return the record of the one that does.

    The port is picked just before the start, so another process may grab it first: then
    moto exits at once and another port is tried.
    """
    for attempt in range(1, attempts + 1):
        procs.wait_until(
            lambda rec=rec: not procs.alive(rec) or _answers(rec["url"]),
            timeout=START_TIMEOUT,
            interval=0.1,
        )
        if procs.alive(rec) and _answers(rec["url"]):
            return rec
        was_alive = procs.stop(rec)
        if was_alive or attempt == attempts:  # hung rather than lost a port race: do not retry
            break
        rec = launch(log=log, env=env)
    raise SandboxError(
        f"The moto server (AWS APIs) did not answer on {rec['url']} within {START_TIMEOUT}s. "
        f"Log: {log}\n{procs.tail(log)}"
    )


def start(*, log: Path, env: dict[str, str]) -> dict:
    """Launch and wait: the record of a moto server that answers."""
    return ready(launch(log=log, env=env), log=log, env=env)


#: seconds from an UpdateService to its deployment's COMPLETED (or FAILED) state
ECS_ROLLOUT_SECONDS = float(os.environ.get("OPSLIB_SANDBOX_ECS_ROLLOUT_SECONDS", "3"))
FAILS_TAG = "sandbox.opslib.dev/rollout"


def install_ecs_deployments() -> None:
    """Teach moto's ECS backend deployments (see the module doc); called in the server process."""
    import datetime as dt

    from moto.ecs import models

    backend_cls = models.EC2ContainerServiceBackend
    original_update = backend_cls.update_service
    original_describe = backend_cls.describe_services

    def _fails(backend, td_arn: str) -> bool:
        try:
            tags = backend.list_tags_for_resource(td_arn)
        except Exception:  # noqa: BLE001 - an untaggable arn is simply not marked
            return False
        return any(t.get("key") == FAILS_TAG and t.get("value") == "fails" for t in tags)

    def update_service(self, service_properties):
        cluster = service_properties.get("cluster", "default")
        name = service_properties.get("service", "").split("/")[-1]
        before = self._get_service(cluster, name).task_definition
        forced = bool(service_properties.get("force_new_deployment"))
        svc = original_update(self, service_properties)
        if svc.deployments and (forced or svc.task_definition != before):
            now = dt.datetime.now(dt.UTC)
            # the previous PRIMARY stays, ACTIVE, while the new one rolls out; older ones go
            svc.deployments[1:] = []
            for d in svc.deployments:
                d["status"] = "ACTIVE"
            dep_id = f"ecs-svc/{int(time.time() * 1e6)}"
            svc.deployments.insert(
                0,
                {
                    **svc.deployments[0],
                    "id": dep_id,
                    "status": "PRIMARY",
                    "taskDefinition": svc.task_definition,
                    "desiredCount": svc.desired_count,
                    "runningCount": 0,
                    "pendingCount": svc.desired_count,
                    "failedTasks": 0,
                    "rolloutState": "IN_PROGRESS",
                    "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
                    "createdAt": now,
                    "updatedAt": now,
                },
            )
            svc._opslib_rollout = (time.monotonic(), _fails(self, svc.task_definition))
        return svc

    def describe_services(self, cluster_str, service_names_or_arns):
        services, failures = original_describe(self, cluster_str, service_names_or_arns)
        for svc in services:
            started, fails = getattr(svc, "_opslib_rollout", (None, False))
            if started is None or time.monotonic() - started < ECS_ROLLOUT_SECONDS:
                continue
            primary = svc.deployments[0]
            primary["updatedAt"] = dt.datetime.now(dt.UTC)
            primary["pendingCount"] = 0
            if fails:
                primary["rolloutState"] = "FAILED"
                primary["failedTasks"] = svc.desired_count
                primary["rolloutStateReason"] = (
                    "ECS deployment circuit breaker: tasks failed to start."
                )
                svc.running_count = 0
            else:
                primary["rolloutState"] = "COMPLETED"
                primary["runningCount"] = svc.desired_count
                primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
                svc.deployments[1:] = []
                svc.running_count = svc.desired_count
            svc.pending_count = 0
            svc._opslib_rollout = (None, False)
        return services, failures

    backend_cls.update_service = update_service
    backend_cls.describe_services = describe_services


AGE_TAG = "sandbox.opslib.dev/age-hours"


def install_snapshot_ages() -> None:
    """Teach moto's RDS snapshots an age (called in the sandbox's AWS server process).

    A DB or cluster snapshot tagged ``AGE_TAG = N`` reports ``SnapshotCreateTime`` N hours
    before its real creation: the only way to show a stale backup on a server with no clock to
    move. Untagged snapshots are unchanged.
    """
    import datetime as _dt

    from moto.rds import models

    for cls in (models.DBSnapshot, models.DBClusterSnapshot):
        original = cls.snapshot_create_time

        def aged(self, _original=original):
            t = _original.fget(self)
            for tag in getattr(self, "tags", None) or []:
                if tag.get("Key") == AGE_TAG:
                    return t - _dt.timedelta(hours=float(tag.get("Value") or 0))
            return t

        cls.snapshot_create_time = property(aged)


FILL_TAG = "sandbox.opslib.dev/fill"


def install_queue_fill() -> None:
    """Teach moto's SQS a seeding shortcut (called in the sandbox's AWS server process).

    A CreateQueue with the tag ``FILL_TAG = N`` tops the queue up to N visible messages. They
    are ordinary moto messages (they can be received, deleted and purged), appended in the
    server process: moto's ``send_message`` reads every attribute of the queue, each a scan of
    all its messages, so sending ten thousand costs O(n^2) (measured: 27 ms per send at 500
    messages, minutes for the backlog). Queues without the tag are unchanged.
    """
    import uuid

    from moto.sqs import models

    original = models.SQSBackend.create_queue

    def create_queue(self, name, tags=None, **kwargs):
        queue = original(self, name, tags=tags, **kwargs)
        want = int((tags or {}).get(FILL_TAG) or (queue.tags or {}).get(FILL_TAG) or 0)
        missing = max(want - len(queue._messages), 0)
        batch = []
        for i in range(missing):
            message = models.Message(
                str(uuid.uuid4()), f'{{"payment_id": "pay-{i:06d}", "amount": 10.5}}'
            )
            message.mark_sent(delay_seconds=0)
            batch.append(message)
        with queue._messages_lock:
            queue._messages.extend(batch)
            queue._messages_lock.notify_all()
        return queue

    models.SQSBackend.create_queue = create_queue


def install_fast_sqs() -> None:
    """Make moto's SQS linear again (called in the sandbox's AWS server process).

    Two costs made every redrive in the sandbox crawl (18 messages a second; 0.6-1 s per
    ReceiveMessage of ten from a 500-message queue, 0.8 s per SendMessageBatch at 1,000):

    - for every message a ReceiveMessage returns, and for every SendMessage, moto builds the
      queue's whole attribute map, whose message counts are three scans of the queue; the
      receive needs only MessageRetentionPeriod, which is read directly here;
    - each scan asks every message whether it is visible or delayed, and each answer reads the
      clock through ``moto.core.utils.unix_time``: two naive-datetime conversions per call.
      ``time.time()`` is the same clock (moto's is ``datetime.now(UTC)`` minus the epoch).

    The behaviour is moto's: the same retention rule, the same times; only the cost changes.
    """
    from moto.sqs import models

    global _moto_unix_time
    if models.unix_time is fast_unix_time:  # installed already
        return
    _moto_unix_time = models.unix_time
    models.SQSBackend.is_message_valid_based_on_retention_period = retained
    models.unix_time = fast_unix_time
    models.unix_time_millis = fast_unix_time_millis


_moto_unix_time: Any = None


def retained(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's retention rule (a message older than MessageRetentionPeriod is gone), read from
    the queue's one attribute instead of its whole attribute map."""
    retention = int(backend.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > time.time()


def fast_unix_time(dt: Any = None) -> float:
    """Now from ``time.time()``; a given datetime through moto's own conversion."""
    if dt is None:
        return time.time()
    if _moto_unix_time is None:  # not installed (yet): moto's function is still moto's
        from moto.core.utils import unix_time

        return unix_time(dt)
    return _moto_unix_time(dt)


def fast_unix_time_millis(dt: Any = None) -> float:
    return fast_unix_time(dt) * 1000.0


def install_pitr_clock() -> None:
    """Keep DynamoDB's latest restorable time moving (called in the sandbox's AWS server).

    moto stamps ``LatestRestorableDateTime`` once, when PITR is turned on, so an hour into a
    sandbox session every table looks an hour behind its RPO. DynamoDB itself keeps it about
    five minutes behind now; here it is now (the earliest restorable time stays when PITR was
    turned on, as on AWS).
    """
    from moto.core.utils import unix_time
    from moto.dynamodb import models

    original = models.DynamoDBBackend.describe_continuous_backups

    def describe_continuous_backups(self, table_name):
        backups = original(self, table_name)
        pitr = backups.get("PointInTimeRecoveryDescription") or {}
        if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
            pitr["LatestRestorableDateTime"] = unix_time()
        return backups

    models.DynamoDBBackend.describe_continuous_backups = describe_continuous_backups


def main() -> None:
    """``python -m opslib.sandbox.aws_server -H HOST -p PORT``: moto's server with the extensions."""
    from moto.server import main as moto_main

    install_ecs_deployments()
    install_snapshot_ages()  # snapshots tagged sandbox.opslib.dev/age-hours report an older time
    install_queue_fill()  # queues tagged sandbox.opslib.dev/fill are filled in-process
    install_pitr_clock()  # DynamoDB's latest restorable time follows the clock
    install_fast_sqs()  # SQS receives and sends without quadratic scans
    from opslib.sandbox import aws_capacity, aws_failover

    aws_capacity.install()  # scale: what moto leaves still (see that module)
    aws_failover.install()  # db-failover: writers that change, reboots that take time
    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
