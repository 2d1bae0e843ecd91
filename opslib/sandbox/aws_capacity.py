"""Capacity models the sandbox's AWS server adds to moto, for the scale runbook.

What is simulated (moto 5 applies every capacity change at once and never moves again):

- **ECS running count follows desired, with a delay.** moto sets ``runningCount`` to the new
  ``desiredCount`` inside ``UpdateService``. Here the running count stays where it was
  (``pendingCount`` the difference) and reaches desired ``CAPACITY_SECONDS`` later, read on
  DescribeServices, as tasks starting would. A service tagged ``sandbox.opslib.dev/capacity``
  = ``stuck`` never gets there (no room in the cluster: the wait for it times out), and says
  so in its events. An UpdateService that also starts a new deployment (a new task
  definition, a forced deployment) is left to the deployments model of the server.
- **DynamoDB UpdateTable takes a moment.** The table reports ``UPDATING`` for
  ``CAPACITY_SECONDS`` after a capacity or billing change, then ``ACTIVE``; a switch to
  on-demand is stamped as ``BillingModeSummary.LastUpdateToPayPerRequestDateTime`` (moto
  leaves it out), which the once-per-24-hours rule reads. The rule itself is not enforced by
  the server (the runbook refuses before calling).

Throttle metrics (``ThrottledRequests``, ``Read/WriteThrottleEvents``) are not modelled:
nothing consumes capacity in moto, so the capacity scenario puts them into CloudWatch.
RDS ``ModifyDBInstance`` and ElastiCache ``ModifyReplicationGroup`` take effect at once in
moto (status stays ``available``); EKS ``UpdateNodegroupConfig`` too.
"""

from __future__ import annotations

import time

CAPACITY_SECONDS = 2.0
CAPACITY_TAG = "sandbox.opslib.dev/capacity"


def _install_ecs_running() -> None:
    from moto.ecs import models

    backend_cls = models.EC2ContainerServiceBackend
    original_update = backend_cls.update_service
    original_describe = backend_cls.describe_services

    def update_service(self, service_properties):
        cluster = service_properties.get("cluster", "default")
        name = service_properties.get("service", "").split("/")[-1]
        svc = self._get_service(cluster, name)
        running = svc.running_count
        want = service_properties.get("desired_count")
        out = original_update(self, service_properties)
        rolling = getattr(out, "_opslib_rollout", (None, False))[0] is not None
        if want is not None and int(want) != running and not rolling:  # a rollout owns its counts
            stuck = any(
                t.get("key") == CAPACITY_TAG and t.get("value") == "stuck" for t in out.tags or []
            )
            out.running_count = running
            out.pending_count = max(out.desired_count - running, 0)
            out._opslib_capacity = (time.monotonic(), stuck)
        return out

    def describe_services(self, cluster_str, service_names_or_arns):
        services, failures = original_describe(self, cluster_str, service_names_or_arns)
        for svc in services:
            started, stuck = getattr(svc, "_opslib_capacity", (None, False))
            if started is None:
                continue
            if stuck:
                msg = (
                    f"(service {svc.name}) was unable to place a task because no container "
                    "instance met all of its requirements."
                )
                if not svc.events or svc.events[0].get("message") != msg:
                    svc.events.insert(
                        0, {"id": str(time.time_ns()), "createdAt": time.time(), "message": msg}
                    )
                continue
            if time.monotonic() - started >= CAPACITY_SECONDS:
                svc.running_count = svc.desired_count
                svc.pending_count = 0
                for d in svc.deployments[:1]:
                    d["runningCount"], d["pendingCount"] = svc.desired_count, 0
                    d["desiredCount"] = svc.desired_count
                svc._opslib_capacity = (None, False)
        return services, failures

    backend_cls.update_service = update_service
    backend_cls.describe_services = describe_services


def _install_dynamodb_updating() -> None:
    from moto.core.utils import unix_time
    from moto.dynamodb import models
    from moto.dynamodb.models import table as table_models

    original_update = models.DynamoDBBackend.update_table
    original_describe = table_models.Table.describe

    def update_table(self, name, *args, **kwargs):
        before = self.get_table(name).billing_mode
        table = original_update(self, name, *args, **kwargs)
        table._opslib_updating = time.monotonic()
        if table.billing_mode == "PAY_PER_REQUEST" and before != "PAY_PER_REQUEST":
            table._opslib_to_on_demand = unix_time()
        return table

    def describe(self, base_key: str = "TableDescription"):
        out = original_describe(self, base_key)
        desc = out.get(base_key) or {}
        started = getattr(self, "_opslib_updating", None)
        if started is not None and time.monotonic() - started < CAPACITY_SECONDS:
            desc["TableStatus"] = "UPDATING"
        stamp = getattr(self, "_opslib_to_on_demand", None)
        if stamp is not None and "BillingModeSummary" in desc:
            desc["BillingModeSummary"] = {
                **desc["BillingModeSummary"],
                "LastUpdateToPayPerRequestDateTime": stamp,
            }
        return out

    models.DynamoDBBackend.update_table = update_table
    table_models.Table.describe = describe


def install() -> None:
    """Patch moto's backends in the server process (see the module doc for what is simulated)."""
    _install_ecs_running()
    _install_dynamodb_updating()
