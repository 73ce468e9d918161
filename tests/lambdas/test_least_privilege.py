"""Least privilege for real: each handler runs with the temporary credentials of a role that
carries exactly the policy document the security layer attaches (the same shared.policies
builders), under moto's IAM enforcement. It must succeed at its job and be denied elsewhere.

moto 5.2.5 evaluates resource ARNs for S3 (and SQS) but authorises DynamoDB and Secrets Manager
requests against the resource "*", which an exact-ARN statement never matches: every call would
be denied (`test_moto_cannot_judge_resource_level_permissions_for` pins that down, and fails the
day moto learns those ARNs). moto offers no public way to change that, so the roles here carry the
security layer's document with only those two services' statements widened to "*": moto then
judges which *actions* each role has. Which *resources* they reach is proved by two other means:
the calls a handler makes are recorded (botocore's public event hooks): doing its job they name
exactly the resource the document grants, and pointed at someone else's table or secret they
name one the document does not grant (which AWS would deny); tests/infra/test_security_layer.py
checks the deployed documents' exact ARNs.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]
from moto.core import set_initial_no_auth_action_count
from moto.core.authorization import disable_iam_authentication

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
JSON = {"Content-Type": "application/json"}


# The services whose requests moto 5.2.5 authorises against the resource "*" (their response
# classes do not determine a resource ARN, unlike S3's, SQS's, IAM's and STS's).
MOTO_JUDGES_ONLY_STAR = ("dynamodb", "secretsmanager")


def _as_moto_can_judge(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the statements moto cannot match by ARN widened to "*"."""

    def widened(statement: dict[str, Any]) -> dict[str, Any]:
        actions = statement["Action"]
        services = {
            action.split(":")[0] for action in ([actions] if isinstance(actions, str) else actions)
        }
        if services <= set(MOTO_JUDGES_ONLY_STAR):
            return {**statement, "Resource": "*"}
        return statement

    return {**document, "Statement": [widened(s) for s in document["Statement"]]}


def _granted(document: dict[str, Any], action: str) -> list[str]:
    """The resources the document's Allow statements grant the action on."""
    resources: list[str] = []
    for statement in document["Statement"]:
        actions = statement["Action"]
        if statement["Effect"] == "Allow" and action in (
            [actions] if isinstance(actions, str) else actions
        ):
            granted = statement["Resource"]
            resources.extend([granted] if isinstance(granted, str) else granted)
    return resources


