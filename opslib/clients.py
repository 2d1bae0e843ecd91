"""The ONE place boto3 sessions, Kubernetes API clients and psycopg connections are built.

Domain functions take these as keyword-only arguments (``def find_blocking(*, conn)``), so they
can be pointed at production, a role in another account, or the local sandbox without change.
Everything comes from the standard chains: AWS profile/SSO/env/role and ``AWS_ENDPOINT_URL``;
kubeconfig or in-cluster config; libpq conninfo plus ``PG*`` variables and ``.pgpass``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from opslib.core.errors import (
    AccessDeniedError,
    ClientConfigError,
    ConflictError,
    NotFoundError,
    OpslibError,
    SecretInParameterError,
    ThrottledError,
    UnsupportedError,
)
from opslib.core.findings import Finding, Severity

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    from boto3 import Session
    from botocore.client import BaseClient

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


def aws_client(
    service: str, *, region: str = "", session: Session | None = None, **config_overrides: Any
) -> BaseClient:
    """A boto3 client for ``service`` with opslib's bounded config."""
    session = session or aws_session(region=region)
    return session.client(
        service, region_name=region or session.region_name, config=aws_config(**config_overrides)
    )


@dataclass(frozen=True)
class AwsClientFactory:
    """A picklable recipe for a boto3 client, for worker processes.

    A boto3 client cannot cross a process boundary. Rebuilding one in a worker from the default
    chain would silently use other credentials than the parent's (another profile, no assumed
    role). The factory carries the parent session's resolved credentials, region and endpoint,
    so a worker's client is the parent's client, rebuilt. Built by :func:`client_factory`.
    Its ``repr`` never shows the keys.
    """

    service: str
    region: str
    endpoint_url: str | None = None
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    token: str | None = field(default=None, repr=False)
    profile: str = ""
    config_overrides: tuple[tuple[str, Any], ...] = ()

    def __call__(self) -> BaseClient:
        import boto3

        if self.access_key:
            session = boto3.Session(
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                aws_session_token=self.token,
                region_name=self.region,
            )
        else:  # no resolved credentials to carry: the same profile's chain
            session = boto3.Session(profile_name=self.profile or None, region_name=self.region)
        return session.client(
            self.service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=aws_config(**dict(self.config_overrides)),
        )


def client_factory(client: BaseClient, **config_overrides: Any) -> AwsClientFactory:
    """A picklable :class:`AwsClientFactory` that rebuilds ``client`` (same credentials, region,
    endpoint) in another process. ``config_overrides`` are opslib's :func:`aws_config` overrides
    for the rebuilt client."""
    meta = client.meta
    creds = client._request_signer._credentials  # the credentials this client signs with
    frozen = creds.get_frozen_credentials() if creds is not None else None
    return AwsClientFactory(
        service=meta.service_model.service_name,
        region=meta.region_name,
        endpoint_url=meta.endpoint_url,
        access_key=frozen.access_key if frozen else "",
        secret_key=frozen.secret_key if frozen else "",
        token=frozen.token if frozen else None,
        config_overrides=tuple(sorted(config_overrides.items())),
    )


class AwsErrorKind(StrEnum):
    """What an AWS error means for a runbook, whatever the service calls it."""

    NOT_FOUND = "not-found"
    DENIED = "denied"
    THROTTLED = "throttled"
    CONFLICT = "conflict"
    UNSUPPORTED = "unsupported"
    OTHER = "other"


_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "OptInRequired",  # a region the account has not opted in to
    "AuthorizationError",
    "Forbidden",
    "403",
}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "KmsThrottled",
    "KMS.ThrottlingException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "LimitExceededException",
    "PriorRequestNotComplete",
    "429",
}
_CONFLICT = {
    "ConflictException",
    "ResourceInUseException",
    "ResourceInUse",
    "InvalidDBClusterStateFault",
    "InvalidDBInstanceStateFault",
    "OperationAborted",
    "ResourceConflictException",
    "TransactionConflictException",
    "IncorrectState",
    "InvalidParameterCombination",
    "DBClusterAlreadyExistsFault",
    "DBInstanceAlreadyExists",
    "TableAlreadyExistsException",
    "AlreadyExists",
    "AlreadyExistsException",
    "QueueAlreadyExists",
    "409",
    "412",
    "PreconditionFailed",
}
_NOT_FOUND = {
    "404",
    "NoSuchKey",
    "NoSuchBucket",
    "NotFound",
    "ResourceNotFoundException",
    "QueueDoesNotExist",  # SQS (JSON protocol); the query protocol says ...NonExistentQueue
}
_UNSUPPORTED = {
    "UnsupportedOperation",
    "UnsupportedOperationException",
    "InvalidAction",
    "NotImplemented",
    "UnknownOperationException",
    "OperationNotSupported",
    "501",
}


