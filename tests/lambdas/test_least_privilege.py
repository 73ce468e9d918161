"""Least privilege for real: each handler runs with the temporary credentials of a role that
carries exactly the policy document the security layer attaches (the same shared.policies
builders), under moto's IAM enforcement. It must succeed at its job and be denied elsewhere.

moto 5.2.5 evaluates resource ARNs for S3 but authorises DynamoDB and Secrets Manager requests
against the resource "*", which an exact-ARN statement never matches (every call is denied;
`test_moto_alone_cannot_judge_resource_level_dynamodb_permissions` pins that down). The
`resource_level_iam` fixture gives those two services the request's real resource ARN, the way
moto already does for SQS, so moto's own policy evaluator judges the exact documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]
from moto.core import set_initial_no_auth_action_count
from moto.core.authorization import disable_iam_authentication
from moto.dynamodb.responses import DynamoHandler
from moto.secretsmanager.models import secretsmanager_backends
from moto.secretsmanager.responses import SecretsManagerResponse

from shared.naming import IDEMPOTENCY_KEY_ATTRIBUTE
from shared.policies import api_handler_policy, s3_processor_policy
from tests.lambdas.support import (
    NAMES,
    FunctionLoader,
    InjectedAnswers,
    api_event,
    s3_access_denied,
    s3_event,
    s3_record,
)
from tooling.function_fixtures import api_environment, processor_environment
from tooling.local.functions import LambdaContext

OTHER_BUCKET = "someone-elses-bucket"
OTHER_TABLE = "someone-elses-table"
OTHER_SECRET = "someone-elses/secret"
JSON = {"Content-Type": "application/json"}


def _dynamodb_resource(self: Any) -> str:
    table = self._get_param("TableName")
    if not table:
        return "*"
    return f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"


def _secret_resource(self: Any) -> str:
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    secret = secretsmanager_backends[self.current_account][self.region].secrets.get(secret_id)
    return secret.arn if secret is not None else "*"


@pytest.fixture
def resource_level_iam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DynamoHandler, "_determine_resource", _dynamodb_resource, raising=False)
    monkeypatch.setattr(
        SecretsManagerResponse, "_determine_resource", _secret_resource, raising=False
    )


@dataclass(frozen=True)
class Account:
    """What the storage and security layers would have created, plus someone else's resources."""

    upload_version: str
    secret_arn: str
    other_secret_arn: str
    processor_role_arn: str
    api_role_arn: str
    user_keys: dict[str, str]


def _denied(call: Any) -> None:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    # moto answers JSON-protocol denials with an XML body, so the code may stay unparsed.
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403, response
    assert "AccessDenied" in str(raised.value)


