"""IAM for a leaked credential: who owns an access key, what the principal may read, and the
two containment changes (deactivate the key, revoke the role's active sessions).

The security-incident procedure says: disable the affected users' and roles' credentials,
review what they did, revoke, contain. Here that is:

- ``GetAccessKeyLastUsed`` names the key's owner and its last use (service, region, date);
  ``ListAccessKeys`` gives the owner's keys and their status;
- the principal's policies (inline, attached, and its groups') are read to list the Secrets
  Manager secrets it could read: those are what to rotate next, since a leaked key may already
  have read them. The evaluation is deliberately simple (Allow/Deny statements on
  ``secretsmanager:GetSecretValue`` and wildcards, conditions ignored, resource policies and
  SCPs not read), so the list errs on the side of rotating too much;
- containment deactivates a key (``UpdateAccessKey Status=Inactive``), never deletes it: the
  key id is what CloudTrail and the post-mortem refer to, and a deactivated key can be
  re-enabled if the wrong one was chosen; and it revokes a role's sessions exactly as the IAM
  console's "Revoke active sessions" does: an inline policy ``AWSRevokeOlderSessions`` that
  denies everything to tokens whose ``aws:TokenIssueTime`` is before the moment of apply.

An access key id is an identifier, not a secret, but it is still only ever shown masked
(``AKIA...XYZW``, :func:`mask_key`): the evidence must not become a catalogue of live key ids.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.errors import NotFoundError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus

DEACTIVATE_ACTION = "iam:UpdateAccessKey Inactive"
REVOKE_SESSIONS_ACTION = "iam:PutRolePolicy AWSRevokeOlderSessions"
REVOKE_POLICY_NAME = "AWSRevokeOlderSessions"  # the name the IAM console uses
KEY_ID_RE = re.compile(r"^(?:AKIA|ASIA)[A-Z0-9]{16}$")
_KEY_ANYWHERE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
READ_SECRET_ACTION = "secretsmanager:GetSecretValue"


def mask_key(key_id: str) -> str:
    """``AKIAIOSFODNN7EXAMPLE`` -> ``AKIA...MPLE``: enough to recognise a key, not to list it."""
    return f"{key_id[:4]}...{key_id[-4:]}" if len(key_id) >= 8 else "****"


def mask_keys(text: str) -> str:
    """Every access key id in ``text`` masked (error messages from IAM quote the id)."""
    return _KEY_ANYWHERE.sub(lambda m: mask_key(m.group(0)), text or "")


def is_temporary(key_id: str) -> bool:
    """ASIA ids are STS session credentials: they cannot be deactivated, only their role revoked."""
    return key_id.startswith("ASIA")


def _utc(t) -> _dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)


def _error(exc: ClientError, what: str):
    """translate_aws_error with every key id in the message masked."""
    err = translate_aws_error(exc, what)
    masked = type(err)(mask_keys(str(err)))
    masked.aws_code = getattr(err, "aws_code", "")  # type: ignore[attr-defined]
    masked.aws_kind = getattr(err, "aws_kind", AwsErrorKind.OTHER)  # type: ignore[attr-defined]
    return masked


@dataclass(frozen=True)
class AccessKey:
    """One long-term access key of a user (the id is kept for the API, shown only masked)."""

    key_id: str = field(repr=False)
    user: str
    status: str  # Active / Inactive
    created: _dt.datetime | None = None
    last_used: _dt.datetime | None = None
    last_service: str = ""
    last_region: str = ""

    @property
    def masked(self) -> str:
        return mask_key(self.key_id)

    def to_row(self) -> dict[str, Any]:
        return {
            "access key": self.masked,
            "user": self.user,
            "status": self.status,
            "created": self.created.strftime("%Y-%m-%d %H:%M UTC") if self.created else "",
            "last used": self.last_used.strftime("%Y-%m-%d %H:%M UTC")
            if self.last_used
            else "never",
            "last service": self.last_service,
            "last region": self.last_region,
        }


@dataclass(frozen=True)
class LastUsed:
    """What ``GetAccessKeyLastUsed`` says: the owner and the last use ("N/A" means never)."""

    user: str
    date: _dt.datetime | None
    service: str
    region: str


def key_last_used(key_id: str, *, iam) -> LastUsed:
    """The key's owner and last use; a key not in this account raises NotFoundError (exit 2)."""
    try:
        resp = iam.get_access_key_last_used(AccessKeyId=key_id)
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND or "NoSuchEntity" in str(exc):
            raise NotFoundError(
                f"Access key {mask_key(key_id)} is not in this account (GetAccessKeyLastUsed: "
                "NoSuchEntity). Check the account and profile you run with; a key deleted already "
                "is gone from IAM, but its past use is still in CloudTrail (LookupEvents by "
                "AccessKeyId, or the trail's S3 logs)."
            ) from exc
        raise _error(exc, f"iam:GetAccessKeyLastUsed {mask_key(key_id)}") from exc
    used = resp.get("AccessKeyLastUsed") or {}
    na = {"N/A", ""}
    return LastUsed(
        user=resp.get("UserName", ""),
        date=_utc(used.get("LastUsedDate")),
        service="" if used.get("ServiceName", "") in na else used["ServiceName"],
        region="" if used.get("Region", "") in na else used["Region"],
    )


