"""Sandbox scenario for credential-leak: a CI deploy key that turned up where it should not.

What it seeds (IAM is global in the local AWS server):

- IAM user ``ci-deploy`` with one access key (the "leaked" one) and an inline policy letting it
  read the Secrets Manager secrets under ``fintech/*``, and the role ``ci-deploy-role`` it can
  assume, whose inline policy lets it read ``payments/*``; any ``AWSRevokeOlderSessions``
  policy of an earlier containment is removed, and the key is Active again;
- Secrets Manager: ``fintech/ci-deploy-token`` (a random value, never printed), a secret that
  key could read, so the "rotate next" list is not empty;
- use of the key: the seed calls STS, IAM and Secrets Manager (ListSecrets, in ``eu-west-1``, a
  region the fintech account does not normally use) with it, so ``GetAccessKeyLastUsed``
  reports a recent use.

What the local server cannot show (moto 5.2.5, measured): CloudTrail ``LookupEvents`` is not
implemented at all: every call answers HTTP 500 "The lookup_events action has not been
implemented", whatever the lookup attribute, so the runbook shows no events and says so in a
finding; the grouping of events is tested on CloudTrail-shaped records instead. moto does not
enforce access keys either: a deactivated key still authenticates against the local server,
so the test checks the key's status (``aws iam list-access-keys``), not a refused call.
The secret access key exists only in this process while seeding: it is never returned, stored
or printed.
"""

from __future__ import annotations

import json
import secrets

RUNBOOKS: tuple[str, ...] = ("credential-leak",)

USER = "ci-deploy"
ROLE = "ci-deploy-role"
USER_POLICY = "deploy-secrets"
ROLE_POLICY = "payments-secrets"
SECRET_ID = "fintech/ci-deploy-token"
USED_REGION = "eu-west-1"
REVOKE_POLICY = "AWSRevokeOlderSessions"
TAG = {"Key": "sandbox.opslib.dev/scenario", "Value": "leak"}


def _read_policy(pattern: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": f"arn:aws:secretsmanager:*:*:secret:{pattern}",
                },
                {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"},
            ],
        }
    )


def _reset_user(iam) -> None:
    try:
        keys = iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]
    except iam.exceptions.NoSuchEntityException:
        return
    for k in keys:
        iam.delete_access_key(UserName=USER, AccessKeyId=k["AccessKeyId"])
    for p in iam.list_user_policies(UserName=USER)["PolicyNames"]:
        iam.delete_user_policy(UserName=USER, PolicyName=p)
    iam.delete_user(UserName=USER)


def _reset_role(iam) -> None:
    try:
        names = iam.list_role_policies(RoleName=ROLE)["PolicyNames"]
    except iam.exceptions.NoSuchEntityException:
        return
    for p in names:
        iam.delete_role_policy(RoleName=ROLE, PolicyName=p)
    iam.delete_role(RoleName=ROLE)


def seed_iam(ctx) -> tuple[str, str]:
    """(Re)create the user, its one key and the role; returns (key id, secret key) to the seed only."""
    iam = ctx.aws("iam")
    _reset_user(iam)
    _reset_role(iam)
    user_arn = iam.create_user(UserName=USER, Tags=[TAG])["User"]["Arn"]
    iam.put_user_policy(
        UserName=USER, PolicyName=USER_POLICY, PolicyDocument=_read_policy("fintech/*")
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust), Tags=[TAG])
    iam.put_role_policy(
        RoleName=ROLE, PolicyName=ROLE_POLICY, PolicyDocument=_read_policy("payments/*")
    )
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def seed_secret(ctx) -> None:
    sm = ctx.aws("secretsmanager")
    try:
        sm.delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    except sm.exceptions.ResourceNotFoundException:
        pass
    sm.create_secret(
        Name=SECRET_ID,
        SecretString=json.dumps({"token": secrets.token_urlsafe(32)}),
        Description="CI deploy webhook token (readable by ci-deploy)",
        Tags=[TAG],
    )


def use_key(ctx, key_id: str, secret_key: str) -> None:
    """Calls made with the leaked key, so IAM records its last use (service, region, date)."""
    import boto3

    from opslib.clients import aws_config

    session = boto3.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret_key, region_name=ctx.info.region
    )

    def client(service: str, region: str = ""):
        return session.client(
            service,
            endpoint_url=ctx.info.aws_endpoint,
            region_name=region or ctx.info.region,
            config=aws_config(),
        )

    client("sts").get_caller_identity()
    client("iam").list_users()
    client("secretsmanager", USED_REGION).list_secrets()


def seed(ctx) -> dict[str, dict]:
    """Reset the user, key, role and secret; use the key; return the presets (key id, role)."""
    seed_secret(ctx)
    key_id, secret_key = seed_iam(ctx)
    use_key(ctx, key_id, secret_key)
    del secret_key
    return {"credential-leak": {"access_key_id": key_id, "iam_role": ROLE}}
