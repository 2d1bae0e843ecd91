"""The ONE place boto3 sessions, Kubernetes API clients and psycopg connections are built.

Domain functions take these as keyword-only arguments (``def find_blocking(*, conn)``), so they
can be pointed at production, a role in another account, or the local sandbox without change.
Everything comes from the standard chains: AWS profile/SSO/env/role and ``AWS_ENDPOINT_URL``;
kubeconfig or in-cluster config; libpq conninfo plus ``PG*`` variables and ``.pgpass``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from opslib.errors import ClientConfigError, SecretInParameterError

DEFAULT_REGION = "us-east-1"

# Client-side bounds: an on-call tool must never hang on a dead endpoint.
AWS_CONNECT_TIMEOUT = 5
AWS_READ_TIMEOUT = 30
PG_CONNECT_TIMEOUT = 5
PG_STATEMENT_TIMEOUT_MS = 15_000


def aws_session(
    *, region: str = "", profile: str = "", role_arn: str = "", session_name: str = "opslib"
):
    """A boto3 Session from the standard chain; assumes ``role_arn`` when given.

    ``AWS_ENDPOINT_URL`` (and per-service ``AWS_ENDPOINT_URL_<SERVICE>``) is honoured by botocore
    itself, which is how the sandbox is reached.
    """
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=profile or None, region_name=region or None)
    except botocore.exceptions.ProfileNotFound as exc:
        raise ClientConfigError(
            f"AWS profile not found: {exc}. Check AWS_PROFILE / ~/.aws/config."
        ) from exc
    if not session.region_name:
        session = boto3.Session(profile_name=profile or None, region_name=DEFAULT_REGION)
    if role_arn:
        sts = session.client("sts", config=aws_config())
        try:
            creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        except botocore.exceptions.ClientError as exc:
            raise ClientConfigError(f"Cannot assume role {role_arn}: {exc}") from exc
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=session.region_name,
        )
    if session.get_credentials() is None:
        raise ClientConfigError(
            "No AWS credentials found. Set AWS_PROFILE (or run `aws sso login`), or for the local "
            'sandbox: eval "$(opslib sandbox env)".'
        )
    return session


def aws_config(**overrides: Any):
    """botocore Config with bounded timeouts and adaptive retries (throttling backs off)."""
    from botocore.config import Config

    kw: dict[str, Any] = {
        "connect_timeout": AWS_CONNECT_TIMEOUT,
        "read_timeout": AWS_READ_TIMEOUT,
        "retries": {"max_attempts": 5, "mode": "adaptive"},
        "user_agent_extra": "opslib",
    }
    kw.update(overrides)
    return Config(**kw)


def aws_client(service: str, *, region: str = "", session=None, **config_overrides: Any):
    """A boto3 client for ``service`` with opslib's bounded config."""
    session = session or aws_session(region=region)
    return session.client(
        service, region_name=region or session.region_name, config=aws_config(**config_overrides)
    )


def aws_caller_arn(*, session=None) -> str:
    """The caller's ARN for the evidence, or "" when STS is unreachable (never raises)."""
    try:
        sts = aws_client(
            "sts", session=session, connect_timeout=2, read_timeout=3, retries={"max_attempts": 1}
        )
        return sts.get_caller_identity().get("Arn", "")
    except Exception:  # noqa: BLE001 - the caller ARN is best-effort context, not a precondition
        return ""


def k8s_api(*, context: str = "", kubeconfig: str = ""):
    """A kubernetes ``ApiClient``: kubeconfig (``KUBECONFIG``, ``context``) or in-cluster config."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig or os.environ.get("KUBECONFIG", "")
    try:
        if path or os.path.exists(os.path.expanduser("~/.kube/config")):
            return config.new_client_from_config(config_file=path or None, context=context or None)
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        return client.ApiClient(cfg)
    except (ConfigException, FileNotFoundError) as exc:
        raise ClientConfigError(
            f"No usable Kubernetes config ({exc}). Set KUBECONFIG or --context, or for the local "
            'sandbox: eval "$(opslib sandbox env)".'
        ) from exc


_PASSWORD_KV = re.compile(r"(?:^|\s)password\s*=", re.IGNORECASE)
_PASSWORD_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


def refuse_password_in_conninfo(conninfo: str, *, parameter: str = "pg_dsn") -> None:
    """Secrets never go in parameters: refuse a conninfo/URL carrying a password."""
    if conninfo and (_PASSWORD_KV.search(conninfo) or _PASSWORD_URL.search(conninfo)):
        raise SecretInParameterError(
            f"Parameter {parameter} carries a password. Remove it and supply the password through "
            "PGPASSWORD, ~/.pgpass (PGPASSFILE), or a service file (PGSERVICE), never a parameter."
        )


def pg_connect(
    conninfo: str = "",
    *,
    runbook: str = "",
    statement_timeout_ms: int = PG_STATEMENT_TIMEOUT_MS,
    connect_timeout: int = PG_CONNECT_TIMEOUT,
    autocommit: bool = True,
    parameter: str = "pg_dsn",
):
    """A psycopg connection from ``conninfo`` plus ``PG*`` variables and ``.pgpass``.

    Bounded connect_timeout, a server-side statement_timeout and ``application_name
    opslib/<runbook>`` (so the runbook can recognise, and never terminate, its own session).
    """
    import psycopg

    refuse_password_in_conninfo(conninfo, parameter=parameter)
    app = f"opslib/{runbook}" if runbook else "opslib"
    try:
        return psycopg.connect(
            conninfo,
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name=app,
            options=f"-c statement_timeout={int(statement_timeout_ms)}",
        )
    except psycopg.OperationalError as exc:
        raise ClientConfigError(
            f"Cannot connect to PostgreSQL ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc}). "
            "Check the conninfo, PGHOST/PGPORT/PGUSER, and that the password is in PGPASSWORD or ~/.pgpass."
        ) from exc
