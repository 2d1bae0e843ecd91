"""Secrets Manager rotation: audit the secrets' ages and rotation state, and the rotation steps
opslib performs itself (create AWSPENDING, finish by moving AWSCURRENT, revoke AWSPREVIOUS) or
asks the configured rotator for (``RotateSecret``, watched with a bound).

The rotation contract has four steps (create, set, test, finish); "set" and "test" belong to
the database (see :mod:`opslib.pg.roles`), the others are here, each a registered action.
A value never travels in a :class:`~opslib.core.plans.Change`: the create step generates the
new password at apply time (``secrets.token_urlsafe``), registers it and the new JSON with
:func:`opslib.core.redact.register_secret` before anything can print them, and stores it under
a version id chosen at plan time (``ClientRequestToken``), which is what the later steps name.

The local server (moto 5.2.5): after ``UpdateSecretVersionStage`` moves AWSCURRENT, a
``GetSecretValue`` without ``VersionStage`` can still return the old version, so every read
here names the stage or version it means (on AWS the default is AWSCURRENT anyway).
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets as _secrets
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from opslib.aws import ecs_deploy
from opslib.clients import AwsErrorKind, aws_error_kind, translate_aws_error
from opslib.core import executors
from opslib.core.errors import BadInputError, ConflictError, NotFoundError, RunbookTimeoutError
from opslib.core.findings import Finding, Severity, error_finding
from opslib.core.plans import Change, ChangeOutcome, ChangeStatus
from opslib.core.progress import no_progress
from opslib.core.redact import register_secret
from opslib.core.waits import poll_until

CREATE_ACTION = "secretsmanager:PutSecretValue AWSPENDING"
FINISH_ACTION = "secretsmanager:UpdateSecretVersionStage AWSCURRENT"
REVOKE_ACTION = "secretsmanager:UpdateSecretVersionStage remove AWSPREVIOUS"
ROTATE_ACTION = "secretsmanager:RotateSecret"
PASSWORD_BYTES = 32  # token_urlsafe(32): 43 URL-safe characters, 256 bits
ROTATE_TIMEOUT_S = 300.0
PG_FIELDS = ("engine", "host", "port", "username", "password", "dbname")


@dataclass(frozen=True)
class SecretAudit:
    """What a person checks before rotating: age, rotation settings and the last outcome."""

    name: str
    arn: str
    created: _dt.datetime | None
    last_changed: _dt.datetime | None
    last_rotated: _dt.datetime | None
    rotation_enabled: bool
    rotation_lambda: str
    schedule: str  # "every 30 days", "rate(10 days)", ""
    next_rotation: _dt.datetime | None
    stages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # version id -> stages
    age_days: float | None = None
    last_outcome: str = ""  # "ok", "incomplete: ...", "never rotated"
    findings: tuple[Finding, ...] = ()

    @property
    def current_version(self) -> str:
        return next((v for v, s in self.stages.items() if "AWSCURRENT" in s), "")

    def row(self) -> dict[str, Any]:
        return {
            "secret": self.name,
            "age_days": None if self.age_days is None else round(self.age_days, 1),
            "last_rotated": self.last_rotated.strftime("%Y-%m-%d")
            if self.last_rotated
            else "never",
            "last_changed": self.last_changed.strftime("%Y-%m-%d") if self.last_changed else "",
            "rotation": f"on, {self.schedule}" if self.rotation_enabled else "off",
            "last_outcome": self.last_outcome,
            "versions": "; ".join(f"{v[:8]}={'+'.join(s)}" for v, s in self.stages.items() if s),
        }


def _utc(t) -> _dt.datetime | None:
    if t is None:
        return None
    if isinstance(t, int | float):
        return _dt.datetime.fromtimestamp(t, _dt.UTC)
    return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)


def _versions(secret_id: str, *, secretsmanager) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    kw: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": False}
    while True:
        page = secretsmanager.list_secret_version_ids(**kw)
        for v in page.get("Versions", []):
            out[v["VersionId"]] = tuple(v.get("VersionStages") or ())
        if not page.get("NextToken"):
            return out
        kw["NextToken"] = page["NextToken"]


def audit_one(
    secret_id: str, *, secretsmanager, max_age_days: int, now: _dt.datetime | None = None
) -> SecretAudit:
    """Describe one secret (no value is read); NotFoundError when it does not exist."""
    now = now or _dt.datetime.now(_dt.UTC)
    try:
        d = secretsmanager.describe_secret(SecretId=secret_id)
        stages = _versions(secret_id, secretsmanager=secretsmanager)
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
            raise NotFoundError(
                f"Secret {secret_id!r} not found in this region; give secret_id = a name or ARN from "
                "`aws secretsmanager list-secrets` (and check region)."
            ) from exc
        raise translate_aws_error(exc, f"secretsmanager:DescribeSecret {secret_id}") from exc
    rules = d.get("RotationRules") or {}
    schedule = rules.get("ScheduleExpression") or (
        f"every {rules['AutomaticallyAfterDays']} days"
        if rules.get("AutomaticallyAfterDays")
        else ""
    )
    last_rotated, last_changed, created = (
        _utc(d.get(k)) for k in ("LastRotatedDate", "LastChangedDate", "CreatedDate")
    )
    ref = last_rotated or last_changed or created
    age = (now - ref).total_seconds() / 86400 if ref else None
    pending = [v for v, s in stages.items() if "AWSPENDING" in s and "AWSCURRENT" not in s]
    if pending:
        outcome = (
            f"incomplete: AWSPENDING left on version {pending[0][:8]} (a rotation did not finish)"
        )
    elif last_rotated is None:
        outcome = "never rotated"
    else:
        outcome = "ok"
    a = SecretAudit(
        name=d.get("Name", secret_id),
        arn=d.get("ARN", ""),
        created=created,
        last_changed=last_changed,
        last_rotated=last_rotated,
        rotation_enabled=bool(d.get("RotationEnabled")),
        rotation_lambda=d.get("RotationLambdaARN", "") or "",
        schedule=schedule,
        next_rotation=_utc(d.get("NextRotationDate")),
        stages=stages,
        age_days=age,
        last_outcome=outcome,
    )
    return _with_findings(a, max_age_days=max_age_days)


def _with_findings(a: SecretAudit, *, max_age_days: int) -> SecretAudit:
    found = []
    src = f"secretsmanager:{a.name}"
    if a.age_days is not None and a.age_days > max_age_days:
        found.append(
            Finding(
                Severity.WARNING,
                f"{a.name}: not rotated for {a.age_days:.0f} days (> {max_age_days})",
                src,
                f"last rotated {a.row()['last_rotated']}, last changed {a.row()['last_changed']}",
                "Rotate it (this runbook, dry_run=False with an approval) and enable scheduled rotation.",
            )
        )
    if a.last_outcome.startswith("incomplete"):
        found.append(
            Finding(
                Severity.CRITICAL,
                f"{a.name}: the last rotation did not finish",
                src,
                a.last_outcome,
                "Look at the rotator's logs (CloudWatch Logs of the rotation function); the database may "
                "already have the pending password. Rotate again: the new rotation replaces AWSPENDING.",
            )
        )
    if not a.rotation_enabled:
        found.append(
            Finding(
                Severity.INFO,
                f"{a.name}: scheduled rotation is off",
                src,
                "",
                "Enable it with a rotator (aws secretsmanager rotate-secret --rotation-rules ...).",
            )
        )
    return SecretAudit(**{**a.__dict__, "findings": tuple(found)})


def audit_all(
    *, secretsmanager, max_age_days: int, now: _dt.datetime | None = None
) -> tuple[list[SecretAudit], list[Finding]]:
    """Every secret in the region, oldest first; a secret that cannot be described is a finding."""
    names: list[str] = []
    try:
        for page in secretsmanager.get_paginator("list_secrets").paginate():
            names += [s["ARN"] for s in page.get("SecretList", [])]
    except ClientError as exc:
        return [], [
            error_finding("secretsmanager", translate_aws_error(exc, "secretsmanager:ListSecrets"))
        ]
    out, found = [], []
    for n in names:
        try:
            out.append(
                audit_one(n, secretsmanager=secretsmanager, max_age_days=max_age_days, now=now)
            )
        except Exception as exc:  # noqa: BLE001 - one unreadable secret must not hide the others
            found.append(error_finding(f"secretsmanager:{n}", exc))
    out.sort(key=lambda a: -(a.age_days or 0))
    return out, found


def read_json(
    secret_id: str, *, secretsmanager, stage: str = "AWSCURRENT", version_id: str = ""
) -> dict[str, Any]:
    """The JSON object of one version (by id, else by stage); the string and every field value
    are registered as secrets before this returns. BadInputError when it is not a JSON object."""
    kw: dict[str, Any] = {"SecretId": secret_id}
    kw.update({"VersionId": version_id} if version_id else {"VersionStage": stage})
    try:
        v = secretsmanager.get_secret_value(**kw)
    except ClientError as exc:
        if aws_error_kind(exc) is AwsErrorKind.NOT_FOUND:
            raise NotFoundError(
                f"Secret {secret_id!r} (version {version_id[:8] or stage}) not found; check secret_id and region."
            ) from exc
        raise translate_aws_error(exc, f"secretsmanager:GetSecretValue {secret_id}") from exc
    text = register_secret(v.get("SecretString") or "")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BadInputError(
            f"Secret {secret_id!r} is not a JSON object (its content is not shown); "
            "the postgres method needs {engine, host, port, username, password, dbname}."
        )
    if isinstance(body.get("password"), str):
        register_secret(
            body["password"]
        )  # not host or username: masking those would shred the evidence
    return body


def postgres_shape_problems(body: dict[str, Any]) -> list[str]:
    """Why a secret is not a PostgreSQL credential (field names only, never values)."""
    missing = [f for f in PG_FIELDS if f not in body or body[f] in ("", None)]
    problems = [f"missing field(s) {', '.join(missing)}"] if missing else []
    engine = str(body.get("engine", "")).lower()
    if engine and engine not in ("postgres", "postgresql", "aurora-postgresql"):
        problems.append(f"engine is {engine!r}, not postgres")
    return problems


def new_version_id() -> str:
    """The ClientRequestToken of the version a rotation will create (chosen at plan time)."""
    import uuid

    return str(uuid.uuid4())


def plan_create(secret_id: str, *, version_id: str, expected_current: str) -> Change:
    return Change(
        action=CREATE_ACTION,
        target=secret_id,
        effect=f"new version {version_id[:8]} with a generated password, labelled AWSPENDING",
        params={
            "SecretId": secret_id,
            "ClientRequestToken": version_id,
            "expected_current": expected_current,
        },
    )


def plan_finish(secret_id: str, *, version_id: str, expected_current: str) -> Change:
    return Change(
        action=FINISH_ACTION,
        target=secret_id,
        effect=f"AWSCURRENT {expected_current[:8]} -> {version_id[:8]} (the old one becomes AWSPREVIOUS)",
        params={
            "SecretId": secret_id,
            "version_id": version_id,
            "expected_current": expected_current,
        },
    )


def plan_revoke(secret_id: str, *, previous_version: str) -> Change:
    return Change(
        action=REVOKE_ACTION,
        target=secret_id,
        effect=f"remove AWSPREVIOUS from version {previous_version[:8]} (the old credential can no longer be fetched by stage)",
        params={"SecretId": secret_id, "version_id": previous_version},
    )


def plan_rotate(secret_id: str, *, version_id: str) -> Change:
    return Change(
        action=ROTATE_ACTION,
        target=secret_id,
        effect=f"RotateSecret with the configured rotator; wait (at most {ROTATE_TIMEOUT_S:.0f} s) until version {version_id[:8]} is AWSCURRENT",
        params={
            "SecretId": secret_id,
            "ClientRequestToken": version_id,
            "timeout_s": ROTATE_TIMEOUT_S,
        },
    )


def _current_id(secret_id: str, *, secretsmanager) -> str:
    return next(
        (
            v
            for v, s in _versions(secret_id, secretsmanager=secretsmanager).items()
            if "AWSCURRENT" in s
        ),
        "",
    )


@executors.register(CREATE_ACTION)
def create_pending(change: Change, *, secretsmanager) -> ChangeOutcome:
    """Step "create": the current JSON with a new password, stored as AWSPENDING."""
    p = change.params
    if _current_id(p["SecretId"], secretsmanager=secretsmanager) != p["expected_current"]:
        raise ConflictError(
            f"{p['SecretId']}: AWSCURRENT changed since the plan (someone rotated it); plan again."
        )
    body = read_json(p["SecretId"], secretsmanager=secretsmanager, version_id=p["expected_current"])
    body["password"] = register_secret(_secrets.token_urlsafe(PASSWORD_BYTES))
    text = register_secret(json.dumps(body))
    try:
        secretsmanager.put_secret_value(
            SecretId=p["SecretId"],
            ClientRequestToken=p["ClientRequestToken"],
            SecretString=text,
            VersionStages=["AWSPENDING"],
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"secretsmanager:PutSecretValue {p['SecretId']}") from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"version {p['ClientRequestToken'][:8]} created as AWSPENDING",
        {"version_id": p["ClientRequestToken"]},
    )


@executors.register(FINISH_ACTION)
def finish(change: Change, *, secretsmanager) -> ChangeOutcome:
    """Step "finish": AWSCURRENT moves to the new version (Secrets Manager labels the old AWSPREVIOUS)."""
    p = change.params
    sid = p["SecretId"]
    try:
        secretsmanager.update_secret_version_stage(
            SecretId=sid,
            VersionStage="AWSCURRENT",
            MoveToVersionId=p["version_id"],
            RemoveFromVersionId=p["expected_current"],
        )
        secretsmanager.update_secret_version_stage(
            SecretId=sid, VersionStage="AWSPENDING", RemoveFromVersionId=p["version_id"]
        )
    except ClientError as exc:
        raise translate_aws_error(exc, f"secretsmanager:UpdateSecretVersionStage {sid}") from exc
    stages = _versions(sid, secretsmanager=secretsmanager)
    if "AWSCURRENT" not in stages.get(p["version_id"], ()):
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            "AWSCURRENT did not move; look at the version stages",
        )
    if "AWSPREVIOUS" not in stages.get(
        p["expected_current"], ()
    ):  # real Secrets Manager does this itself
        secretsmanager.update_secret_version_stage(
            SecretId=sid, VersionStage="AWSPREVIOUS", MoveToVersionId=p["expected_current"]
        )
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"AWSCURRENT is version {p['version_id'][:8]}",
        {"version_id": p["version_id"]},
    )


@executors.register(REVOKE_ACTION)
def revoke_previous(change: Change, *, secretsmanager) -> ChangeOutcome:
    p = change.params
    try:
        secretsmanager.update_secret_version_stage(
            SecretId=p["SecretId"], VersionStage="AWSPREVIOUS", RemoveFromVersionId=p["version_id"]
        )
    except ClientError as exc:
        raise translate_aws_error(
            exc, f"secretsmanager:UpdateSecretVersionStage {p['SecretId']}"
        ) from exc
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"AWSPREVIOUS removed from {p['version_id'][:8]}",
    )


@executors.register(ROTATE_ACTION)
def rotate(change: Change, *, secretsmanager) -> ChangeOutcome:
    """RotateSecret, then watch AWSPENDING -> AWSCURRENT on the requested version (bounded)."""
    p = change.params
    sid, vid = p["SecretId"], p["ClientRequestToken"]
    try:
        secretsmanager.rotate_secret(SecretId=sid, ClientRequestToken=vid)
    except ClientError as exc:
        raise translate_aws_error(exc, f"secretsmanager:RotateSecret {sid}") from exc

    def done() -> bool:
        return "AWSCURRENT" in _versions(sid, secretsmanager=secretsmanager).get(vid, ())

    try:
        poll_until(
            done,
            timeout_s=float(p.get("timeout_s", ROTATE_TIMEOUT_S)),
            poll_s=2.0,
            desc=f"rotation of {sid}",
        )
    except RunbookTimeoutError as exc:
        return ChangeOutcome(
            change.action,
            change.target,
            ChangeStatus.FAILED,
            f"{exc}; AWSPENDING is on {vid[:8]}: read the rotator's CloudWatch logs",
        )
    return ChangeOutcome(
        change.action,
        change.target,
        ChangeStatus.APPLIED,
        f"rotator finished: AWSCURRENT is {vid[:8]}",
        {"version_id": vid},
    )


# --- consumers on ECS: a new deployment picks the new secret version up -----------------------
# The action and its handler are opslib.aws.ecs_deploy's (the rolling restart's forced new
# deployment, which waits for the deployment, bounded); this plan only says why.

ECS_DEPLOY_ACTION = ecs_deploy.REDEPLOY_ACTION
ECS_DEPLOY_TIMEOUT_S = 300.0


def plan_ecs_deploy(cluster: str, service: str, *, reason: str) -> Change:
    return Change(
        action=ECS_DEPLOY_ACTION,
        target=f"{cluster}/{service}",
        effect=f"force a new deployment (new tasks read the secret at start): {reason}",
        params={
            "cluster": cluster,
            "service": service,
            "task_definition": "",  # the service's own, read when the change is applied
            "pause_after": 0,
            "timeout_s": ECS_DEPLOY_TIMEOUT_S,
        },
    )


def wait_ecs_deployment(cluster: str, service: str, *, ecs, timeout_s: float) -> str:
    """``COMPLETED`` or ``FAILED`` once the PRIMARY deployment of the service's current task
    definition ends, else what is left at the bound (ecs_deploy.wait_deployment's message)."""
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"]
    task_definition = svc[0].get("taskDefinition", "") if svc else ""
    res = ecs_deploy.wait_deployment(
        ecs=ecs,
        cluster=cluster,
        service=service,
        task_definition=task_definition,
        timeout_s=timeout_s,
        progress=no_progress,
    )
    return "COMPLETED" if res.complete else "FAILED" if res.failed else res.message
