"""DynamoDB PITR restore with the re-applies, counts and sample, on the sandbox AWS server."""

from __future__ import annotations

import uuid

import pytest

from opslib import clients
from opslib.aws import dynamodb as d
from opslib.core import executors
from opslib.core.errors import NotFoundError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def ddb(sandbox):
    return clients.aws_client("dynamodb")


def test_describe_source(ddb):
    src = d.describe_table("fintech-sessions", dynamodb=ddb)
    assert src.pitr_status == "ENABLED" and src.ttl_attribute == "expires_at"
    assert src.recovery_period_days == 35  # what the retention check compares with
    assert ("team", "payments") in src.tags
    assert src.earliest_restorable is not None and src.latest_restorable is not None
    frame = src.settings_frame()
    assert "NOT carried: recreate by hand" in set(frame["restore"])


def test_restore_reapplies_ttl_tags_and_pitr(ddb):
    src = d.describe_table("fintech-sessions", dynamodb=ddb)
    target = f"fintech-sessions-unit-{uuid.uuid4().hex[:6]}"
    plan = d.plan_restore(src, target=target, restore_time=None)
    assert [c.action for c in plan.changes] == [
        d.ACTION_RESTORE,
        d.ACTION_TTL,
        d.ACTION_TAG,
        d.ACTION_PITR,
    ]
    assert any("auto scaling" in w for w in plan.warnings)
    source_count = d.count_items("fintech-sessions", dynamodb=ddb)
    execute = executors.bind(dynamodb=ddb, timeout_s=30, poll_s=0.2)
    try:
        for c in plan.changes:
            execute(c)
        t = d.describe_table(target, dynamodb=ddb)
        assert (
            t.status == "ACTIVE" and t.pitr_status == "ENABLED" and t.ttl_attribute == "expires_at"
        )
        assert set(t.tags) == set(src.tags)
        assert d.count_items(target, dynamodb=ddb) == d.ItemCount(target, source_count.count, True)
        sample = d.sample_items(target, dynamodb=ddb, limit=3)
        assert len(sample) == 3 and all(s["session_id"].startswith("sess-") for s in sample)
    finally:
        for c in d.plan_delete(target).changes:
            execute(c)
    assert not d.table_exists(target, dynamodb=ddb)
    assert d.count_items("fintech-sessions", dynamodb=ddb) == source_count  # source untouched


def test_count_is_paginated_and_capped(ddb):
    name = f"count-{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        big = "x" * 100_000  # ~100 KB items: a 1 MB scan page holds about ten
        for i in range(25):
            ddb.put_item(TableName=name, Item={"k": {"S": str(i)}, "blob": {"S": big}})
        assert d.count_items(name, dynamodb=ddb) == d.ItemCount(name, 25, True)
        capped = d.count_items(name, dynamodb=ddb, max_items=5)
        assert not capped.complete and 5 <= capped.count < 25
    finally:
        ddb.delete_table(TableName=name)


def test_missing_table_is_not_found(ddb):
    with pytest.raises(NotFoundError, match="not found"):
        d.describe_table("no-such-table", dynamodb=ddb)
    assert not d.table_exists("no-such-table", dynamodb=ddb)
