"""Clients come from the standard chains and refuse secrets in parameters."""

from __future__ import annotations

import pytest

from opslib import clients
from opslib.core.errors import ClientConfigError, SecretInParameterError


@pytest.mark.parametrize(
    "conninfo",
    [
        "host=db user=app password=hunter2hunter2",
        "host=db PASSWORD = x dbname=app",
        "postgresql://app:s3cret@db:5432/app",
        "postgres://app:s3cret@db/app?sslmode=require",
    ],
)
def test_conninfo_with_a_password_is_refused_with_the_safe_alternative(conninfo):
    with pytest.raises(SecretInParameterError, match="PGPASSWORD"):
        clients.refuse_password_in_conninfo(conninfo)


@pytest.mark.parametrize(
    "conninfo", ["", "host=db user=app dbname=app", "postgresql://app@db:5432/app", "service=prod"]
)
def test_conninfo_without_password_is_accepted(conninfo):
    clients.refuse_password_in_conninfo(conninfo)


def test_unreachable_postgres_is_a_clear_client_error():
    with pytest.raises(ClientConfigError, match="Cannot connect to PostgreSQL"):
        clients.pg_connect("host=127.0.0.1 port=1 user=nobody dbname=none", connect_timeout=2)


def test_missing_kubeconfig_is_a_clear_client_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClientConfigError, match="KUBECONFIG"):
        clients.k8s_api(kubeconfig=str(tmp_path / "missing"))


def test_pg_connect_sets_application_name_and_statement_timeout(sandbox):
    with clients.pg_connect("", runbook="latency-triage", statement_timeout_ms=1234) as conn:
        app, timeout = conn.execute(
            "select current_setting('application_name'), current_setting('statement_timeout')"
        ).fetchone()
    assert app == "opslib/latency-triage"
    assert timeout == "1234ms"


def test_aws_client_reaches_the_endpoint_from_the_environment(sandbox):
    s3 = clients.aws_client("s3")
    s3.create_bucket(Bucket="opslib-clients-test")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "opslib-clients-test" in names
    assert clients.aws_caller_arn().startswith("arn:aws:")


def test_k8s_api_from_the_sandbox_kubeconfig(sandbox):
    from kubernetes import client as k8s

    api = clients.k8s_api()
    namespaces = k8s.CoreV1Api(api).list_namespace()
    assert namespaces.items is not None


def test_aws_error_codes_are_classified_once():
    from opslib.clients import AwsErrorKind, aws_code_kind

    assert aws_code_kind("AccessDenied") is AwsErrorKind.DENIED
    assert aws_code_kind("OptInRequired") is AwsErrorKind.DENIED
    assert aws_code_kind("ThrottlingException") is AwsErrorKind.THROTTLED
    assert aws_code_kind("KmsThrottled") is AwsErrorKind.THROTTLED
    assert aws_code_kind("QueueDoesNotExist") is AwsErrorKind.NOT_FOUND
    assert aws_code_kind("AWS.SimpleQueueService.NonExistentQueue") is AwsErrorKind.NOT_FOUND
    assert aws_code_kind("DBClusterNotFoundFault") is AwsErrorKind.NOT_FOUND
    assert aws_code_kind("DBClusterAlreadyExistsFault") is AwsErrorKind.CONFLICT
    assert aws_code_kind("InvalidAction") is AwsErrorKind.UNSUPPORTED
    assert aws_code_kind("") is AwsErrorKind.OTHER and aws_code_kind("Weird") is AwsErrorKind.OTHER


def test_translate_aws_error_names_what_and_next_step():
    from botocore.exceptions import ClientError

    from opslib.clients import translate_aws_error
    from opslib.core.errors import AccessDeniedError, NotFoundError

    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "no sqs:ListQueues"}}, "ListQueues"
    )
    err = translate_aws_error(denied, "sqs:ListQueues")
    assert isinstance(err, AccessDeniedError)
    assert "sqs:ListQueues" in str(err) and "no sqs:ListQueues" in str(err) and "Next:" in str(err)
    missing = ClientError(
        {"Error": {"Code": "QueueDoesNotExist", "Message": "gone"}}, "GetQueueUrl"
    )
    assert isinstance(translate_aws_error(missing, "sqs:GetQueueUrl x"), NotFoundError)
