"""Route53: point a CNAME at a restored endpoint (the restore procedure's "update the Route53
CNAME" step), planned and gated like every change, with the old value kept for the way back.

``plan_upsert_cname`` reads the record as it is and plans one ``ChangeResourceRecordSets``
UPSERT; the change's params keep the previous record set (``previous``) so the evidence holds
the value to put back. The handler re-reads the record before it writes: if someone changed it
between plan and apply, it refuses (ConflictError) instead of overwriting their change. The
handler of the planned action is registered in :mod:`opslib.core.executors`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.errors import BadInputError, ConflictError, NotFoundError, PreflightError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan

ACTION_CHANGE = "route53:ChangeResourceRecordSets"
DEFAULT_TTL = 60

_ZONE_ID = re.compile(r"^[A-Z0-9]{1,32}$")
_LABEL = re.compile(r"^(\*|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)$")

__all__ = [
    "ACTION_CHANGE",
    "DnsRecord",
    "change_record_sets",
    "check_record",
    "current_record",
    "parse_record",
    "plan_upsert_cname",
    "rollback_command",
]


@dataclass(frozen=True)
class DnsRecord:
    """One record set as Route53 holds it (the parts a CNAME cutover and its way back need)."""

    zone_id: str
    name: str  # fully qualified, with the trailing dot
    type: str
    ttl: int | None
    values: tuple[str, ...]
    alias_target: str = ""  # an alias record's DNSName ("" for a plain record)
    set_identifier: str = ""  # weighted/latency/failover records

    def to_record_set(self) -> dict[str, Any]:
        """The ResourceRecordSet that puts this record back as it was."""
        rs: dict[str, Any] = {"Name": self.name, "Type": self.type}
        if self.set_identifier:
            rs["SetIdentifier"] = self.set_identifier
        if self.alias_target:
            rs["AliasTarget"] = {"DNSName": self.alias_target}
        else:
            rs["TTL"] = self.ttl if self.ttl is not None else DEFAULT_TTL
            rs["ResourceRecords"] = [{"Value": v} for v in self.values]
        return rs

    def describe(self) -> str:
        if self.alias_target:
            return f"{self.type} alias -> {self.alias_target}"
        return f"{self.type} {', '.join(self.values)} (TTL {self.ttl})"


def _fqdn(name: str) -> str:
    return name.strip().rstrip(".").lower() + "."


def parse_record(value: str, *, parameter: str = "route53_record") -> tuple[str, str]:
    """``zone_id/name`` -> (zone id, fully qualified name); BadInputError naming the parameter."""
    v = (value or "").strip()
    v = v.removeprefix("/").removeprefix("hostedzone/")
    zone, _, name = v.partition("/")
    zone, name = zone.strip(), name.strip()
    labels = name.rstrip(".").split(".") if name else []
    if not _ZONE_ID.match(zone) or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise BadInputError(
            f"{parameter} {value!r} is not zone_id/name. Give the hosted zone id and the record "
            "name, e.g. Z0123456789ABCDEFGHIJ/db.example.com (aws route53 list-hosted-zones)."
        )
    return zone, _fqdn(name)


def _zone_name(zone_id: str, *, route53: Any) -> str:
    try:
        zone = route53.get_hosted_zone(Id=zone_id)["HostedZone"]
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
            raise NotFoundError(
                f"Hosted zone {zone_id!r} not found. Check the zone id in route53_record "
                "(aws route53 list-hosted-zones)."
            ) from exc
        raise translate_aws_error(exc, f"route53:GetHostedZone {zone_id}") from exc
    return _fqdn(zone["Name"])


def current_record(zone_id: str, name: str, *, route53: Any) -> DnsRecord | None:
    """The record set(s) at ``name`` (any type; the first one), or None when there is none."""
    fq = _fqdn(name)
    try:
        page = route53.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=fq, MaxItems="10"
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"route53:ListResourceRecordSets {zone_id}") from exc
    for rs in page.get("ResourceRecordSets", []):
        if _fqdn(rs["Name"].replace("\\052", "*")) != fq:
            continue
        alias = (rs.get("AliasTarget") or {}).get("DNSName", "")
        return DnsRecord(
            zone_id=zone_id,
            name=fq,
            type=rs["Type"],
            ttl=int(rs["TTL"]) if rs.get("TTL") is not None else None,
            values=tuple(r["Value"] for r in rs.get("ResourceRecords", [])),
            alias_target=alias,
            set_identifier=rs.get("SetIdentifier", ""),
        )
    return None


def check_record(zone_id: str, name: str, *, route53: Any) -> DnsRecord | None:
    """Read only, before anything changes: the zone exists, ``name`` lies in it, and a CNAME
    can go there (no other record type, no routing policy). Returns the current record."""
    zone_name = _zone_name(zone_id, route53=route53)
    fq = _fqdn(name)
    if fq != zone_name and not fq.endswith("." + zone_name):
        raise PreflightError(
            f"Record {fq} is not in hosted zone {zone_id} ({zone_name}). Give a name inside the zone."
        )
    if fq == zone_name:
        raise PreflightError(f"{fq} is the zone apex: a CNAME is not allowed there.")
    cur = current_record(zone_id, fq, route53=route53)
    if cur is not None and cur.type != "CNAME":
        raise PreflightError(
            f"{fq} holds a {cur.describe()} record: a CNAME cannot replace it in place. Change "
            "it by hand, or give a record name that is a CNAME."
        )
    if cur is not None and cur.set_identifier:
        raise PreflightError(
            f"{fq} is a routing-policy record (set {cur.set_identifier!r}): update it by hand."
        )
    return cur


def rollback_command(zone_id: str, previous: DnsRecord | None, name: str) -> str:
    """The AWS CLI call that puts the record back as it was before the cutover."""
    if previous is None:
        return (
            f"aws route53 change-resource-record-sets --hosted-zone-id {zone_id} --change-batch "
            f'\'{{"Changes":[{{"Action":"DELETE","ResourceRecordSet":<the record set now at {name}>}}]}}\' '
            "(the record did not exist before)"
        )
    batch = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": previous.to_record_set()}]}
    return (
        f"aws route53 change-resource-record-sets --hosted-zone-id {zone_id} "
        f"--change-batch '{json.dumps(batch, separators=(',', ':'))}'"
    )


def plan_upsert_cname(
    zone_id: str, name: str, new_value: str, *, route53: Any, ttl: int | None = None
) -> Plan:
    """Plan to UPSERT ``name`` as a CNAME to ``new_value``; the previous record goes in the params."""
    if not new_value:
        raise BadInputError("The restored target has no endpoint yet; run the restore first.")
    cur = check_record(zone_id, name, route53=route53)
    fq = _fqdn(name)
    ttl = ttl or (cur.ttl if cur is not None and cur.ttl else DEFAULT_TTL)
    record_set = {
        "Name": fq,
        "Type": "CNAME",
        "TTL": int(ttl),
        "ResourceRecords": [{"Value": new_value}],
    }
    old = cur.describe() if cur is not None else "(no record)"
    params: dict[str, Any] = {
        "HostedZoneId": zone_id,
        "ChangeBatch": {
            "Comment": f"opslib pitr-restore cutover to {new_value}",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": record_set}],
        },
        "previous": cur.to_record_set() if cur is not None else None,
        "rollback": rollback_command(zone_id, cur, fq),
    }
    return Plan(
        title=f"Route53 cutover: {fq} -> {new_value}",
        changes=(
            Change(
                ACTION_CHANGE,
                f"{zone_id}/{fq}",
                f"UPSERT CNAME {fq}: {old} -> {new_value} (TTL {ttl}); the old value is kept in "
                "the evidence for the way back",
                params,
            ),
        ),
        warnings=(
            f"Clients see the new value once their cached answer expires (TTL {cur.ttl if cur else ttl} s).",
            f"Way back: {params['rollback']}",
        ),
    )


def _same(cur: DnsRecord | None, previous: dict[str, Any] | None) -> bool:
    if previous is None:
        return cur is None
    return cur is not None and cur.to_record_set() == previous


@executors.register(ACTION_CHANGE)
def change_record_sets(change: Change, *, route53: Any) -> ChangeOutcome:
    """Apply the UPSERT; refuses if the record changed since the plan (someone else moved it)."""
    p = change.params
    rs = p["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]
    cur = current_record(p["HostedZoneId"], rs["Name"], route53=route53)
    if not _same(cur, p.get("previous")):
        raise ConflictError(
            f"Record {rs['Name']} changed since the plan (now {cur.describe() if cur else '(none)'}); "
            "plan the cutover again."
        )
    try:
        out = route53.change_resource_record_sets(
            HostedZoneId=p["HostedZoneId"], ChangeBatch=p["ChangeBatch"]
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"{change.action} {change.target}") from exc
    info = out.get("ChangeInfo") or {}
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"{rs['Name']} CNAME {rs['ResourceRecords'][0]['Value']} ({info.get('Status', '')}); "
        f"previous: {cur.describe() if cur else '(no record)'}",
        {
            "change_id": info.get("Id", ""),
            "change_status": info.get("Status", ""),
            "previous": p.get("previous"),
            "rollback": p.get("rollback", ""),
        },
    )