def user_keys(user: str, *, iam) -> list[AccessKey]:
    """Every access key of ``user`` with its status and last use."""
    try:
        meta = iam.list_access_keys(UserName=user).get("AccessKeyMetadata", [])
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND or "NoSuchEntity" in str(exc):
            raise NotFoundError(
                f"IAM user {user!r} does not exist in this account: check iam_user and the account."
            ) from exc
        raise _error(exc, f"iam:ListAccessKeys {user}") from exc
    out = []
    for m in meta:
        kid = m["AccessKeyId"]
        used = key_last_used(kid, iam=iam)
        out.append(
            AccessKey(
                kid,
                user,
                m.get("Status", ""),
                _utc(m.get("CreateDate")),
                used.date,
                used.service,
                used.region,
            )
        )
    return out


def principal_arn(kind: str, name: str, *, iam) -> str:
    """The ARN of user or role ``name``; NotFoundError when it does not exist."""
    try:
        if kind == "user":
            return iam.get_user(UserName=name)["User"]["Arn"]
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND or "NoSuchEntity" in str(exc):
            raise NotFoundError(
                f"IAM {kind} {name!r} does not exist in this account: check iam_{kind} and the account."
            ) from exc
        raise _error(exc, f"iam:Get{kind.title()} {name}") from exc


# -- what the principal can read ---------------------------------------------------------------


def _doc(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    return json.loads(unquote(raw)) if raw else {}


def _managed_doc(arn: str, *, iam) -> dict[str, Any]:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return _doc(
        iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    )


def policy_documents(kind: str, name: str, *, iam) -> list[tuple[str, dict[str, Any]]]:
    """(label, document) of every identity policy of a user (and its groups) or role."""
    docs: list[tuple[str, dict[str, Any]]] = []
    if kind == "user":
        for p in iam.list_user_policies(UserName=name).get("PolicyNames", []):
            docs.append(
                (
                    f"user {name} inline {p}",
                    _doc(iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]),
                )
            )
        for a in iam.list_attached_user_policies(UserName=name).get("AttachedPolicies", []):
            docs.append((f"user {name} {a['PolicyName']}", _managed_doc(a["PolicyArn"], iam=iam)))
        for g in iam.list_groups_for_user(UserName=name).get("Groups", []):
            group = g["GroupName"]
            for p in iam.list_group_policies(GroupName=group).get("PolicyNames", []):
                docs.append(
                    (
                        f"group {group} inline {p}",
                        _doc(iam.get_group_policy(GroupName=group, PolicyName=p)["PolicyDocument"]),
                    )
                )
            for a in iam.list_attached_group_policies(GroupName=group).get("AttachedPolicies", []):
                docs.append(
                    (f"group {group} {a['PolicyName']}", _managed_doc(a["PolicyArn"], iam=iam))
                )
    else:
        for p in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
            docs.append(
                (
                    f"role {name} inline {p}",
                    _doc(iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]),
                )
            )
        for a in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
            docs.append((f"role {name} {a['PolicyName']}", _managed_doc(a["PolicyArn"], iam=iam)))
    return docs


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else list(v)


