"""Database failover models the sandbox's AWS server adds to moto (for the db-failover runbook).

What moto 5.2 does by itself, and why that would teach the wrong thing:

- ``RebootDBInstance`` is a no-op: ``ForceFailover`` is not even read, the status stays
  ``available`` and nothing is recorded, so a reboot "takes" zero seconds;
- Multi-AZ instances have no standby: ``SecondaryAvailabilityZone`` is never reported;
- ``FailoverDBCluster`` swaps the Aurora writer at once and the cluster never leaves
  ``available``;
- ``DescribeEvents`` only knows creation and backup events.

What is simulated here (patched into moto's backend in the server process, see :func:`install`):

- a Multi-AZ instance reports a standby AZ (``SecondaryAvailabilityZone``, the region's "b"
  zone when the primary is in "a", else "a");
- ``RebootDBInstance`` needs the instance ``available``; it turns ``rebooting`` for
  ``OPSLIB_SANDBOX_RDS_REBOOT_SECONDS`` (default 3), or for the number of seconds in the
  instance's tag ``sandbox.opslib.dev/reboot-seconds`` (how a test makes one reboot outlast its
  wait); with ``ForceFailover=True`` it is refused (InvalidParameterCombination) on a single-AZ
  instance and, on a Multi-AZ one, the primary and standby AZs swap when the reboot ends;
- ``FailoverDBCluster`` leaves the writer as it was while the cluster is ``failing-over`` (its
  old and new writer ``rebooting``) for the same number of seconds (tag on the cluster), then
  promotes the reader moto chose (or the one asked for);
- RDS events are recorded at the start and the end ("DB instance shutdown.", "Multi-AZ instance
  failover started.", "DB instance restarted.", "Multi-AZ instance failover completed.",
  "Started cross AZ failover to DB instance: X", "Completed failover to DB instance: X"), the
  end ones stamped at the simulated end.

State moves lazily: a describe (instances, clusters, events) settles every operation whose time
is up, as the ECS deployments of :mod:`opslib.sandbox.aws_server` do. Nothing else (endpoints,
DNS, connections) changes: the sandbox's PostgreSQL is not restarted by a simulated reboot.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time
from dataclasses import dataclass, field

REBOOT_SECONDS_ENV = "OPSLIB_SANDBOX_RDS_REBOOT_SECONDS"
DURATION_TAG = "sandbox.opslib.dev/reboot-seconds"
DEFAULT_SECONDS = 3.0


@dataclass
class _Op:
    """One reboot or failover in flight."""

    backend: object
    kind: str  # "instance" | "cluster"
    identifier: str
    until: float  # time.monotonic() at which it ends
    ends_at: _dt.datetime
    failover: bool = False
    new_writer: str = ""
    members: tuple[str, ...] = field(default_factory=tuple)


_PENDING: dict[tuple[int, str, str], _Op] = {}
_LOCK = threading.RLock()


def _seconds(tags: list[dict[str, str]] | None) -> float:
    for t in tags or []:
        if t.get("Key") == DURATION_TAG:
            try:
                return max(0.0, float(t.get("Value") or 0))
            except ValueError:
                break
    return float(os.environ.get(REBOOT_SECONDS_ENV, DEFAULT_SECONDS))


def _event(backend, source_id: str, source_type: str, arn: str, message: str, when) -> None:
    from moto.rds.models import Event

    ev = Event.__new__(Event)
    ev.source_identifier = source_id
    ev.source_type = source_type
    ev.message = message
    ev.event_categories = ["failover"] if "failover" in message.lower() else ["availability"]
    ev.source_arn = arn
    ev.date = when
    backend.events.append(ev)


def _other_az(region: str, az: str) -> str:
    return f"{region}b" if az.endswith("a") else f"{region}a"


def _settle(backend) -> None:
    """Finish every operation of ``backend`` whose time is up."""
    now = time.monotonic()
    with _LOCK:
        done = [k for k, op in _PENDING.items() if op.backend is backend and op.until <= now]
        for key in done:
            op = _PENDING.pop(key)
            (_finish_instance if op.kind == "instance" else _finish_cluster)(op)


def _finish_instance(op: _Op) -> None:
    db = op.backend.databases.get(op.identifier)
    if db is None:  # deleted meanwhile
        return
    db.status = "available"
    if op.failover:
        secondary = db.secondary_availability_zone
        db._opslib_secondary_az = db.availability_zone
        db.availability_zone = secondary
        _event(
            op.backend,
            op.identifier,
            "db-instance",
            db.arn,
            "Multi-AZ instance failover completed.",
            op.ends_at,
        )
    _event(op.backend, op.identifier, "db-instance", db.arn, "DB instance restarted.", op.ends_at)


def _finish_cluster(op: _Op) -> None:
    cluster = op.backend.clusters.get(op.identifier)
    for m in op.members:
        inst = op.backend.databases.get(m)
        if inst is not None:
            inst.status = "available"
    if cluster is None:
        return
    target = op.backend.databases.get(op.new_writer)
    if target is not None:
        cluster.failover(target)
    cluster.status = "available"
    _event(
        op.backend,
        op.identifier,
        "db-cluster",
        cluster.db_cluster_arn,
        f"Completed failover to DB instance: {op.new_writer}",
        op.ends_at,
    )


def _start(backend, kind: str, ident: str, seconds: float, **kw) -> _Op:
    op = _Op(
        backend,
        kind,
        ident,
        time.monotonic() + seconds,
        _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=seconds),
        **kw,
    )
    with _LOCK:
        _PENDING[(id(backend), kind, ident)] = op
    return op


def install() -> None:
    """Patch moto's RDS backend and responses (see the module doc); called in the server process."""
    from moto.rds import models, responses
    from moto.rds.exceptions import (
        InvalidDBClusterStateFault,
        InvalidDBInstanceStateFault,
        InvalidParameterCombination,
    )

    backend_cls = models.RDSBackend

    def secondary_availability_zone(self):
        if not getattr(self, "multi_az", False) or isinstance(self, models.DBInstanceClustered):
            return None
        az = getattr(self, "_opslib_secondary_az", None)
        if az is None:
            az = _other_az(self.region, self.availability_zone)
            self._opslib_secondary_az = az
        return az

    models.DBInstance.secondary_availability_zone = property(secondary_availability_zone)

    original_describe_instances = backend_cls.describe_db_instances
    original_describe_clusters = backend_cls.describe_db_clusters
    original_describe_events = backend_cls.describe_events
    original_failover = backend_cls.failover_db_cluster

    def describe_db_instances(self, *args, **kwargs):
        _settle(self)
        return original_describe_instances(self, *args, **kwargs)

    def describe_db_clusters(self, *args, **kwargs):
        _settle(self)
        return original_describe_clusters(self, *args, **kwargs)

    def describe_events(self, *args, **kwargs):
        _settle(self)
        return original_describe_events(self, *args, **kwargs)

    def reboot_db_instance(self, db_instance_identifier, force_failover=False):
        db = describe_db_instances(self, db_instance_identifier)[0]
        if db.status != "available":
            raise InvalidDBInstanceStateFault(
                f"DB instance {db_instance_identifier} is {db.status}, not available; "
                "it cannot be rebooted now."
            )
        clustered = isinstance(db, models.DBInstanceClustered)
        if force_failover and (clustered or not db.multi_az):
            raise InvalidParameterCombination(
                "Reboot with failover is not supported for a DB instance that is not Multi-AZ"
                + (" (use FailoverDBCluster for Aurora)." if clustered else ".")
            )
        seconds = _seconds(db.tags)
        db.status = "rebooting"
        now = _dt.datetime.now(_dt.UTC)
        _event(self, db_instance_identifier, "db-instance", db.arn, "DB instance shutdown.", now)
        if force_failover:
            _event(
                self,
                db_instance_identifier,
                "db-instance",
                db.arn,
                "Multi-AZ instance failover started.",
                now,
            )
        _start(self, "instance", db_instance_identifier, seconds, failover=bool(force_failover))
        return db

    def failover_db_cluster(self, db_cluster_identifier, target_db_instance_identifier=None):
        _settle(self)
        cluster = self.clusters.get(db_cluster_identifier)
        if cluster is not None and cluster.status != "available":
            raise InvalidDBClusterStateFault(
                f"DB cluster {db_cluster_identifier} is {cluster.status}, not available."
            )
        old = cluster.writer if cluster is not None else None
        cluster = original_failover(self, db_cluster_identifier, target_db_instance_identifier)
        new = cluster.writer
        # moto promoted at once; keep the old writer until the simulated failover ends
        if old is not None and new is not None and new is not old:
            new.is_cluster_writer = False
            old.is_cluster_writer = True
        members = tuple(m.db_instance_identifier for m in (old, new) if m is not None)
        for m in (old, new):
            if m is not None:
                m.status = "rebooting"
        cluster.status = "failing-over"
        target = new.db_instance_identifier if new is not None else ""
        _event(
            self,
            db_cluster_identifier,
            "db-cluster",
            cluster.db_cluster_arn,
            f"Started cross AZ failover to DB instance: {target}",
            _dt.datetime.now(_dt.UTC),
        )
        _start(
            self,
            "cluster",
            db_cluster_identifier,
            _seconds(cluster.tags),
            failover=True,
            new_writer=target,
            members=members,
        )
        return cluster

    def reboot_response(self):
        force = self.params.get("ForceFailover")
        force = force is True or str(force).lower() == "true"
        database = self.backend.reboot_db_instance(
            self.params.get("DBInstanceIdentifier"), force_failover=force
        )
        return responses.ActionResult({"DBInstance": database})

    backend_cls.describe_db_instances = describe_db_instances
    backend_cls.describe_db_clusters = describe_db_clusters
    backend_cls.describe_events = describe_events
    backend_cls.reboot_db_instance = reboot_db_instance
    backend_cls.failover_db_cluster = failover_db_cluster
    responses.RDSResponse.reboot_db_instance = reboot_response
