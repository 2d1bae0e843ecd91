"""opslib.aws.dynamodb_capacity against the sandbox: capacity read back as the AWS CLI shows it,
the last switch to on-demand (stamped by the sandbox), and a stale UpdateTable skipped."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid

import pytest

from opslib.aws import dynamodb_capacity as dc
from opslib.clients import aws_client
from opslib.core.plans import ChangeStatus

pytestmark = pytest.mark.timeout(120)


def test_capacity_switch_stamp_and_stale_update(sandbox):
    ddb = aws_client("dynamodb")
    name = f"cap-{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 2},
    )
    try:
        cap = dc.read_capacity(dynamodb=ddb, table=name)
        assert cap.numbers() == {
            "billing_mode": "PROVISIONED",
            "read_capacity": 3,
            "write_capacity": 2,
        }
        assert cap.last_switch_to_on_demand is None
        change = dc.plan_update(cap, billing_mode="PROVISIONED", read_capacity=30, write_capacity=2)
        ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")  # someone else, meanwhile
        out = dc.update_table(change, dynamodb=ddb)
        assert out.status is ChangeStatus.SKIPPED
        now = dc.read_capacity(dynamodb=ddb, table=name)
        assert now.billing_mode == "PAY_PER_REQUEST" and now.read_capacity == 0
        assert now.switch_blocked_until(dt.datetime.now(dt.UTC)) is not None  # once per 24 h
        cli = subprocess.run(
            [
                "aws",
                "dynamodb",
                "describe-table",
                "--table-name",
                name,
                "--output",
                "json",
                "--endpoint-url",
                os.environ["AWS_ENDPOINT_URL"],
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (
            json.loads(cli.stdout)["Table"]["BillingModeSummary"]["BillingMode"]
            == "PAY_PER_REQUEST"
        )
    finally:
        ddb.delete_table(TableName=name)
