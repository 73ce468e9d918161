"""The rotation function carries a secret through Secrets Manager's four steps on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

from tooling.local.functions import load_handler
from tooling.local.secret_rotation import rotate_immediately

ORIGINAL = {"api_key": "k" * 40, "note": "kept across rotations"}
TOKEN = "11111111-2222-3333-4444-555555555555"
ROTATION_FUNCTION_ARN = (
    "arn:aws:lambda:us-east-1:123456789012:function:serverless-dev-secret-rotation"
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def rotation(aws: None) -> ModuleType:
    return load_handler("secret_rotation", {})


def _secret(name: str = "app-secret") -> str:
    """A secret with rotation enabled; its id as the function receives it.

    moto's RotateSecret tries to run the function in Docker, and these fields are all the
    function reads, so they are set on moto's record directly. moto keys its records by name
    (an ARN passed to PutSecretValue would start a second record), so the tests use the name.
    """
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(ORIGINAL))
    record = secretsmanager_backends["123456789012"]["us-east-1"].secrets[name]
    assert isinstance(record, FakeSecret)
    record.rotation_requested = True
    record.rotation_enabled = True
    record.rotation_lambda_arn = ROTATION_FUNCTION_ARN
    record.auto_rotate_after_days = 30
    return name


def _value(secret_id: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    # The stage is always named: moto's default read does not follow a moved AWSCURRENT.
    response = boto3.client("secretsmanager").get_secret_value(
        SecretId=secret_id, VersionStage=stage
    )
    value: dict[str, Any] = json.loads(response["SecretString"])
    return value


def _stages(arn: str) -> dict[str, list[str]]:
    stages: dict[str, list[str]] = boto3.client("secretsmanager").describe_secret(SecretId=arn)[
        "VersionIdsToStages"
    ]
    return stages


def _step(module: ModuleType, arn: str, step: str, token: str = TOKEN) -> None:
    module.lambda_handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None)


def test_create_stages_a_fresh_key_and_keeps_other_fields(rotation: ModuleType) -> None:
    arn = _secret()
    rotation.create_secret(arn, TOKEN)
    pending = _value(arn, "AWSPENDING")
    assert len(pending["api_key"]) == 40
    assert pending["api_key"].isalnum()
    assert pending["api_key"] != ORIGINAL["api_key"]
    assert pending["note"] == ORIGINAL["note"]
    assert _value(arn) == ORIGINAL, "AWSCURRENT is untouched until finishSecret"


def test_the_remaining_steps_promote_the_pending_value(rotation: ModuleType) -> None:
    arn = _secret()
    rotation.create_secret(arn, TOKEN)
    pending = _value(arn, "AWSPENDING")
    for step in ("setSecret", "testSecret", "finishSecret"):
        _step(rotation, arn, step)
    assert _value(arn) == pending
    assert "AWSCURRENT" in _stages(arn)[TOKEN]


def test_steps_are_idempotent(rotation: ModuleType) -> None:
    arn = _secret()
    rotation.create_secret(arn, TOKEN)
    first = _value(arn, "AWSPENDING")
    _step(rotation, arn, "createSecret")  # the pending value exists: it is kept
    assert _value(arn, "AWSPENDING") == first
    _step(rotation, arn, "finishSecret")
    _step(rotation, arn, "finishSecret")  # already AWSCURRENT: nothing more happens
    assert _value(arn) == first


def test_a_malformed_pending_value_fails_the_test_step(rotation: ModuleType) -> None:
    arn = _secret()
    boto3.client("secretsmanager").put_secret_value(
        SecretId=arn,
        ClientRequestToken=TOKEN,
        SecretString=json.dumps({"api_key": "short"}),
        VersionStages=["AWSPENDING"],
    )
    with pytest.raises(rotation.RotationError, match="has no api_key of 40 chars"):
        _step(rotation, arn, "testSecret")
    assert _value(arn) == ORIGINAL, "a failed test leaves the current value in place"


def test_inconsistent_requests_are_refused(rotation: ModuleType) -> None:
    arn = _secret()
    with pytest.raises(rotation.RotationError, match="is not a version of"):
        _step(rotation, arn, "testSecret", token="not-a-version")
    with pytest.raises(rotation.RotationError, match="unknown rotation step 'dropSecret'"):
        _step(rotation, arn, "dropSecret")
    disabled = boto3.client("secretsmanager").create_secret(Name="other", SecretString="{}")["ARN"]
    with pytest.raises(rotation.RotationError, match="rotation is not enabled"):
        _step(rotation, disabled, "createSecret")


def test_the_first_rotation_of_an_empty_secret_creates_its_value(rotation: ModuleType) -> None:
    # The security layer creates the secret without a value and rotates it immediately, so the
    # key never passes through Pulumi: the function must make the first value from nothing.
    arn = boto3.client("secretsmanager").create_secret(Name="empty")["ARN"]
    token = rotate_immediately(rotation, arn, account_id="123456789012", region="us-east-1")
    value = _value(arn)
    assert set(value) == {"api_key"}
    assert len(value["api_key"]) == 40 and value["api_key"].isalnum()
    stages = _stages(arn)
    assert list(stages) == [token] and "AWSCURRENT" in stages[token]
    # What the API handler does: no stage named, AWSCURRENT answered.
    plain = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    assert json.loads(plain["SecretString"]) == value


def test_a_later_rotation_replaces_the_key_and_keeps_the_previous_version(
    rotation: ModuleType,
) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="empty")["ARN"]
    first = rotate_immediately(rotation, arn, account_id="123456789012", region="us-east-1")
    first_value = _value(arn)
    second = rotate_immediately(rotation, arn, account_id="123456789012", region="us-east-1")
    assert _value(arn)["api_key"] != first_value["api_key"]
    assert "AWSCURRENT" in _stages(arn)[second]
    assert "AWSPREVIOUS" in _stages(arn)[first]
