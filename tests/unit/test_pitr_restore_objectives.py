"""pitr-restore preflight objectives on the sandbox: epoch restore times, retention, RPO, Route53."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from opslib import clients
from opslib.core.errors import NotFoundError
from opslib.core.plans import apply, approve
from opslib.runbooks import pitr_restore
from opslib.runbooks.pitr_restore import CheckResult, Engine, RestoreStatus

pytestmark = pytest.mark.timeout(600)  # the first test pays for the sandbox start


def checks(pre) -> dict:
    return {c.check: c for c in pre.checks}


@pytest.fixture(scope="module")
def aws(sandbox):
    return {s: clients.aws_client(s) for s in ("rds", "dynamodb", "route53")}


def test_dynamodb_epoch_restore_time_is_planned_with_iso_and_epoch(aws):
    cl = pitr_restore.RestoreClients(dynamodb=aws["dynamodb"])
    latest = pitr_restore.preflight(
        pitr_restore.inputs(
            engine="dynamodb", source="fintech-sessions", target=f"t-{uuid.uuid4().hex[:6]}"
        ),
        clients=cl,
    )
    # moto's PITR window is one instant (earliest == latest == the request), so no whole epoch
    # second lies inside it: the parsed epoch time is planned on the real source as read
    t = 1705929600
    req = pitr_restore.inputs(
        engine="dynamodb",
        source="fintech-sessions",
        target=f"t-{uuid.uuid4().hex[:6]}",
        restore_time=t,
    )
    assert req.restore_time.timestamp() == t
    pre = dataclasses.replace(latest, request=req, restore_time=req.restore_time)
    restore = pitr_restore.plan(pre).changes[0]
    assert restore.action == "dynamodb:RestoreTableToPointInTime"
    assert (
        f"(epoch {t})" in restore.effect
        and pitr_restore.model.iso(pre.restore_time)[:19] in restore.effect
    )
    assert restore.params["RestoreDateTime"].startswith(
        pitr_restore.model.iso(pre.restore_time)[:19]
    )
    latest_effect = pitr_restore.plan(latest).changes[0].effect
    assert "latest restorable time (now " in latest_effect and "epoch " in latest_effect


def test_retention_warns_below_min_retention_days_and_rpo_is_checked(aws):
    cl = pitr_restore.RestoreClients(rds=aws["rds"])
    seven = pitr_restore.preflight(
        pitr_restore.inputs(engine="rds", source="fintech-banking-db", rpo_minutes=15), clients=cl
    )
    ret = checks(seven)["backup retention"]
    assert ret.result is CheckResult.WARNING and "7 days" in ret.detail and "35" in ret.detail
    assert any(w.startswith("backup retention") for w in pitr_restore.preflight_warnings(seven))
    rpo = checks(seven)["RPO (latest restorable time lag)"]
    # moto reports LatestRestorableTime = now, so the lag is ~0 and the RPO is met
    assert seven.rpo.met is True and rpo.result is CheckResult.OK and "met" in rpo.detail
    seven_ok = pitr_restore.preflight(
        pitr_restore.inputs(engine="rds", source="fintech-banking-db", min_retention_days=7),
        clients=cl,
    )
    assert checks(seven_ok)["backup retention"].result is CheckResult.OK
    aurora = pitr_restore.preflight(
        pitr_restore.inputs(engine="aurora", source="fintech-cluster"), clients=cl
    )
    assert checks(aurora)["backup retention"].result is CheckResult.OK
    assert checks(aurora)["RPO (latest restorable time lag)"].result is CheckResult.SKIPPED


def test_route53_cutover_through_the_flow(aws):
    r53 = aws["route53"]
    zname = f"z{uuid.uuid4().hex[:8]}.example.com"
    zid = r53.create_hosted_zone(Name=zname, CallerReference=uuid.uuid4().hex)["HostedZone"][
        "Id"
    ].rsplit("/", 1)[-1]
    old = {
        "Name": f"db.{zname}.",
        "Type": "CNAME",
        "TTL": 120,
        "ResourceRecords": [{"Value": "fintech-cluster.cluster-old.rds.amazonaws.com"}],
    }
    r53.change_resource_record_sets(
        HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": old}]}
    )
    req = pitr_restore.inputs(
        engine="aurora", source="fintech-cluster", route53_record=f"{zid}/db.{zname}"
    )
    cl = pitr_restore.connect(req)
    assert cl.route53 is not None
    pre = pitr_restore.preflight(req, clients=cl)
    assert "fintech-cluster.cluster-old" in checks(pre)["Route53 record"].detail
    not_yet = pitr_restore.RestoreOutcome(Engine.AURORA, RestoreStatus.DRY_RUN, pre.target)
    assert pitr_restore.plan_route53(pre, not_yet, clients=cl).empty
    done = pitr_restore.RestoreOutcome(
        Engine.AURORA,
        RestoreStatus.VALIDATED,
        pre.target,
        endpoint="rec.cluster-new.rds.amazonaws.com",
    )
    dns_plan = pitr_restore.plan_route53(pre, done, clients=cl)
    assert pitr_restore.route53_previous(dns_plan) == old
    assert "fintech-cluster.cluster-old" in pitr_restore.route53_rollback(dns_plan)
    approval = approve(dns_plan, dry_run=False, approved_by="carol")
    result = apply(dns_plan, approval=approval, execute=pitr_restore.executor(pre, clients=cl))
    step = pitr_restore.route53_outcome(dns_plan, result, dry_run=False)
    assert step.applied
    now = r53.list_resource_record_sets(
        HostedZoneId=zid, StartRecordName=f"db.{zname}.", MaxItems="1"
    )
    assert now["ResourceRecordSets"][0]["ResourceRecords"] == [
        {"Value": "rec.cluster-new.rds.amazonaws.com"}
    ]
    # without route53_record the executor refuses the action (it was not planned)
    plain = pitr_restore.preflight(
        pitr_restore.inputs(engine="aurora", source="fintech-cluster"), clients=cl
    )
    refused = apply(dns_plan, approval=approval, execute=pitr_restore.executor(plain, clients=cl))
    assert refused.failed


def test_missing_hosted_zone_is_refused_in_preflight(aws):
    req = pitr_restore.inputs(
        engine="aurora", source="fintech-cluster", route53_record="ZNOSUCHZONE9/db.example.com"
    )
    with pytest.raises(NotFoundError, match="Hosted zone") as info:
        pitr_restore.preflight(req, clients=pitr_restore.connect(req))
    assert info.value.exit_code == 2