@pytest.fixture
def account(aws: None, resource_level_iam: None) -> Account:
    """Set-up, done before IAM enforcement starts (it runs outside the decorated test)."""
    s3 = boto3.client("s3")
    for name in (NAMES.upload_bucket, OTHER_BUCKET):
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    upload = s3.put_object(Bucket=NAMES.upload_bucket, Key="uploads/job.csv", Body=b"1,2\n")
    s3.put_object(Bucket=OTHER_BUCKET, Key="uploads/job.csv", Body=b"theirs")
    s3.put_object(Bucket=OTHER_BUCKET, Key="results/uploads/job.csv.json", Body=b"{}")
    s3.put_object(
        Bucket=NAMES.upload_bucket,
        Key="results/uploads/done.csv.json",
        Body=json.dumps({"key": "uploads/done.csv", "size": 4}).encode(),
    )

    dynamodb = boto3.client("dynamodb")
    for table in (NAMES.idempotency_table, OTHER_TABLE):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "AttributeType": "S"}
            ],
            BillingMode="PAY_PER_REQUEST",
        )

    secrets = boto3.client("secretsmanager")
    secret_arn = secrets.create_secret(
        Name=f"{NAMES.secret_name_prefix}test", SecretString='{"api_key": "k"}'
    )["ARN"]
    other_secret_arn = secrets.create_secret(Name=OTHER_SECRET, SecretString='{"api_key": "o"}')[
        "ARN"
    ]
    kms_key_arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]

    iam = boto3.client("iam")
    user_arn = iam.create_user(UserName="deployer")["User"]["Arn"]
    # The roles trust the test's user so the test can assume them (in AWS they trust Lambda;
    # moto matches principals literally, so not the account root). What is under test is the
    # permissions document, exactly as the security layer builds it.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
        ],
    }
    documents = {
        NAMES.s3_processor_role: s3_processor_policy(NAMES, kms_key_arn),
        NAMES.api_handler_role: api_handler_policy(NAMES, kms_key_arn, secret_arn),
    }
    role_arns = {}
    for role, document in documents.items():
        role_arns[role] = iam.create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        iam.put_role_policy(RoleName=role, PolicyName=role, PolicyDocument=json.dumps(document))

    iam.put_user_policy(
        UserName="deployer",
        PolicyName="assume-function-roles",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Resource": list(role_arns.values()),
                    }
                ],
            }
        ),
    )
    keys = iam.create_access_key(UserName="deployer")["AccessKey"]
    return Account(
        upload_version=upload["VersionId"],
        secret_arn=secret_arn,
        other_secret_arn=other_secret_arn,
        processor_role_arn=role_arns[NAMES.s3_processor_role],
        api_role_arn=role_arns[NAMES.api_handler_role],
        user_keys={
            "aws_access_key_id": keys["AccessKeyId"],
            "aws_secret_access_key": keys["SecretAccessKey"],
        },
    )


