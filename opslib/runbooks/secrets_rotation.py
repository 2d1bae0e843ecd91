"""Secrets rotation: audit the secrets, rotate one (the configured rotator, or opslib rotating a
PostgreSQL role itself), hand the new value to its consumers, verify, and revoke the old one.

Triggered by a scheduled rotation that failed, a credential that may have leaked, or the
90-day rotation: new secret version, the consumers pick it up (Kubernetes secret updated and
its deployments restarted, ECS services force-new-deployed), verify health, then revoke the
old credential. The ``postgres`` method follows the four steps of the Secrets Manager rotation
contract (create, set, test, finish) with opslib's own handlers; ``lambda`` calls RotateSecret
and watches AWSPENDING -> AWSCURRENT with a bound.

No value ever appears in the evidence: the plan names versions, never values; every value
fetched or generated goes through ``register_secret`` at once (see the adapters); the secret's
content is never displayed, only its field names.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opslib import clients
from opslib.aws import secret_rotation as rot
from opslib.core import executors
from opslib.core.errors import BadInputError, OpslibError, PreflightError
from opslib.core.findings import Finding, Severity, error_finding, rank
from opslib.core.findings import to_frame as findings_frame
from opslib.core.plans import ApplyResult, Change, ChangeStatus, Plan, parse_csv, unique
from opslib.k8s import rollout, secret_restart
from opslib.k8s import secrets as k8s_secrets
from opslib.pg import roles

RUNBOOK = "secrets-rotation"
ROLLOUT_TIMEOUT_S = 120.0
MAX_DEPLOYMENTS = 10


class Method(StrEnum):
    AUTO = "auto"
    LAMBDA = "lambda"
    POSTGRES = "postgres"


ACTIONS = (
    rot.CREATE_ACTION,
    roles.SET_ACTION,
    roles.TEST_ACTION,
    rot.FINISH_ACTION,
    rot.ROTATE_ACTION,
    k8s_secrets.UPDATE_ACTION,
    secret_restart.RESTART_ACTION,
    rot.ECS_DEPLOY_ACTION,
    roles.END_SESSIONS_ACTION,
    rot.REVOKE_ACTION,
)


@dataclass(frozen=True)
class Inputs:
    secret_id: str = ""
    method: Method = Method.AUTO
    admin_dsn: str = ""
    k8s_secret: k8s_secrets.SecretRef | None = None
    restart_deployments: tuple[tuple[str, str], ...] = ()
    ecs_services: tuple[tuple[str, str], ...] = ()
    revoke_previous: bool = False
    max_age_days: int = 90
    region: str = ""


def _pairs(
    value: str, parameter: str, example: str, problems: list[str]
) -> tuple[tuple[str, str], ...]:
    out = []
    for item in unique(parse_csv(value)):
        a, sep, b = item.partition("/")
        if not sep or not a or not b or "/" in b:
            problems.append(f"{parameter}: {item!r} is not {example}")
        else:
            out.append((a, b))
    return tuple(out)


def inputs(
    *,
    secret_id: str = "",
    method: str = "auto",
    admin_dsn: str = "",
    k8s_secret: str = "",
    restart_deployments: str = "",
    ecs_services: str = "",
    revoke_previous: bool = False,
    max_age_days: int = 90,
    region: str = "",
) -> Inputs:
    """Validate every parameter before anything is read (BadInputError listing each problem)."""
    clients.refuse_password_in_conninfo(admin_dsn, parameter="admin_dsn")
    problems: list[str] = []
    try:
        m = Method(method.strip().lower())
    except ValueError:
        problems.append(f"method={method!r}: use auto, lambda or postgres")
        m = Method.AUTO
    ref = None
    if k8s_secret.strip():
        try:
            ref = k8s_secrets.parse_ref(k8s_secret)
        except BadInputError as exc:
            problems.append(str(exc))
    deps = _pairs(restart_deployments, "restart_deployments", "namespace/name", problems)
    ecs = _pairs(ecs_services, "ecs_services", "cluster/service", problems)
    if len(deps) > MAX_DEPLOYMENTS:
        problems.append(
            f"restart_deployments: {len(deps)} deployments, at most {MAX_DEPLOYMENTS} per run"
        )
    if int(max_age_days) < 1:
        problems.append(f"max_age_days={max_age_days}: use 1 or more days")
    wants_rotation = (
        m is not Method.AUTO or ref or deps or ecs or revoke_previous or admin_dsn.strip()
    )
    if not secret_id.strip() and wants_rotation:
        problems.append(
            "secret_id is empty: a rotation needs the secret's name or ARN (leave everything else empty for the audit only)"
        )
    if m is Method.POSTGRES and not admin_dsn.strip():
        problems.append(
            "method=postgres needs admin_dsn (a conninfo WITHOUT password for a role that may ALTER ROLE)"
        )
    if problems:
        raise BadInputError(
            "Bad parameters, nothing was read or changed: " + "; ".join(problems) + "."
        )
    return Inputs(
        secret_id.strip(),
        m,
        admin_dsn.strip(),
        ref,
        deps,
        ecs,
        bool(revoke_previous),
        int(max_age_days),
        region.strip(),
    )


@dataclass(frozen=True)
class Connections:
    secretsmanager: Any = None
    pg: Any = None
    k8s: Any = None
    ecs: Any = None
    findings: tuple[Finding, ...] = ()

    def close(self) -> None:
        if self.pg is not None and not self.pg.closed:
            self.pg.close()


def connect(inp: Inputs) -> Connections:
    """Secrets Manager always; PostgreSQL, Kubernetes and ECS when asked for."""
    out: dict[str, Any] = {}
    found: list[Finding] = []
    session = clients.aws_session(region=inp.region)
    out["secretsmanager"] = clients.aws_client("secretsmanager", session=session, region=inp.region)
    if inp.ecs_services:
        out["ecs"] = clients.aws_client("ecs", session=session, region=inp.region)
    if inp.admin_dsn:
        out["pg"] = clients.pg_connect(inp.admin_dsn, runbook=RUNBOOK, parameter="admin_dsn")
    if inp.k8s_secret or inp.restart_deployments:
        try:
            out["k8s"] = clients.k8s_api()
        except OpslibError as exc:
            found.append(error_finding("k8s", exc))
    return Connections(findings=tuple(found), **out)


@dataclass(frozen=True)
class Audit:
    secrets: tuple[rot.SecretAudit, ...]
    findings: tuple[Finding, ...]

    def to_frame(self):
        import pandas as pd

        rows = [a.row() for a in self.secrets]
        return pd.DataFrame(
            rows,
            columns=[
                "secret",
                "age_days",
                "last_rotated",
                "last_changed",
                "rotation",
                "last_outcome",
                "versions",
            ],
        )

    def findings_frame(self):
        return findings_frame(self.findings)


def audit(inp: Inputs, conns: Connections) -> Audit:
    """Read only: the secret (NotFoundError, exit 2, when missing), or every secret oldest first."""
    if inp.secret_id:
        one = rot.audit_one(
            inp.secret_id, secretsmanager=conns.secretsmanager, max_age_days=inp.max_age_days
        )
        return Audit((one,), tuple(rank(list(conns.findings) + list(one.findings))))
    many, found = rot.audit_all(secretsmanager=conns.secretsmanager, max_age_days=inp.max_age_days)
    return Audit(
        tuple(many),
        tuple(rank(list(conns.findings) + found + [f for a in many for f in a.findings])),
    )


@dataclass(frozen=True)
class Target:
    """What the preflight resolved: the method, versions, and where the credential is used."""

    secret_id: str = ""
    method: Method | None = None
    current_version: str = ""
    new_version: str = ""
    login: roles.LoginTarget | None = None
    k8s_key: str = ""
    k8s_field: str = ""
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.secret_id:
            return "audit only: no secret_id given, nothing to rotate"
        s = f"{self.secret_id}: method {self.method}, AWSCURRENT {self.current_version[:8]}, new version {self.new_version[:8]}"
        if self.login:
            s += f"; database login {self.login}"
        return s + f"; fields: {', '.join(self.fields)}"


def prepare(inp: Inputs, conns: Connections, aud: Audit) -> Target:
    """Preflight (read only; BadInputError subclasses before anything changes)."""
    if not inp.secret_id:
        return Target()
    a = aud.secrets[0]
    method = inp.method
    if method is Method.AUTO:
        method = Method.LAMBDA if a.rotation_enabled and a.rotation_lambda else Method.POSTGRES
    body = rot.read_json(inp.secret_id, secretsmanager=conns.secretsmanager, stage="AWSCURRENT")
    problems: list[str] = []
    login = None
    if method is Method.POSTGRES:
        shape = rot.postgres_shape_problems(body)
        if shape:
            raise PreflightError(
                f"Secret {inp.secret_id} is not a PostgreSQL credential ({'; '.join(shape)}): "
                "method postgres needs {engine, host, port, username, password, dbname}. "
                "Use method=lambda with a configured rotator instead."
            )
        if conns.pg is None:
            raise PreflightError(
                "method postgres needs admin_dsn (a conninfo WITHOUT password for a role that may ALTER ROLE)."
            )
        login = roles.LoginTarget(
            str(body["host"]), int(body["port"]), str(body["dbname"]), str(body["username"])
        )
        if not roles.role_exists(login.username, conn=conns.pg):
            problems.append(
                f"role {login.username} does not exist on the admin_dsn server: is admin_dsn the secret's database server?"
            )
        ok, why = roles.can_alter_role(login.username, conn=conns.pg)
        if not ok:
            problems.append(f"admin_dsn cannot set passwords: {why}")
    elif not (a.rotation_enabled and a.rotation_lambda) and method is Method.LAMBDA:
        problems.append(
            f"method=lambda but {inp.secret_id} has no rotator configured; use method=postgres or configure rotation"
        )
    key = fld = ""
    if inp.k8s_secret is not None:
        if conns.k8s is None:
            problems.append(
                "k8s_secret given but Kubernetes is not reachable (see the connection finding)"
            )
        else:
            keys, _rv = k8s_secrets.secret_keys(inp.k8s_secret, api=conns.k8s)
            key = inp.k8s_secret.key or "password"
            fld = key if key in body else "password"
            if inp.k8s_secret.key == "" and key not in keys:
                problems.append(
                    f"k8s_secret {inp.k8s_secret} has no key 'password' (keys: {', '.join(keys)}): name the key, namespace/name:KEY"
                )
    for ns, name in inp.restart_deployments:
        if conns.k8s is not None and not secret_restart.deployment_exists(ns, name, api=conns.k8s):
            problems.append(f"restart_deployments: deployment {ns}/{name} not found")
    if inp.revoke_previous and a.current_version == "":
        problems.append("the secret has no AWSCURRENT version")
    if problems:
        raise PreflightError("Preflight refused, nothing was changed: " + "; ".join(problems) + ".")
    return Target(
        inp.secret_id,
        method,
        a.current_version,
        rot.new_version_id(),
        login,
        key,
        fld,
        tuple(sorted(body)),
    )


def plan_rotation(inp: Inputs, t: Target) -> Plan:
    """The steps in order, each a Change; read only."""
    if not t.secret_id:
        return Plan(
            title="Secrets rotation", warnings=("audit only: give secret_id to plan a rotation",)
        )
    sid, new, cur = t.secret_id, t.new_version, t.current_version
    changes: list[Change] = []
    server = f"{t.login.host}:{t.login.port}" if t.login else ""
    if t.method is Method.POSTGRES:
        changes += [
            rot.plan_create(sid, version_id=new, expected_current=cur),
            roles.plan_set(t.login.username, secret_id=sid, version_id=new, server=server),
            roles.plan_test(t.login, secret_id=sid, version_id=new),
            rot.plan_finish(sid, version_id=new, expected_current=cur),
        ]
    else:
        changes.append(rot.plan_rotate(sid, version_id=new))
    if inp.k8s_secret is not None:
        changes.append(
            k8s_secrets.plan_update_key(
                inp.k8s_secret, key=t.k8s_key, secret_id=sid, version_id=new, field=t.k8s_field
            )
        )
    changes += [
        secret_restart.plan_restart(ns, n, reason=f"pick up {sid} version {new[:8]}")
        for ns, n in inp.restart_deployments
    ]
    changes += [
        rot.plan_ecs_deploy(c, s, reason=f"pick up {sid} version {new[:8]}")
        for c, s in inp.ecs_services
    ]
    warnings = []
    if inp.revoke_previous:
        if t.method is Method.POSTGRES:
            changes.append(roles.plan_end_sessions(t.login.username, server=server))
        changes.append(rot.plan_revoke(sid, previous_version=cur))
    elif t.method is Method.POSTGRES:
        warnings.append(
            "PostgreSQL keeps one password per role: the old one stops working for NEW logins at the set step; "
            "sessions already open stay until revoke_previous ends them"
        )
    return Plan(
        title=f"Rotate {sid} ({t.method})",
        changes=tuple(changes),
        warnings=tuple(warnings),
        limits={"max_deployments": MAX_DEPLOYMENTS},
    )


class _Run:
    """State the handlers share within one apply: when the password was set."""

    def __init__(self) -> None:
        self.set_at: str | None = None


def executor(conns: Connections, t: Target):
    """Dispatch each change to its adapter's handler, with the value fetcher bound."""
    run = _Run()

    def fetch_value(secret_id: str, version: str, fld: str) -> str:
        stage = version if version.startswith("AWS") else "AWSCURRENT"
        body = rot.read_json(
            secret_id,
            secretsmanager=conns.secretsmanager,
            stage=stage,
            version_id="" if version.startswith("AWS") else version,
        )
        return str(body[fld])

    bound = executors.bind(
        secretsmanager=conns.secretsmanager,
        conn=conns.pg,
        api=conns.k8s,
        ecs=conns.ecs,
        fetch_value=fetch_value,
        rotated_at=lambda: run.set_at,
        allowed=ACTIONS,
    )

    def execute(change):
        outcome = bound(change)
        if change.action == roles.SET_ACTION and outcome.status is ChangeStatus.APPLIED:
            run.set_at = outcome.data.get("set_at")
        return outcome

    return execute


