"""The optional endpoint-secret cutover against the sandbox AWS server."""

from __future__ import annotations

import json
import uuid

import pytest

from opslib import clients
from opslib.aws import secrets
from opslib.core import executors
from opslib.core.errors import NotFoundError, OpslibError

pytestmark = pytest.mark.timeout(120)


def test_secret_cutover_keeps_previous_version(sandbox):
    sm = clients.aws_client("secretsmanager")
    name = f"unit/{uuid.uuid4().hex[:6]}"
    sm.create_secret(
        Name=name,
        SecretString=json.dumps({"host": "old.example", "port": 5432, "password": "pw-x"}),
    )
    plan = secrets.plan_cutover(name, "new.example", secretsmanager=sm)
    change = plan.changes[0]
    assert change.action == secrets.ACTION_PUT
    assert "old.example -> new.example" in change.effect
    assert "pw-x" not in json.dumps(change.to_dict())  # the secret's content never enters the plan
    execute = executors.bind(secretsmanager=sm)
    out = execute(change)
    cur = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    prev = json.loads(
        sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"]
    )
    assert cur == {"host": "new.example", "port": 5432, "password": "pw-x"}
    assert (
        prev["host"] == "old.example"
        and out.data["previous_version"] == change.params["expected_version"]
    )
    with pytest.raises(OpslibError, match="changed since the plan"):
        execute(change)  # the plan pinned the old version
    with pytest.raises(NotFoundError):
        secrets.plan_cutover("unit/none", "x", secretsmanager=sm)