def aws_error_code(exc: BaseException) -> str:
    """The error code of a botocore ``ClientError`` ("" for anything else); the one place it is read."""
    resp = getattr(exc, "response", None)
    if not isinstance(resp, dict):
        return ""
    code = str((resp.get("Error") or {}).get("Code", "") or "")
    if not code:
        status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        code = str(status) if status else ""
    return code


def aws_error_kind(exc: BaseException) -> AwsErrorKind:
    """Classify an AWS error: not found, denied, throttled, conflict, unsupported or other."""
    return aws_code_kind(aws_error_code(exc))


def aws_code_kind(code: str) -> AwsErrorKind:
    """Classify a bare AWS error code (a batch entry's ``Code``, a response hook's payload)."""
    if not code:
        return AwsErrorKind.OTHER
    if code in _DENIED:
        return AwsErrorKind.DENIED
    if code in _THROTTLED:
        return AwsErrorKind.THROTTLED
    if code in _CONFLICT or code.endswith("AlreadyExists") or code.endswith("AlreadyExistsFault"):
        return AwsErrorKind.CONFLICT
    if code in _UNSUPPORTED:
        return AwsErrorKind.UNSUPPORTED
    if (
        code in _NOT_FOUND
        or code.endswith("NotFound")
        or code.endswith("NotFoundFault")
        or code.endswith("NotFoundException")
        or code.startswith("NoSuch")
        or code.endswith("NonExistentQueue")
    ):
        return AwsErrorKind.NOT_FOUND
    return AwsErrorKind.OTHER


_KIND_ERRORS: dict[AwsErrorKind, type[OpslibError]] = {
    AwsErrorKind.NOT_FOUND: NotFoundError,
    AwsErrorKind.DENIED: AccessDeniedError,
    AwsErrorKind.THROTTLED: ThrottledError,
    AwsErrorKind.CONFLICT: ConflictError,
    AwsErrorKind.UNSUPPORTED: UnsupportedError,
}

_NEXT = {
    AwsErrorKind.NOT_FOUND: "check the name, the region and the account",
    AwsErrorKind.DENIED: "ask for the IAM permission named above (or use a role that has it)",
    AwsErrorKind.THROTTLED: "the API kept throttling after retries: wait and run again, or narrow the scope",
    AwsErrorKind.CONFLICT: "the target's current state forbids this: look at it, then run again",
    AwsErrorKind.UNSUPPORTED: "this endpoint does not offer the API: use another strategy or endpoint",
}


def translate_aws_error(exc: BaseException, what: str) -> OpslibError:
    """An opslib error for an AWS error, naming ``what`` was attempted and what to do next.

    ``raise translate_aws_error(exc, "sqs:GetQueueUrl orders-dlq") from exc``. Errors of no
    known kind become a plain :class:`OpslibError` carrying the code and message.
    """
    kind = aws_error_kind(exc)
    code = aws_error_code(exc) or type(exc).__name__
    msg = (getattr(exc, "response", None) or {}).get("Error", {}).get("Message", "") or str(exc)
    cls = _KIND_ERRORS.get(kind, OpslibError)
    hint = _NEXT.get(kind, "see the error above")
    err = cls(f"{what}: {code}: {msg}. Next: {hint}.")
    err.aws_code = code  # type: ignore[attr-defined]
    err.aws_kind = kind  # type: ignore[attr-defined]
    return err


#: what an optional read (one the runbook can do without) may answer and still be a finding:
#: denied (least privilege), unsupported (an endpoint without the API), throttled after retries
OPTIONAL_READ_KINDS = frozenset(
    {AwsErrorKind.DENIED, AwsErrorKind.UNSUPPORTED, AwsErrorKind.THROTTLED}
)


def optional_read_finding(exc: BaseException, what: str, *, source: str) -> Finding:
    """A WARNING finding for an optional read that was denied, unsupported or throttled.

    The text is the one shared translation (:func:`opslib.clients.translate_aws_error`): the
    code, the message and the next step for its kind.
    """
    kind = aws_error_kind(exc)
    err = translate_aws_error(exc, what)
    return Finding(
        Severity.WARNING,
        f"{what}: {kind.value} ({getattr(err, 'aws_code', '') or type(exc).__name__})",
        source,
        str(err)[:500],
        "The runbook went on without it; see the next finding for what it used instead.",
        {"aws_kind": kind.value},
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
