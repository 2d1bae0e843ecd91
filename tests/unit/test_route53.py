"""opslib.aws.route53 on the sandbox's moto Route53: the CNAME cutover plan, its handler, refusals.

What the runbook wrote is read back with the AWS CLI when ``aws`` is on PATH (a real client
against the emulator), else with a separate boto3 client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from opslib import clients
from opslib.aws import route53
from opslib.core import executors
from opslib.core.errors import BadInputError, ConflictError, NotFoundError, PreflightError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def r53(sandbox):
    return clients.aws_client("route53")


@pytest.fixture
def zone(r53):
    """A fresh hosted zone with db.<zone> CNAME -> the old endpoint and an A record."""
    name = f"z{uuid.uuid4().hex[:8]}.example.com"
    zid = r53.create_hosted_zone(Name=name, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    zid = zid.rsplit("/", 1)[-1]
    r53.change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"db.{name}",
                        "Type": "CNAME",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "old-cluster.cluster-x.rds.amazonaws.com"}],
                    },
                },
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"www.{name}",
                        "Type": "A",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "192.0.2.10"}],
                    },
                },
            ]
        },
    )
    return zid, name


def read_cname(zone_id: str, fqdn: str) -> tuple[str, int]:
    """(value, TTL) of the CNAME at ``fqdn``, read by the AWS CLI (or a separate boto3 client)."""
    if shutil.which("aws"):
        out = subprocess.run(
            [
                "aws",
                "route53",
                "list-resource-record-sets",
                "--hosted-zone-id",
                zone_id,
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "AWS_PAGER": ""},
            timeout=60,
        )
        sets = json.loads(out.stdout)["ResourceRecordSets"]
    else:  # pragma: no cover - depends on the machine
        sets = clients.aws_client("route53").list_resource_record_sets(HostedZoneId=zone_id)[
            "ResourceRecordSets"
        ]
    rs = next(s for s in sets if s["Name"] == fqdn and s["Type"] == "CNAME")
    return rs["ResourceRecords"][0]["Value"], int(rs["TTL"])


@pytest.mark.parametrize(
    "value",
    [
        "",
        "db.example.com",
        "Z1/",
        "/db.example.com",
        "z1/db.example.com",
        "Z1/localhost",
        "Z1/a..b.com",
    ],
)
def test_parse_record_refuses_what_is_not_zone_id_slash_name(value):
    with pytest.raises(BadInputError, match="zone_id/name") as info:
        route53.parse_record(value)
    assert info.value.exit_code == 2


def test_parse_record_normalises():
    assert route53.parse_record("Z0ABC/DB.Example.com") == ("Z0ABC", "db.example.com.")
    assert route53.parse_record("hostedzone/Z0ABC/db.example.com.") == ("Z0ABC", "db.example.com.")


def test_upsert_plan_keeps_the_old_value_and_the_handler_applies_it(r53, zone):
    zid, name = zone
    fq = f"db.{name}."
    new = "fintech-rec.cluster-y.us-east-1.rds.amazonaws.com"
    plan = route53.plan_upsert_cname(zid, f"db.{name}", new, route53=r53)
    (change,) = plan.changes
    assert change.action == route53.ACTION_CHANGE == "route53:ChangeResourceRecordSets"
    assert change.target == f"{zid}/{fq}"
    assert "old-cluster.cluster-x.rds.amazonaws.com" in change.effect and new in change.effect
    prev = change.params["previous"]
    assert prev == {
        "Name": fq,
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": "old-cluster.cluster-x.rds.amazonaws.com"}],
    }
    assert "UPSERT" in change.params["rollback"] and "old-cluster" in change.params["rollback"]
    rs = change.params["ChangeBatch"]["Changes"][0]
    assert rs["Action"] == "UPSERT" and rs["ResourceRecordSet"]["TTL"] == 300  # keeps its TTL
    assert read_cname(zid, fq) == (
        "old-cluster.cluster-x.rds.amazonaws.com",
        300,
    )  # plan: read only

    execute = executors.bind(route53=r53, allowed={route53.ACTION_CHANGE})
    out = execute(change)
    assert out.status.value == "applied" and out.data["previous"] == prev
    assert read_cname(zid, fq) == (new, 300)

    # the way back: the recorded previous record set, UPSERTed again
    r53.change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": out.data["previous"]}]},
    )
    assert read_cname(zid, fq) == ("old-cluster.cluster-x.rds.amazonaws.com", 300)


def test_upsert_of_a_new_record_and_a_record_changed_since_the_plan(r53, zone):
    zid, name = zone
    plan = route53.plan_upsert_cname(zid, f"new.{name}", "a.example.net", route53=r53)
    assert plan.changes[0].params["previous"] is None and "(no record)" in plan.changes[0].effect
    execute = executors.bind(route53=r53)
    assert execute(plan.changes[0]).status.value == "applied"
    assert read_cname(zid, f"new.{name}.") == ("a.example.net", route53.DEFAULT_TTL)

    stale = route53.plan_upsert_cname(zid, f"db.{name}", "b.example.net", route53=r53)
    r53.change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": f"db.{name}",
                        "Type": "CNAME",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "someone-else.example.net"}],
                    },
                }
            ]
        },
    )
    with pytest.raises(ConflictError, match="changed since the plan"):
        execute(stale.changes[0])
    assert read_cname(zid, f"db.{name}.") == ("someone-else.example.net", 300)


def test_refusals_before_anything_changes(r53, zone):
    zid, name = zone
    with pytest.raises(NotFoundError, match="Hosted zone"):
        route53.check_record("ZNOSUCHZONE123", f"db.{name}", route53=r53)
    with pytest.raises(PreflightError, match="holds a A"):
        route53.check_record(zid, f"www.{name}", route53=r53)
    with pytest.raises(PreflightError, match="not in hosted zone"):
        route53.check_record(zid, "db.other-domain.org", route53=r53)
    with pytest.raises(PreflightError, match="zone apex"):
        route53.check_record(zid, name, route53=r53)
    with pytest.raises(BadInputError, match="no endpoint"):
        route53.plan_upsert_cname(zid, f"db.{name}", "", route53=r53)
