"""Idle and wasted resources across regions, each with an estimated monthly cost, and a gated cleanup.

The cost review procedure says "review and remove unused resources" and "verify NAT Gateway
data transfer costs"; this is that review done by the API instead of by clicking through
consoles: unattached EBS volumes, unassociated Elastic IPs, NAT gateways with little traffic,
stopped instances still paying for their volumes, snapshots older than the retention, load
balancers without requests, RDS instances with low CPU and no connections, provisioned DynamoDB
tables far below their capacity, and log groups kept forever. Each gets a monthly cost from the
dated price table (:mod:`opslib.aws.pricing`) that says which price it used.

A region or a check that fails (AccessDenied, opt-in region, unreachable endpoint) becomes an
error finding and the scan goes on: a cost review that stops at the first missing permission
finds nothing.

Modules: :mod:`.model` (kinds, thresholds, resources, the report), :mod:`.checks` (one check
per kind, behind a registry), :mod:`.scan` (every check in every region), :mod:`.cleanup` (the
selection, the read-only plan and the registered handlers that apply it).
"""

from __future__ import annotations

from opslib.aws.idle.checks import (
    CheckContext,
    CheckResult,
    IdleCheck,
    get_check,
    register_check,
    registered_checks,
)
from opslib.aws.idle.cleanup import (
    ACTIONS,
    CleanupSelection,
    cleaned_ids,
    cleanup_executor,
    cleanup_selection,
    parse_cleanup,
    plan_cleanup,
)
from opslib.aws.idle.model import (
    CLEANABLE,
    KINDS,
    IdleKind,
    IdleReport,
    IdleResource,
    IdleThresholds,
    NatTraffic,
)
from opslib.aws.idle.scan import parse_regions, scan_idle

__all__ = [
    "ACTIONS",
    "CLEANABLE",
    "KINDS",
    "CheckContext",
    "CheckResult",
    "CleanupSelection",
    "IdleCheck",
    "IdleKind",
    "IdleReport",
    "IdleResource",
    "IdleThresholds",
    "NatTraffic",
    "cleaned_ids",
    "cleanup_executor",
    "cleanup_selection",
    "get_check",
    "parse_cleanup",
    "parse_regions",
    "plan_cleanup",
    "register_check",
    "registered_checks",
    "scan_idle",
]