@dataclass(frozen=True)
class Verification:
    rotated: bool
    new_version_id: str
    verified: bool
    revoked_previous: bool
    restarted: tuple[str, ...]
    current_login: str = ""
    previous_login: str = ""
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def findings_frame(self):
        return findings_frame(self.findings)


def _applied(applied: ApplyResult | None, action: str) -> list:
    return [
        o
        for o in (applied.outcomes if applied else ())
        if o.action == action and o.status is ChangeStatus.APPLIED
    ]


def verify(inp: Inputs, conns: Connections, t: Target, applied: ApplyResult | None) -> Verification:
    """Read only: the current secret logs in, the old one does not (after a rotation), the
    restarted deployments rolled out with pods newer than the update, ECS deployments completed."""
    if not t.secret_id:
        return Verification(False, "", False, False, ())
    found: list[Finding] = []
    rotated = bool(_applied(applied, rot.FINISH_ACTION) or _applied(applied, rot.ROTATE_ACTION))
    failed = [o for o in (applied.outcomes if applied else ()) if o.status is ChangeStatus.FAILED]
    ok = True
    cur_text = prev_text = ""
    if t.login is not None:
        cur = rot.read_json(t.secret_id, secretsmanager=conns.secretsmanager, stage="AWSCURRENT")
        works, cur_text = roles.login(t.login, str(cur["password"]))
        ok &= works
        found.append(
            Finding(
                Severity.OK if works else Severity.CRITICAL,
                f"the AWSCURRENT credential {'logs in' if works else 'DOES NOT LOG IN'}",
                "postgres",
                cur_text,
                ""
                if works
                else "Applications cannot log in: set the role's password from AWSCURRENT now.",
            )
        )
        if rotated:
            old = rot.read_json(
                t.secret_id, secretsmanager=conns.secretsmanager, version_id=t.current_version
            )
            old_works, prev_text = roles.login(t.login, str(old["password"]))
            ok &= not old_works
            found.append(
                Finding(
                    Severity.OK if not old_works else Severity.CRITICAL,
                    f"the previous credential {'is refused' if not old_works else 'STILL LOGS IN'}",
                    "postgres",
                    prev_text,
                )
            )
    if applied is not None and failed and not rotated:
        sev_text = "; ".join(f"{o.action}: {o.detail}" for o in failed)
        stages = rot.audit_one(
            t.secret_id, secretsmanager=conns.secretsmanager, max_age_days=inp.max_age_days
        ).current_version
        found.append(
            Finding(
                Severity.CRITICAL,
                "rotation stopped: nothing was promoted",
                "rotation",
                sev_text,
                f"AWSCURRENT is still version {stages[:8]} (unchanged: {stages == t.current_version}); "
                "fix the cause above and run the rotation again.",
            )
        )
        ok = False
    restarted = tuple(o.target for o in _applied(applied, secret_restart.RESTART_ACTION))
    updated = _applied(applied, k8s_secrets.UPDATE_ACTION)
    since = _dt.datetime.fromisoformat(updated[0].data["updated_at"]) if updated else None
    for target in restarted:
        ns, name = target.split("/", 1)
        res = rollout.wait_rollout(
            api=conns.k8s, namespace=ns, name=name, timeout_s=ROLLOUT_TIMEOUT_S
        )
        ages = (
            secret_restart.pod_ages(
                ns, name, api=conns.k8s, since=since or _dt.datetime.now(_dt.UTC)
            )
            if since
            else None
        )
        newer = ages.all_newer if ages else False
        good = res.complete and newer
        ok &= good
        found.append(
            Finding(
                Severity.OK if good else Severity.CRITICAL,
                f"deployment {target}: {'rolled out, every pod newer than the secret update' if good else 'NOT rolled out with new pods'}",
                f"k8s:{target}",
                res.message
                + (
                    ""
                    if newer
                    else f"; pods older than the update: {', '.join(ages.older) if ages else '?'}"
                ),
            )
        )
    for o in _applied(applied, rot.ECS_DEPLOY_ACTION):
        c, s = o.target.split("/", 1)
        state = rot.wait_ecs_deployment(c, s, ecs=conns.ecs, timeout_s=ROLLOUT_TIMEOUT_S)
        good = state == "COMPLETED"
        ok &= good
        found.append(
            Finding(
                Severity.OK if good else Severity.CRITICAL,
                f"ECS {o.target}: primary deployment {state}",
                f"ecs:{o.target}",
            )
        )
    revoked = bool(_applied(applied, rot.REVOKE_ACTION))
    return Verification(
        rotated,
        t.new_version if rotated else "",
        bool(ok and (rotated or applied is None)),
        revoked,
        restarted,
        cur_text,
        prev_text,
        tuple(rank(found)),
    )
