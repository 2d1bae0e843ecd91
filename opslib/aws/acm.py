"""ACM certificates (domain, NotAfter, status, in use by, renewal eligibility) and the
CloudWatch ``DaysToExpiry`` alarms that warn before they expire.

The certificate procedure: list the certificates, describe each for NotAfter and status, and
keep a ``DaysToExpiry`` alarm (namespace ``AWS/CertificateManager``, dimension
``CertificateArn``, daily minimum <= 30) on every one. ACM renews the certificates it issued
and can validate; imported ones (and those failing validation) need a person, which is what
the renewal fields say. Alarms are planned here and created only through the gate; the
handler is registered in :mod:`opslib.core.executors`.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from botocore.exceptions import ClientError

from opslib.clients import translate_aws_error
from opslib.core import executors
from opslib.core.findings import Finding, error_finding
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan

ALARM_ACTION = "cloudwatch:PutMetricAlarm DaysToExpiry"
NAMESPACE = "AWS/CertificateManager"
METRIC = "DaysToExpiry"
ALARM_PREFIX = "acm-days-to-expiry-"
MAX_ALARMS = 100  # one plan never creates more alarms than this


@dataclass(frozen=True)
class AcmCertificate:
    """One ACM certificate as DescribeCertificate reports it (public facts only)."""

    arn: str
    domain: str
    sans: tuple[str, ...]
    status: str  # ISSUED, PENDING_VALIDATION, EXPIRED, ...
    type: str  # AMAZON_ISSUED, IMPORTED, PRIVATE
    not_after: _dt.datetime | None
    issuer: str
    in_use_by: tuple[str, ...]
    renewal_eligibility: str  # ELIGIBLE / INELIGIBLE
    renewal_status: str  # PENDING_AUTO_RENEWAL, SUCCESS, FAILED, ... ("" when none)

    def days_left(self, now: _dt.datetime | None = None) -> float | None:
        if self.not_after is None:
            return None
        return (self.not_after - (now or _dt.datetime.now(_dt.UTC))).total_seconds() / 86400


def _utc(t) -> _dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)


def certificates(*, acm) -> tuple[list[AcmCertificate], list[Finding]]:
    """Every certificate in the client's region, described; a failed describe is a finding."""
    found: list[Finding] = []
    out: list[AcmCertificate] = []
    try:
        summaries = [
            c
            for page in acm.get_paginator("list_certificates").paginate(
                Includes={
                    "keyTypes": [
                        "RSA_1024",
                        "RSA_2048",
                        "RSA_3072",
                        "RSA_4096",
                        "EC_prime256v1",
                        "EC_secp384r1",
                        "EC_secp521r1",
                    ]
                }
            )
            for c in page["CertificateSummaryList"]
        ]
    except ClientError as exc:
        return [], [error_finding("acm", translate_aws_error(exc, "acm:ListCertificates"))]
    for s in summaries:
        arn = s["CertificateArn"]
        try:
            c = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        except ClientError as exc:
            found.append(
                error_finding(
                    f"acm:{arn}", translate_aws_error(exc, f"acm:DescribeCertificate {arn}")
                )
            )
            continue
        renewal = c.get("RenewalSummary") or {}
        out.append(
            AcmCertificate(
                arn=arn,
                domain=c.get("DomainName", ""),
                sans=tuple(c.get("SubjectAlternativeNames") or ()),
                status=c.get("Status", ""),
                type=c.get("Type", ""),
                not_after=_utc(c.get("NotAfter")),
                issuer=c.get("Issuer", ""),
                in_use_by=tuple(c.get("InUseBy") or ()),
                renewal_eligibility=c.get("RenewalEligibility", ""),
                renewal_status=renewal.get("RenewalStatus", ""),
            )
        )
    return out, found


def alarmed_certificates(*, cloudwatch) -> tuple[set[str], list[Finding]]:
    """ARNs of certificates that already have a ``DaysToExpiry`` alarm (any name, any threshold)."""
    arns: set[str] = set()
    try:
        pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
        for page in pages:
            for a in page.get("MetricAlarms", []):
                if a.get("Namespace") == NAMESPACE and a.get("MetricName") == METRIC:
                    arns |= {
                        d["Value"] for d in a.get("Dimensions", []) if d["Name"] == "CertificateArn"
                    }
    except ClientError as exc:
        return arns, [
            error_finding("cloudwatch", translate_aws_error(exc, "cloudwatch:DescribeAlarms"))
        ]
    return arns, []


def alarm_name(cert: AcmCertificate) -> str:
    """A readable, unique alarm name: the prefix, the domain, and the certificate id's start."""
    cid = cert.arn.rsplit("/", 1)[-1][:8]
    domain = re.sub(r"[^A-Za-z0-9._-]", "_", cert.domain.replace("*", "wildcard"))
    return f"{ALARM_PREFIX}{domain}-{cid}"


def plan_alarms(
    certs: list[AcmCertificate],
    alarmed: set[str],
    *,
    warn_days: int,
    alarm_actions: tuple[str, ...] = (),
) -> Plan:
    """Plan a ``DaysToExpiry`` alarm at ``warn_days`` for each certificate that has none."""
    todo = [c for c in certs if c.arn not in alarmed]
    warnings = []
    if len(todo) > MAX_ALARMS:
        warnings.append(
            f"{len(todo)} certificates lack an alarm; this plan creates the first {MAX_ALARMS}"
        )
        todo = todo[:MAX_ALARMS]
    if not alarm_actions:
        warnings.append(
            "the alarms have no action (no SNS topic given): they show in the console only"
        )
    changes = tuple(
        Change(
            action=ALARM_ACTION,
            target=c.domain or c.arn,
            effect=f"alarm {alarm_name(c)} when DaysToExpiry <= {warn_days}",
            params={
                "AlarmName": alarm_name(c),
                "CertificateArn": c.arn,
                "Threshold": int(warn_days),
                "AlarmActions": list(alarm_actions),
            },
        )
        for c in todo
    )
    return Plan(
        title=f"CloudWatch DaysToExpiry alarms at {warn_days} days",
        changes=changes,
        warnings=tuple(warnings),
        limits={"max_alarms": MAX_ALARMS},
    )


@executors.register(ALARM_ACTION)
def put_alarm(change: Change, *, cloudwatch) -> ChangeOutcome:
    """Create one planned alarm (daily minimum of DaysToExpiry <= threshold; missing data breaches
    nothing, since ACM publishes the metric once a day)."""
    p = change.params
    try:
        cloudwatch.put_metric_alarm(
            AlarmName=p["AlarmName"],
            AlarmDescription=f"ACM certificate {change.target} expires within {p['Threshold']} days (opslib cert-expiry)",
            Namespace=NAMESPACE,
            MetricName=METRIC,
            Dimensions=[{"Name": "CertificateArn", "Value": p["CertificateArn"]}],
            Statistic="Minimum",
            Period=86400,
            EvaluationPeriods=1,
            Threshold=float(p["Threshold"]),
            ComparisonOperator="LessThanOrEqualToThreshold",
            TreatMissingData="missing",
            AlarmActions=list(p.get("AlarmActions") or []),
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"cloudwatch:PutMetricAlarm {p['AlarmName']}") from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"alarm {p['AlarmName']} created",
        {"alarm": p["AlarmName"]},
    )