def _allows(document: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an Allow statement of the document matches the action on the resource (IAM's
    `*` and `?` wildcards are fnmatch's; ARNs hold no `[`)."""
    return any(fnmatch.fnmatchcase(resource, pattern) for pattern in _granted(document, action))


class CallRecorder:
    """The requests a client sends, by operation, read from botocore's public event hooks."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        service = client.meta.service_model.service_name
        client.meta.events.register(f"provide-client-params.{service}", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))


@dataclass(frozen=True)
class Account:
    """What the storage and security layers would have created, plus someone else's resources."""

    upload_version: str
    table_arn: str
    secret_arn: str
    documents: dict[str, dict[str, Any]]
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
def account(aws: None) -> Account:
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
    table_arn = dynamodb.create_table(
        TableName=NAMES.idempotency_table,
        KeySchema=[{"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]

    secrets = boto3.client("secretsmanager")
    secret_arn = secrets.create_secret(
        Name=f"{NAMES.secret_name_prefix}test", SecretString='{"api_key": "k"}'
    )["ARN"]
    kms_key_arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]

    iam = boto3.client("iam")
    user_arn = iam.create_user(UserName="deployer")["User"]["Arn"]
    # The roles trust the test's user so the test can assume them (in AWS they trust Lambda;
    # moto matches principals literally, so not the account root). What is under test is the
    # permissions document as the security layer builds it, with only the statements moto
    # cannot match by ARN widened (see the module's docstring).
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
        iam.put_role_policy(
            RoleName=role,
            PolicyName=role,
            PolicyDocument=json.dumps(_as_moto_can_judge(document)),
        )

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
        table_arn=table_arn,
        secret_arn=secret_arn,
        documents=documents,
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


def _admin(service: str) -> Any:
    """A client of the account's administrator, for set-up while IAM enforcement is off."""
    return boto3.client(service, aws_access_key_id="testing", aws_secret_access_key="testing")


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
    table_calls = CallRecorder(processor.persistence_store.client)
    event = s3_event(s3_record("uploads/job.csv", version_id=account.upload_version))

    assert processor.lambda_handler(event, processor_context)["processed"] == 1
    assert processor.lambda_handler(event, processor_context)["duplicate"] == 1
    # Every idempotency call names the one table the document grants that action on.
    assert {operation for operation, _ in table_calls.calls} >= {"PutItem", "UpdateItem"}
    for operation, params in table_calls.calls:
        assert params["TableName"] == NAMES.idempotency_table
        granted = _granted(account.documents[NAMES.s3_processor_role], f"dynamodb:{operation}")
        assert granted == [account.table_arn], (operation, granted)
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
    s3 = processor.s3_client
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
    _denied(lambda: secrets.get_secret_value(SecretId=account.secret_arn))


@set_initial_no_auth_action_count(0)
def test_processor_pointed_at_another_bucket_fails(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    processor_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    become(account.processor_role_arn)
    processor = loader.load_with(
        "s3_processor", {**processor_environment(), "BUCKET_NAME": OTHER_BUCKET}, monkeypatch
    )

    with pytest.raises(processor.RecordsFailedError):
        processor.lambda_handler(
            s3_event(s3_record("uploads/job.csv", bucket=OTHER_BUCKET)), processor_context
        )
    assert "AccessDenied" in capsys.readouterr().out


@set_initial_no_auth_action_count(0)
def test_processor_pointed_at_another_table_calls_outside_its_grant(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    processor_context: LambdaContext,
) -> None:
    """AWS would deny each of these calls: the document grants them on its own table only.
    (moto lets them through, see the module's docstring, so the calls are judged here.)"""
    with disable_iam_authentication():
        other_arn = _admin("dynamodb").create_table(
            TableName="someone-elses-table",
            KeySchema=[{"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "AttributeType": "S"}
            ],
            BillingMode="PAY_PER_REQUEST",
        )["TableDescription"]["TableArn"]
    become(account.processor_role_arn)
    processor = loader.load_with(
        "s3_processor",
        {**processor_environment(), "IDEMPOTENCY_TABLE_NAME": "someone-elses-table"},
        monkeypatch,
    )
    calls = CallRecorder(processor.persistence_store.client)
    event = s3_event(s3_record("uploads/job.csv", version_id=account.upload_version))

    processor.lambda_handler(event, processor_context)

    document = account.documents[NAMES.s3_processor_role]
    assert calls.calls
    for operation, params in calls.calls:
        assert params["TableName"] == "someone-elses-table"
        assert not _allows(document, f"dynamodb:{operation}", other_arn), operation
        assert _allows(document, f"dynamodb:{operation}", account.table_arn), operation


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
    secret_calls = CallRecorder(api.secrets_provider().client)

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
    # The secret read names the one secret the document grants GetSecretValue on.
    assert secret_calls.calls == [("GetSecretValue", {"SecretId": account.secret_arn})]
    granted = _granted(account.documents[NAMES.api_handler_role], "secretsmanager:GetSecretValue")
    assert granted == [account.secret_arn]


@set_initial_no_auth_action_count(0)
def test_api_role_is_denied_outside_its_job(
    account: Account, become: Any, loader: FunctionLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    become(account.api_role_arn)
    api = loader.load_with("api_handler", api_environment(account.secret_arn), monkeypatch)
    s3 = api.s3_client()

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


@set_initial_no_auth_action_count(0)
def test_api_pointed_at_another_bucket_answers_a_generic_500(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    api_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    become(account.api_role_arn)
    api = loader.load_with(
        "api_handler",
        {**api_environment(account.secret_arn), "BUCKET_NAME": OTHER_BUCKET},
        monkeypatch,
    )

    response = api.lambda_handler(
        api_event("GET", "/objects/uploads/job.csv", path_parameters={"key": "uploads/job.csv"}),
        api_context,
    )

    assert response["statusCode"] == 500
    assert "AccessDenied" not in response["body"]
    assert "AccessDenied" in capsys.readouterr().out  # the log says why


@set_initial_no_auth_action_count(0)
def test_api_pointed_at_another_secret_calls_outside_its_grant(
    account: Account,
    become: Any,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    api_context: LambdaContext,
) -> None:
    """AWS would deny this read: the document grants GetSecretValue on its own secret only."""
    with disable_iam_authentication():
        other_arn = _admin("secretsmanager").create_secret(
            Name="someone-elses/secret", SecretString='{"api_key": "o"}'
        )["ARN"]
    become(account.api_role_arn)
    api = loader.load_with(
        "api_handler", {**api_environment(account.secret_arn), "SECRET_ARN": other_arn}, monkeypatch
    )
    calls = CallRecorder(api.secrets_provider().client)

    api.lambda_handler(
        api_event("POST", "/process", body='{"name":"x","data":{}}', headers=JSON), api_context
    )

    document = account.documents[NAMES.api_handler_role]
    assert calls.calls == [("GetSecretValue", {"SecretId": other_arn})]
    assert not _allows(document, "secretsmanager:GetSecretValue", other_arn)
    assert _allows(document, "secretsmanager:GetSecretValue", account.secret_arn)


# The gap the widened statements stand in for


@pytest.mark.parametrize("service", MOTO_JUDGES_ONLY_STAR)
@set_initial_no_auth_action_count(0)
def test_moto_cannot_judge_resource_level_permissions_for(
    service: str, account: Account, become: Any
) -> None:
    """A role carrying the exact, unwidened document is denied even its own table and secret.

    If this starts failing, moto has learnt that service's resource ARNs: stop widening it in
    `_as_moto_can_judge` and deny another table or secret by ARN here instead.
    """
    role = NAMES.s3_processor_role if service == "dynamodb" else NAMES.api_handler_role
    with disable_iam_authentication():
        boto3.client("iam").put_role_policy(
            RoleName=role, PolicyName=role, PolicyDocument=json.dumps(account.documents[role])
        )
    become(account.processor_role_arn if service == "dynamodb" else account.api_role_arn)

    if service == "dynamodb":
        _denied(
            lambda: _role_client("dynamodb").get_item(
                TableName=NAMES.idempotency_table, Key={"id": {"S": "x"}}
            )
        )
    else:
        _denied(
            lambda: _role_client("secretsmanager").get_secret_value(SecretId=account.secret_arn)
        )
