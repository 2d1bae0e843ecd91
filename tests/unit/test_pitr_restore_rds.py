"""The pitr-restore flow on the Aurora/RDS engines: preflight refusals on the sandbox AWS server."""

from __future__ import annotations

import pytest

from opslib import clients
from opslib.core.errors import NotFoundError, PreflightError
from opslib.runbooks import pitr_restore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def rds(sandbox):
    return clients.aws_client("rds")


def test_missing_source_and_existing_target_are_refused(rds):
    cl = pitr_restore.RestoreClients(rds=rds)
    with pytest.raises(NotFoundError, match="not found"):
        pitr_restore.preflight(
            pitr_restore.inputs(engine="aurora", source="no-such-cluster"), clients=cl
        )
    req = pitr_restore.inputs(
        engine="aurora", source="fintech-cluster", target="fintech-cluster-1x"
    )
    pre = pitr_restore.preflight(req, clients=cl)
    assert pre.target == "fintech-cluster-1x"
    assert {c.check for c in pre.checks} >= {
        "source exists",
        "backups enabled",
        "restore time in window",
        "target does not exist",
        "settings carried from source",
    }
    assert [c.action for c in pitr_restore.plan(pre).changes] == [
        "rds:RestoreDBClusterToPointInTime",
        "rds:CreateDBInstance",
    ]
    rds.create_db_cluster(
        DBClusterIdentifier="fintech-cluster-1x",
        Engine="aurora-postgresql",
        MasterUsername="x",
        MasterUserPassword="sandbox-only-pw1",
    )
    try:
        with pytest.raises(PreflightError, match="already exists"):
            pitr_restore.preflight(req, clients=cl)
    finally:
        rds.delete_db_cluster(DBClusterIdentifier="fintech-cluster-1x", SkipFinalSnapshot=True)


def test_restore_time_outside_window_is_refused(rds):
    req = pitr_restore.inputs(
        engine="aurora", source="fintech-cluster", restore_time="2001-01-01T00:00:00Z"
    )
    with pytest.raises(PreflightError, match="before the earliest restorable time"):
        pitr_restore.preflight(req, clients=pitr_restore.RestoreClients(rds=rds))
