"""Sandbox scenario for secrets-rotation: a database credential due for rotation, in use.

What it seeds:

- PostgreSQL: database ``fintech`` and the LOGIN role ``app_user`` with a password generated at
  seed time; the role is a member of ``opslib_password_auth``, for which the scenario puts
  ``host all +opslib_password_auth 127.0.0.1/32 scram-sha-256`` at the top of ``pg_hba.conf``
  (the sandbox cluster trusts every other login), so a wrong password really is refused;
- Secrets Manager: ``fintech/db-credentials`` = {engine, host, port, username, password,
  dbname} for that role (AWSCURRENT), plus a stale AWSPENDING version with another password
  that never reached the database: a scheduled rotation that did not finish;
- Kubernetes (``fintech-banking``): the Opaque secret ``db-credentials`` with the same fields
  and the deployment ``account-service`` (2 replicas) reading it through ``envFrom``.

What the sandbox cannot show: the local AWS server (moto 5.2.5) stamps LastChangedDate and
CreatedDate with the time of the call and cannot backdate them, so the secret is as old as the
seed, not 120 days; the audit's age check is tested with an explicit clock instead. There is
no rotation Lambda (moto would need a container runtime to run one), so ``auto`` picks the
``postgres`` method here. The seeded password exists only in PostgreSQL's SCRAM verifier, the
secret and the Kubernetes secret: it is never printed or written to a file.
"""

from __future__ import annotations

import base64
import json
import secrets

RUNBOOKS: tuple[str, ...] = ("secrets-rotation",)

SECRET_ID = "fintech/db-credentials"
DB_NAME = "fintech"
ROLE = "app_user"
AUTH_GROUP = "opslib_password_auth"
HBA_LINE = f"host all +{AUTH_GROUP} 127.0.0.1/32 scram-sha-256"
K8S_NAMESPACE = "fintech-banking"
K8S_SECRET = "db-credentials"
DEPLOYMENT = "account-service"
LABEL = {"sandbox.opslib.dev/scenario": "secrets"}


def ensure_password_auth(conn) -> None:
    """Members of ``opslib_password_auth`` log in with a password (scram) on 127.0.0.1; reloads."""
    from psycopg import sql

    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (AUTH_GROUP,)).fetchone() is None:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(AUTH_GROUP)))
    path = conn.execute("SHOW hba_file").fetchone()[0]
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if HBA_LINE not in text:
        with open(
            path, "w", encoding="utf-8"
        ) as fh:  # in place: keeps the PostgreSQL user's ownership
            fh.write(
                f"# opslib sandbox: password logins for {AUTH_GROUP} members\n{HBA_LINE}\n{text}"
            )
        conn.execute("SELECT pg_reload_conf()")


def create_login_role(conn, role: str, password: str) -> None:
    """A LOGIN role with ``password`` (SCRAM verifier made client side) in the password group."""
    from psycopg import sql

    verifier = conn.pgconn.encrypt_password(
        password.encode(), role.encode(), b"scram-sha-256"
    ).decode()
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier)
        )
    )
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(AUTH_GROUP), sql.Identifier(role)))


def credentials(ctx, role: str, password: str, dbname: str = DB_NAME) -> dict:
    return {
        "engine": "postgres",
        "host": ctx.info.pg_host,
        "port": int(ctx.info.pg_port),
        "username": role,
        "password": password,
        "dbname": dbname,
    }


def seed_database(ctx, password: str) -> None:
    from psycopg import sql

    with ctx.pg_connect() as conn:
        ensure_password_auth(conn)
        if (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            is None
        ):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
        create_login_role(conn, ROLE, password)
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (ROLE,)
        )


def seed_secret(ctx, body: dict) -> str:
    sm = ctx.aws("secretsmanager")
    try:
        sm.delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    except sm.exceptions.ResourceNotFoundException:
        pass
    arn = sm.create_secret(
        Name=SECRET_ID,
        SecretString=json.dumps(body),
        Description="fintech core DB (app_user)",
        Tags=[{"Key": k, "Value": v} for k, v in LABEL.items()],
    )["ARN"]
    stale = {**body, "password": secrets.token_urlsafe(32)}
    sm.put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps(stale), VersionStages=["AWSPENDING"]
    )
    return arn


def seed_k8s(ctx, body: dict) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = ctx.k8s()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    try:
        core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": K8S_NAMESPACE}}
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    for delete in (
        lambda: core.delete_namespaced_secret(K8S_SECRET, K8S_NAMESPACE),
        lambda: apps.delete_namespaced_deployment(DEPLOYMENT, K8S_NAMESPACE),
    ):
        try:
            delete()
        except ApiException as exc:
            if exc.status != 404:
                raise
    data = {k: base64.b64encode(str(v).encode()).decode() for k, v in body.items() if k != "engine"}
    core.create_namespaced_secret(
        K8S_NAMESPACE,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": K8S_SECRET, "namespace": K8S_NAMESPACE, "labels": LABEL},
            "data": data,
        },
    )
    apps.create_namespaced_deployment(
        K8S_NAMESPACE,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": DEPLOYMENT,
                "namespace": K8S_NAMESPACE,
                "labels": {**LABEL, "app": DEPLOYMENT},
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": DEPLOYMENT}},
                "template": {
                    "metadata": {"labels": {"app": DEPLOYMENT}},
                    "spec": {
                        "containers": [
                            {
                                "name": DEPLOYMENT,
                                "image": "fintech/account-service:4.1.0",
                                "envFrom": [{"secretRef": {"name": K8S_SECRET}}],
                            }
                        ]
                    },
                },
            },
        },
    )


def seed(ctx) -> dict[str, dict]:
    """(Re)create the credential everywhere it lives; returns the presets of ``secrets-rotation``."""
    password = secrets.token_urlsafe(32)
    body = credentials(ctx, ROLE, password)
    seed_database(ctx, password)
    seed_secret(ctx, body)
    seed_k8s(ctx, body)
    return {
        "secrets-rotation": {
            "secret_id": SECRET_ID,
            "admin_dsn": ctx.pg_conninfo(DB_NAME),
            "k8s_secret": f"{K8S_NAMESPACE}/{K8S_SECRET}:password",
            "restart_deployments": f"{K8S_NAMESPACE}/{DEPLOYMENT}",
            "region": ctx.info.region,
        }
    }
