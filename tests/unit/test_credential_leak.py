"""credential-leak: the catalog's one identifier exception, input checks, IAM and CloudTrail
adapters against the session sandbox, and denied APIs through the fault proxy."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from opslib import catalog
from opslib.aws import cloudtrail as trail
from opslib.aws import iam as iam_mod
from opslib.core.errors import AccessDeniedError, BadInputError, SecretInParameterError
from opslib.core.findings import Severity
from opslib.runbooks import credential_leak as flow
from tests.unit.faultproxy import FaultProxy

KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example id
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example secret key
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


# -- the catalog exception -----------------------------------------------------------------------


def test_credential_leak_may_carry_an_access_key_id_in_access_key_id_only():
    info = catalog.resolve("credential-leak")
    assert catalog.validate(info, {"access_key_id": KEY})["access_key_id"] == KEY
    assert catalog.validate(info, {"access_key_id": "ASIAY34FZKBOKMUTVV7A"})
    with pytest.raises(SecretInParameterError, match="iam_user carries an AWS access key id"):
        catalog.validate(info, {"iam_user": KEY})


def test_another_runbook_with_an_access_key_id_is_still_refused():
    info = catalog.resolve("cert-expiry")
    with pytest.raises(SecretInParameterError, match="an AWS access key id"):
        catalog.validate(info, {"endpoints": KEY})


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (SECRET, "a secret access key"),
        (f"{KEY} {SECRET}", "a secret access key"),
        (f"{KEY};password=hunter2hunter2", "a password in a conninfo"),
        ("Bearer abcdefghijklmnop", "a bearer token"),
    ],
)
def test_credential_leak_refuses_any_other_secret_in_access_key_id(value, kind):
    info = catalog.resolve("credential-leak")
    with pytest.raises(SecretInParameterError) as err:
        catalog.validate(info, {"access_key_id": value})
    assert kind in str(err.value) and "may carry an AWS access key id only" in str(err.value)
    assert SECRET not in str(err.value)


def test_the_exception_is_keyed_by_runbook_and_parameter():
    assert catalog.IDENTIFIER_PARAMETERS == {
        "credential-leak": {"access_key_id": "an AWS access key id"}
    }
    catalog.check_secret("access_key_id", KEY, allowed="an AWS access key id")
    with pytest.raises(SecretInParameterError):
        catalog.check_secret("access_key_id", KEY)  # without the allowance: refused as before


# -- inputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give access_key_id (AKIA.../ASIA...), iam_user or iam_role"),
        ({"access_key_id": "AKIA1234"}, "is not an access key id"),
        ({"access_key_id": "akiaiosfodnn7example"}, "is not an access key id"),
        ({"access_key_id": SECRET}, "looks like a secret access key"),
        ({"iam_user": "bad user!"}, "is not an IAM name"),
        ({"iam_role": "r", "lookback_hours": 0}, "lookback_hours=0"),
        ({"iam_role": "r", "lookback_hours": 2161}, "lookback_hours=2161"),
        ({"access_key_id": "ASIAY34FZKBOKMUTVV7A", "contain": True}, "needs iam_role"),
    ],
)
def test_bad_inputs_are_one_clear_refusal(params, message):
    with pytest.raises(BadInputError, match="nothing was read or changed") as err:
        flow.inputs(**params)
    assert message in str(err.value)
    assert SECRET not in str(err.value)


def test_inputs_accept_role_arns_and_never_show_the_full_key():
    inp = flow.inputs(
        access_key_id=f" {KEY} ", iam_role="arn:aws:iam::123456789012:role/ci/deployer"
    )
    assert inp.access_key_id == KEY and inp.iam_role == "deployer"
    assert inp.key_masked == "AKIA...MPLE" and KEY not in repr(inp) and KEY not in inp.describe()
    assert iam_mod.mask_keys(f"The Access Key with id {KEY} cannot be found") == (
        "The Access Key with id AKIA...MPLE cannot be found"
    )


# -- CloudTrail grouping (CloudTrail-shaped records: moto has no LookupEvents) --------------------


def _event(name, source, region, minutes, *, error="", ip="203.0.113.7", n=0):
    body = {
        "eventVersion": "1.08",
        "eventID": f"{name}-{region}-{minutes}-{n}",
        "eventTime": (NOW - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventName": name,
        "eventSource": source,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::123456789012:user/ci-deploy",
            "accessKeyId": KEY,
            "userName": "ci-deploy",
        },
        **({"errorCode": error} if error else {}),
    }
    return {
        "EventId": body["eventID"],
        "EventName": name,
        "EventTime": NOW - dt.timedelta(minutes=minutes),
        "EventSource": source,
        "CloudTrailEvent": json.dumps(body),
    }


def test_events_are_grouped_with_the_unusual_ones_first():
    raw = [
        *[
            _event("DescribeInstances", "ec2.amazonaws.com", "eu-central-1", m, n=m)
            for m in range(5)
        ],
        _event("GetSecretValue", "secretsmanager.amazonaws.com", "eu-central-1", 9),
        _event("CreateAccessKey", "iam.amazonaws.com", "us-east-1", 8),
        _event("ListBuckets", "s3.amazonaws.com", "ap-southeast-1", 7, ip="198.51.100.9"),
        _event(
            "GetSecretValue",
            "secretsmanager.amazonaws.com",
            "eu-central-1",
            6,
            error="AccessDenied",
        ),
    ]
    events = [trail.parse_event(e) for e in raw]
    assert events[0].access_key == "AKIA...MPLE" and events[0].principal.endswith("user/ci-deploy")
    groups = trail.group_events(events, usual_regions={"eu-central-1"})
    order = [(g.name, g.unusual) for g in groups]
    assert order[0] == ("ListBuckets", ("new region ap-southeast-1", "data access"))
    assert order[1] == ("GetSecretValue", ("data access", "denied/failed: AccessDenied"))
    assert order[2] == ("CreateAccessKey", ("IAM/STS call",))  # us-east-1 is IAM's home
    assert order[-1] == ("DescribeInstances", ()) and groups[-1].count == 5
    found = trail.unusual_findings(groups, who="AKIA...MPLE")
    assert found[0].severity is Severity.CRITICAL and "new region ap-southeast-1" in found[0].title
    assert len(found) == 3 and all(KEY not in f.title + f.evidence for f in found)


# -- against the sandbox ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def leak(sandbox):
    from opslib import sandbox as sb

    errors = sb.seed(["leak"])
    assert errors.get("leak") == "", errors
    return sb.presets("credential-leak")


def _client(service: str, url: str, region: str = "us-east-1"):
    import boto3

    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_moto_lookup_events_is_not_implemented_and_the_finding_says_so(sandbox, leak):
    """Measured: moto 5.2.5 answers every LookupEvents with HTTP 500 (not implemented)."""
    ct = _client("cloudtrail", sandbox.aws_endpoint)
    now = dt.datetime.now(dt.UTC)
    res = trail.lookup_events(
        "AccessKeyId",
        leak["access_key_id"],
        cloudtrail=ct,
        start=now - dt.timedelta(hours=1),
        end=now,
        label="AKIA...x",
    )
    assert res.events == () and res.available is False
    (f,) = res.findings
    assert f.severity is Severity.WARNING and "unavailable on this endpoint" in f.title
    assert "(moto 5.2.5) does not implement CloudTrail LookupEvents" in f.evidence
    assert leak["access_key_id"] not in f.evidence


def test_owner_last_use_and_readable_secrets_from_the_sandbox(sandbox, leak):
    iam = _client("iam", sandbox.aws_endpoint)
    used = iam_mod.key_last_used(leak["access_key_id"], iam=iam)
    assert used.user == "ci-deploy" and used.date is not None
    assert used.region == "eu-west-1" and used.service == "secretsmanager"
    keys = iam_mod.user_keys("ci-deploy", iam=iam)
    assert [(k.masked, k.status) for k in keys] == [
        (iam_mod.mask_key(leak["access_key_id"]), "Active")
    ]
    docs = iam_mod.policy_documents("user", "ci-deploy", iam=iam)
    readable = iam_mod.readable_secrets(
        docs, secretsmanager=_client("secretsmanager", sandbox.aws_endpoint)
    )
    assert "fintech/ci-deploy-token" in [s.name for s in readable]
    assert all(s.name.startswith("fintech/") for s in readable)
    with pytest.raises(BadInputError, match="not in this account"):
        iam_mod.key_last_used("AKIAAAAAAAAAAAAAAAAA", iam=iam)


def test_denied_lookup_events_is_a_finding_and_the_investigation_goes_on(
    sandbox, leak, monkeypatch
):
    with FaultProxy(
        sandbox.aws_endpoint, errors={"LookupEvents": "AccessDeniedException"}
    ) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        inp = flow.inputs(access_key_id=leak["access_key_id"], lookback_hours=2)
        inv = flow.investigate(inp, flow.connect(inp))
        assert proxy.counts["error:LookupEvents"] >= 1
    assert inv.principal.endswith(":user/ci-deploy") and inv.cloudtrail_available is False
    denied = [f for f in inv.findings if f.source == "cloudtrail"]
    assert denied and denied[0].severity is Severity.ERROR
    assert "access denied" in denied[0].title and "cloudtrail:LookupEvents" in denied[0].next_action
    assert any(f.severity is Severity.CRITICAL and "is ACTIVE" in f.title for f in inv.findings)
    assert inv.findings[0].severity is Severity.CRITICAL  # the live key outranks the lookup error


def test_denied_iam_read_is_a_clear_refusal_naming_the_permission(sandbox, leak, monkeypatch):
    with FaultProxy(sandbox.aws_endpoint, errors={"GetAccessKeyLastUsed": "AccessDenied"}) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        inp = flow.inputs(access_key_id=leak["access_key_id"])
        with pytest.raises(AccessDeniedError, match="iam:GetAccessKeyLastUsed AKIA") as err:
            flow.investigate(inp, flow.connect(inp))
    assert leak["access_key_id"] not in str(err.value) and "permission" in str(err.value)


def test_containment_is_planned_only_with_contain_and_never_deletes(sandbox, leak):
    inp = flow.inputs(access_key_id=leak["access_key_id"], iam_role="ci-deploy-role", contain=True)
    inv = flow.investigate(inp, flow.connect(inp))
    plan = flow.plan_containment(inp, inv)
    assert [c.action for c in plan.changes] == [
        iam_mod.DEACTIVATE_ACTION,
        iam_mod.REVOKE_SESSIONS_ACTION,
    ]
    assert all("Delete" not in c.action for c in plan.changes)
    assert (
        leak["access_key_id"] not in str(plan) and leak["access_key_id"] not in plan._repr_html_()
    )
    again = flow.plan_containment(inp, flow.investigate(inp, flow.connect(inp)))
    assert again.digest() == plan.digest()  # the cut-off is stamped at apply: approvals hold
    off = flow.plan_containment(flow.inputs(access_key_id=leak["access_key_id"]), inv)
    assert off.empty and "contain=False" in off.warnings[0]
