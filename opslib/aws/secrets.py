"""Optional cutover: point the Secrets Manager secret that holds a database endpoint at the
restored target (the restore procedure's "update the Route53 CNAME or the secret" step).

Only the ``host`` field (or another named field) changes; every other field, the password
included, is carried over untouched and never shown or recorded. ``PutSecretValue`` moves
the AWSCURRENT label to the new version and AWSPREVIOUS to the old one, so rolling back is
``aws secretsmanager update-secret-version-stage`` with the previous version id the outcome
records. The plan pins the current version id: if someone rotates the secret between plan and
apply, the apply refuses instead of overwriting the rotation. The handler of the planned
action is registered in :mod:`opslib.core.executors`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.errors import BadInputError, ConflictError, NotFoundError
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    from mypy_boto3_secretsmanager import SecretsManagerClient

ACTION_PUT = "secretsmanager:PutSecretValue"


def _current(secret_id: str, *, secretsmanager: SecretsManagerClient) -> tuple[dict[str, Any], str]:
    try:
        v = secretsmanager.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except ClientError as exc:
        if aws_error_kind(exc) is not AwsErrorKind.NOT_FOUND:
            raise translate_aws_error(exc, f"secretsmanager:GetSecretValue {secret_id}") from exc
        raise NotFoundError(
            f"Secret {secret_id!r} not found. Give cutover_secret = the name or ARN of the secret "
            "that holds the database endpoint (aws secretsmanager list-secrets)."
        ) from exc
    try:
        body = json.loads(v.get("SecretString") or "")
    except ValueError as exc:
        raise BadInputError(
            f"Secret {secret_id!r} is not a JSON object, so no host field can be updated; update it "
            "by hand (its content is not shown here)."
        ) from exc
    if not isinstance(body, dict):
        raise BadInputError(f"Secret {secret_id!r} is JSON but not an object; update it by hand.")
    return body, v["VersionId"]


def plan_cutover(
    secret_id: str,
    new_host: str,
    *,
    secretsmanager: SecretsManagerClient,
    field: str = "host",
    new_port: int = 0,
) -> Plan:
    """Plan to set ``field`` (and ``port`` when given) of the secret to the restored endpoint."""
    if not new_host:
        raise BadInputError("The restored target has no endpoint yet; run the restore first.")
    body, version = _current(secret_id, secretsmanager=secretsmanager)
    if field not in body:
        raise BadInputError(
            f"Secret {secret_id!r} has no {field!r} field (fields: {', '.join(sorted(body))}); "
            "name the right field or update it by hand."
        )
    old = str(body.get(field, ""))
    effect = f"{field}: {old} -> {new_host}"
    params: dict[str, Any] = {
        "SecretId": secret_id,
        "field": field,
        "new_host": new_host,
        "expected_version": version,
    }
    if new_port and "port" in body:
        params["new_port"] = int(new_port)
        effect += f", port: {body['port']} -> {new_port}"
    return Plan(
        title=f"Cutover: secret {secret_id} -> {new_host}",
        changes=(
            Change(
                ACTION_PUT, secret_id, effect + " (previous version kept as AWSPREVIOUS)", params
            ),
        ),
        warnings=(
            "Applications pick the new endpoint up only when they re-read the secret (restart or "
            "cache expiry).",
        ),
    )


@executors.register(ACTION_PUT)
def put_secret_value(change: Change, *, secretsmanager: SecretsManagerClient) -> ChangeOutcome:
    """Write the new version; refuses if the secret changed since the plan (rotation in between)."""
    p = change.params
    body, version = _current(p["SecretId"], secretsmanager=secretsmanager)
    if version != p["expected_version"]:
        raise ConflictError(
            f"Secret {p['SecretId']} changed since the plan (version {p['expected_version']} -> "
            f"{version}); plan the cutover again."
        )
    body[p["field"]] = p["new_host"]
    if p.get("new_port"):
        body["port"] = p["new_port"] if isinstance(body.get("port"), int) else str(p["new_port"])
    try:
        out = secretsmanager.put_secret_value(SecretId=p["SecretId"], SecretString=json.dumps(body))
    except ClientError as exc:
        raise translate_aws_error(exc, f"{change.action} {p['SecretId']}") from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"{p['field']} = {p['new_host']}; previous version {version} is AWSPREVIOUS",
        {"new_version": out.get("VersionId", ""), "previous_version": version},
    )
