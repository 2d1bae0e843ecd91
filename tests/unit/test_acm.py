"""opslib.aws.acm against the sandbox's AWS API server: imported certificates with their real
NotAfter, which ones have a DaysToExpiry alarm, and the gated alarm plan (checked with the AWS CLI)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import uuid

import pytest

from opslib.aws import acm as acmm
from opslib.clients import aws_client
from opslib.core import executors
from opslib.core.plans import ChangeStatus
from opslib.safety import gate
from opslib.sandbox.scenarios.certs import key_pem, make_cert, pem, sandbox_ca

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def imported(sandbox):
    acm = aws_client("acm")
    _root, inter = sandbox_ca()
    domain = f"t{uuid.uuid4().hex[:6]}.fintech.example"
    cert, key = make_cert(domain, days=12, issuer=inter, sans=(domain, f"*.{domain}"))
    arn = acm.import_certificate(
        Certificate=pem(cert), PrivateKey=key_pem(key), CertificateChain=pem(inter[0])
    )["CertificateArn"]
    yield acm, arn, domain
    acm.delete_certificate(CertificateArn=arn)


def test_certificates_report_not_after_status_and_renewal(imported):
    acm, arn, domain = imported
    certs, findings = acmm.certificates(acm=acm)
    assert findings == []
    mine = next(c for c in certs if c.arn == arn)
    assert (mine.domain, mine.status, mine.type) == (domain, "ISSUED", "IMPORTED")
    assert set(mine.sans) == {domain, f"*.{domain}"}
    assert 11.9 < mine.days_left() <= 12.0
    assert mine.not_after.tzinfo is not None
    assert mine.renewal_eligibility == "INELIGIBLE"  # imported: ACM does not renew it


def test_alarm_plan_covers_only_certificates_without_one_and_applies(imported):
    acm, arn, domain = imported
    cw = aws_client("cloudwatch")
    certs, _ = acmm.certificates(acm=acm)
    mine = [c for c in certs if c.arn == arn]
    alarmed, found = acmm.alarmed_certificates(cloudwatch=cw)
    assert found == [] and arn not in alarmed
    plan = acmm.plan_alarms(mine, alarmed, warn_days=30)
    assert [c.action for c in plan.changes] == [acmm.ALARM_ACTION]
    assert plan.changes[0].params["CertificateArn"] == arn
    assert gate(plan, dry_run=True, approved_by="", execute=executors.bind(cloudwatch=cw)) is None
    assert arn not in acmm.alarmed_certificates(cloudwatch=cw)[0]  # dry run: nothing created
    res = gate(plan, dry_run=False, approved_by="t", execute=executors.bind(cloudwatch=cw))
    assert [o.status for o in res.outcomes] == [ChangeStatus.APPLIED]
    assert arn in acmm.alarmed_certificates(cloudwatch=cw)[0]
    assert acmm.plan_alarms(mine, acmm.alarmed_certificates(cloudwatch=cw)[0], warn_days=30).empty
    name = plan.changes[0].params["AlarmName"]
    if shutil.which("aws"):  # the real AWS CLI reads the same alarm from the local server
        out = subprocess.run(
            ["aws", "cloudwatch", "describe-alarms", "--alarm-names", name, "--output", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "AWS_PAGER": ""},
        )
        assert out.returncode == 0, out.stderr
        alarm = json.loads(out.stdout)["MetricAlarms"][0]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (
            "AWS/CertificateManager",
            "DaysToExpiry",
            30.0,
        )
        assert alarm["Dimensions"] == [{"Name": "CertificateArn", "Value": arn}]
    cw.delete_alarms(AlarmNames=[name])


def test_denied_listing_is_a_finding_not_a_traceback(sandbox):
    from botocore.exceptions import ClientError

    class Denied:
        def get_paginator(self, name):
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListCertificates"
            )

    certs, findings = acmm.certificates(acm=Denied())
    assert certs == [] and findings[0].severity == "error"
    assert "AccessDeniedError" in findings[0].title and "permission" in findings[0].evidence


def test_alarm_names_are_unique_and_safe():
    c = acmm.AcmCertificate(
        "arn:aws:acm:us-east-1:1:certificate/abcdef12-3456",
        "*.fintech.example",
        (),
        "ISSUED",
        "AMAZON_ISSUED",
        dt.datetime.now(dt.UTC),
        "",
        (),
        "ELIGIBLE",
        "",
    )
    assert acmm.alarm_name(c) == "acm-days-to-expiry-wildcard.fintech.example-abcdef12"