@pytest.fixture
def become(account: Account, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Switch the environment's credentials to the role's, as Lambda does for the function."""

    def assume(role_arn: str) -> None:
        sts = boto3.client("sts", **account.user_keys)
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="handler-test")[
            "Credentials"
        ]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
        monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])

    yield assume


def _role_client(service: str) -> Any:
    # A new session reads the credentials now in the environment (boto3's default session
    # would keep the ones it resolved first).
    return boto3.session.Session().client(service)


# The S3 processor


@set_initial_no_auth_action_count(0)
def test_processor_role_processes_an_upload(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    processor_context: LambdaContext,
) -> None:
    become(account.processor_role_arn)
    processor = loader.load_with("s3_processor", processor_environment(), monkeypatch)
    event = s3_event(s3_record("uploads/job.csv", version_id=account.upload_version))

    assert processor.lambda_handler(event, processor_context)["processed"] == 1
    assert processor.lambda_handler(event, processor_context)["duplicate"] == 1
    with disable_iam_authentication():
        result = boto3.client(
            "s3", aws_access_key_id="testing", aws_secret_access_key="testing"
        ).get_object(Bucket=NAMES.upload_bucket, Key="results/uploads/job.csv.json")
        assert json.loads(result["Body"].read())["size"] == 4


@set_initial_no_auth_action_count(0)
def test_processor_role_orders_versions_and_recognises_a_deleted_upload(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    processor_context: LambdaContext,
) -> None:
    with disable_iam_authentication():
        s3_admin = boto3.client("s3", aws_access_key_id="testing", aws_secret_access_key="testing")
        second, third = (
            s3_admin.put_object(Bucket=NAMES.upload_bucket, Key="uploads/job.csv", Body=body)
            for body in (b"2", b"3")
        )
        gone = s3_admin.put_object(Bucket=NAMES.upload_bucket, Key="uploads/gone.csv", Body=b"")
        s3_admin.delete_object(
            Bucket=NAMES.upload_bucket, Key="uploads/gone.csv", VersionId=gone["VersionId"]
        )
    become(account.processor_role_arn)
    processor = loader.load_with("s3_processor", processor_environment(), monkeypatch)
    # S3 answers the role 403 for the deleted version (moto: 404); the listing that follows,
    # ListObjectVersions on the upload prefix, runs under the role for real.
    InjectedAnswers(processor.s3_client, "GetObject", [s3_access_denied()])
    deleted = s3_record("uploads/gone.csv", version_id=gone["VersionId"], sequencer="01")
    assert processor.lambda_handler(s3_event(deleted), processor_context)["gone"] == 1

    # The first result is created; the third version replaces it (HeadObject on the result,
    # then a conditional PutObject); the second, delivered late, reads it and writes nothing.
    versions = (account.upload_version, second["VersionId"], third["VersionId"])
    first, middle, last = (
        s3_event(s3_record("uploads/job.csv", version_id=version, sequencer=sequencer))
        for version, sequencer in zip(versions, ("0A", "0B", "0C"), strict=True)
    )
    assert processor.lambda_handler(first, processor_context)["processed"] == 1
    assert processor.lambda_handler(last, processor_context)["processed"] == 1
    assert processor.lambda_handler(middle, processor_context)["superseded"] == 1


@set_initial_no_auth_action_count(0)
def test_processor_role_is_denied_outside_its_job(
    account: Account, become: Any, loader: FunctionLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    become(account.processor_role_arn)
    processor = loader.load_with("s3_processor", processor_environment(), monkeypatch)
    s3, dynamodb = processor.s3_client, processor.persistence_store.client
    secrets = _role_client("secretsmanager")

    _denied(lambda: s3.get_object(Bucket=OTHER_BUCKET, Key="uploads/job.csv"))
    _denied(lambda: s3.put_object(Bucket=OTHER_BUCKET, Key="results/x.json", Body=b"{}"))
    _denied(lambda: s3.head_object(Bucket=OTHER_BUCKET, Key="results/uploads/job.csv.json"))
    _denied(lambda: s3.list_object_versions(Bucket=OTHER_BUCKET, Prefix="uploads/job.csv"))
    _denied(lambda: s3.list_objects_v2(Bucket=OTHER_BUCKET, Prefix="uploads/job.csv"))
    # In its own bucket: no writing uploads (no loops, no tampering), no deleting anything.
    _denied(lambda: s3.put_object(Bucket=NAMES.upload_bucket, Key="uploads/new.csv", Body=b"x"))
    _denied(lambda: s3.delete_object(Bucket=NAMES.upload_bucket, Key="uploads/job.csv"))
    _denied(lambda: s3.get_object(Bucket=NAMES.upload_bucket, Key="elsewhere/x.csv"))
    # The listings' s3:prefix condition (uploads/ only) cannot be judged here: moto evaluates
    # StringEquals conditions only and treats every other operator as met. The document is
    # checked instead (tests/infra/test_security_layer.py).
    _denied(lambda: dynamodb.put_item(TableName=OTHER_TABLE, Item={"id": {"S": "x"}}))
    _denied(lambda: dynamodb.get_item(TableName=OTHER_TABLE, Key={"id": {"S": "x"}}))
    _denied(lambda: secrets.get_secret_value(SecretId=account.secret_arn))


@pytest.mark.parametrize(
    "override",
    [{"BUCKET_NAME": OTHER_BUCKET}, {"IDEMPOTENCY_TABLE_NAME": OTHER_TABLE}],
    ids=["other-bucket", "other-table"],
)
@set_initial_no_auth_action_count(0)
def test_processor_pointed_at_another_bucket_or_table_fails(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    processor_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    override: dict[str, str],
) -> None:
    become(account.processor_role_arn)
    processor = loader.load_with(
        "s3_processor", {**processor_environment(), **override}, monkeypatch
    )
    bucket = override.get("BUCKET_NAME", NAMES.upload_bucket)
    version = None if bucket == OTHER_BUCKET else account.upload_version

    with pytest.raises(processor.RecordsFailedError):
        processor.lambda_handler(
            s3_event(s3_record("uploads/job.csv", bucket=bucket, version_id=version)),
            processor_context,
        )
    assert "AccessDenied" in capsys.readouterr().out


# The API handler


@set_initial_no_auth_action_count(0)
def test_api_role_serves_results_and_signs_with_the_secret(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    api_context: LambdaContext,
) -> None:
    become(account.api_role_arn)
    api = loader.load_with("api_handler", api_environment(account.secret_arn), monkeypatch)

    done = api.lambda_handler(
        api_event("GET", "/objects/uploads/done.csv", path_parameters={"key": "uploads/done.csv"}),
        api_context,
    )
    missing = api.lambda_handler(
        api_event("GET", "/objects/uploads/none.csv", path_parameters={"key": "uploads/none.csv"}),
        api_context,
    )
    signed = api.lambda_handler(
        api_event("POST", "/process", body='{"name":"x","data":{}}', headers=JSON), api_context
    )

    assert done["statusCode"] == 200
    assert json.loads(done["body"])["result"]["size"] == 4
    assert missing["statusCode"] == 404
    assert signed["statusCode"] == 200


@set_initial_no_auth_action_count(0)
def test_api_role_is_denied_outside_its_job(
    account: Account, become: Any, loader: FunctionLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    become(account.api_role_arn)
    api = loader.load_with("api_handler", api_environment(account.secret_arn), monkeypatch)
    s3 = api.s3_client()
    secrets = api.secrets_provider().client

    _denied(lambda: secrets.get_secret_value(SecretId=account.other_secret_arn))
    _denied(lambda: s3.get_object(Bucket=OTHER_BUCKET, Key="results/uploads/job.csv.json"))
    # In its own bucket: no reading uploads, no writing anything.
    _denied(lambda: s3.get_object(Bucket=NAMES.upload_bucket, Key="uploads/job.csv"))
    _denied(
        lambda: s3.put_object(Bucket=NAMES.upload_bucket, Key="results/forged.json", Body=b"{}")
    )
    _denied(
        lambda: _role_client("dynamodb").put_item(
            TableName=NAMES.idempotency_table, Item={"id": {"S": "x"}}
        )
    )


@pytest.mark.parametrize(
    ("override", "event"),
    [
        (
            {"SECRET_ARN": "other"},
            api_event("POST", "/process", body='{"name":"x","data":{}}', headers=JSON),
        ),
        (
            {"BUCKET_NAME": OTHER_BUCKET},
            api_event(
                "GET", "/objects/uploads/job.csv", path_parameters={"key": "uploads/job.csv"}
            ),
        ),
    ],
    ids=["other-secret", "other-bucket"],
)
@set_initial_no_auth_action_count(0)
def test_api_pointed_at_another_secret_or_bucket_answers_a_generic_500(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    api_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    override: dict[str, str],
    event: dict[str, Any],
) -> None:
    become(account.api_role_arn)
    if override.get("SECRET_ARN") == "other":
        override = {"SECRET_ARN": account.other_secret_arn}
    api = loader.load_with(
        "api_handler", {**api_environment(account.secret_arn), **override}, monkeypatch
    )

    response = api.lambda_handler(event, api_context)

    assert response["statusCode"] == 500
    assert "AccessDenied" not in response["body"]
    assert "AccessDenied" in capsys.readouterr().out  # the log says why


# The gap the resource_level_iam fixture fills


@set_initial_no_auth_action_count(0)
def test_moto_alone_cannot_judge_resource_level_dynamodb_permissions(
    account: Account, become: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If this starts failing, moto has learnt DynamoDB resource ARNs: drop resource_level_iam.
    monkeypatch.delattr(DynamoHandler, "_determine_resource")
    become(account.processor_role_arn)
    _denied(
        lambda: _role_client("dynamodb").get_item(
            TableName=NAMES.idempotency_table, Key={"id": {"S": "x"}}
        )
    )
