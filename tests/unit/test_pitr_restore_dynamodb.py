"""The pitr-restore flow on the DynamoDB engine: preflight refusals on the sandbox AWS server."""

from __future__ import annotations

import uuid

import pytest

from opslib import clients
from opslib.core.errors import NotFoundError, PreflightError
from opslib.runbooks import pitr_restore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def ddb(sandbox):
    return clients.aws_client("dynamodb")


def test_pitr_disabled_missing_source_and_existing_target_refused(ddb):
    name = f"nopitr-{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    cl = pitr_restore.RestoreClients(dynamodb=ddb)
    try:
        with pytest.raises(PreflightError, match="Point-in-time recovery is DISABLED"):
            pitr_restore.preflight(pitr_restore.inputs(engine="dynamodb", source=name), clients=cl)
        with pytest.raises(PreflightError, match="already exists"):
            pitr_restore.preflight(
                pitr_restore.inputs(engine="dynamodb", source="fintech-sessions", target=name),
                clients=cl,
            )
    finally:
        ddb.delete_table(TableName=name)
    with pytest.raises(NotFoundError, match="not found"):
        pitr_restore.preflight(
            pitr_restore.inputs(engine="dynamodb", source="no-such-table"), clients=cl
        )