def _matches(patterns: Iterable[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


def _resource_match(patterns: Iterable[str], arn: str) -> bool:
    # Secrets Manager ARNs end in a random -XXXXXX suffix that policies often omit
    return any(fnmatch.fnmatchcase(arn, p) or fnmatch.fnmatchcase(arn[:-7], p) for p in patterns)


@dataclass(frozen=True)
class Grant:
    """Resources one policy statement lets (or forbids) ``action``, and which policy says so."""

    effect: str
    resources: tuple[str, ...]
    policy: str


def grants(docs: list[tuple[str, dict[str, Any]]], action: str) -> list[Grant]:
    """Allow/Deny statements of ``docs`` that cover ``action`` (conditions are not evaluated)."""
    out = []
    for label, doc in docs:
        for st in _as_list(doc.get("Statement")) if isinstance(doc, dict) else []:
            if not isinstance(st, dict):
                continue
            if "NotAction" in st or "NotResource" in st:
                continue  # too clever to evaluate here; the caller says it lists a lower bound
            if _matches(_as_list(st.get("Action")), action):
                out.append(Grant(st.get("Effect", ""), tuple(_as_list(st.get("Resource"))), label))
    return out


@dataclass(frozen=True)
class ReadableSecret:
    """A secret the principal may read (``GetSecretValue``) and the policy that allows it."""

    name: str
    arn: str
    policy: str


def readable_secrets(
    docs: list[tuple[str, dict[str, Any]]], *, secretsmanager
) -> list[ReadableSecret]:
    """Secrets in the client's region an Allow covers and no Deny forbids (names only, no value)."""
    found = grants(docs, READ_SECRET_ACTION)
    allows = [g for g in found if g.effect == "Allow"]
    denies = [r for g in found if g.effect == "Deny" for r in g.resources]
    if not allows:
        return []
    out = []
    try:
        pages = secretsmanager.get_paginator("list_secrets").paginate()
        secrets = [s for page in pages for s in page.get("SecretList", [])]
    except ClientError as exc:
        raise _error(exc, "secretsmanager:ListSecrets") from exc
    for s in secrets:
        arn = s.get("ARN", "")
        if _resource_match(denies, arn):
            continue
        allow = next((g for g in allows if _resource_match(g.resources, arn)), None)
        if allow is not None:
            out.append(ReadableSecret(s.get("Name", ""), arn, allow.policy))
    return sorted(out, key=lambda r: r.name)


# -- containment -------------------------------------------------------------------------------


def plan_deactivate(key: AccessKey) -> Change:
    """Deactivate (never delete) one key: it stops authenticating at once and stays for the record."""
    return Change(
        action=DEACTIVATE_ACTION,
        target=f"{key.user} {key.masked}",
        effect="Status Active -> Inactive (kept, not deleted: CloudTrail and the post-mortem name it)",
        params={"UserName": key.user, "AccessKeyId": key.key_id},
    )


def revoke_policy(before: _dt.datetime) -> dict[str, Any]:
    """The IAM console's "revoke active sessions" policy: deny all to tokens issued before ``before``."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {
                    "DateLessThan": {
                        "aws:TokenIssueTime": before.astimezone(_dt.UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        )
                    }
                },
            }
        ],
    }


def plan_revoke_sessions(role: str) -> Change:
    """Revoke every session of ``role`` issued before the apply (new AssumeRole calls still work).

    The cut-off is stamped by the handler at the moment of apply, not when planning: the plan
    (and so its digest, which an approval names) stays the same between a dry run and the
    approved run, and no session issued between plan and apply survives.
    """
    return Change(
        action=REVOKE_SESSIONS_ACTION,
        target=f"role {role}",
        effect=f"inline policy {REVOKE_POLICY_NAME}: Deny * when aws:TokenIssueTime < time of apply "
        "(every active session of the role stops working; new sessions need a new AssumeRole)",
        params={"RoleName": role, "PolicyName": REVOKE_POLICY_NAME},
    )


@executors.register(DEACTIVATE_ACTION)
def deactivate_key(change: Change, *, iam) -> ChangeOutcome:
    """UpdateAccessKey Status=Inactive, then read the status back from ListAccessKeys."""
    p = change.params
    try:
        iam.update_access_key(
            UserName=p["UserName"], AccessKeyId=p["AccessKeyId"], Status="Inactive"
        )
        keys = iam.list_access_keys(UserName=p["UserName"]).get("AccessKeyMetadata", [])
    except ClientError as exc:
        raise _error(exc, f"iam:UpdateAccessKey {change.target}") from exc
    status = next(
        (k.get("Status") for k in keys if k["AccessKeyId"] == p["AccessKeyId"]), "missing"
    )
    ok = status == "Inactive"
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED if ok else ChangeStatus.FAILED,
        f"key {mask_key(p['AccessKeyId'])} is now {status}"
        + ("" if ok else ": the deactivation did not take, deactivate it in the console now"),
        {"user": p["UserName"], "access_key": mask_key(p["AccessKeyId"]), "status": status},
    )


@executors.register(REVOKE_SESSIONS_ACTION)
def revoke_sessions(change: Change, *, iam) -> ChangeOutcome:
    """PutRolePolicy with the deny-older-sessions policy stamped now, then read it back."""
    p = change.params
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0) + _dt.timedelta(seconds=1)
    doc = revoke_policy(now)
    try:
        iam.put_role_policy(
            RoleName=p["RoleName"], PolicyName=p["PolicyName"], PolicyDocument=json.dumps(doc)
        )
        back = _doc(
            iam.get_role_policy(RoleName=p["RoleName"], PolicyName=p["PolicyName"])[
                "PolicyDocument"
            ]
        )
    except ClientError as exc:
        raise _error(exc, f"iam:PutRolePolicy {p['RoleName']}") from exc
    cutoff = doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    ok = back == doc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED if ok else ChangeStatus.FAILED,
        f"sessions of role {p['RoleName']} issued before {cutoff} are denied"
        + ("" if ok else ": the policy read back differs, check the role in the console"),
        {"role": p["RoleName"], "policy": p["PolicyName"], "token_issue_before": cutoff},
    )
