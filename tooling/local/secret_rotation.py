"""Secrets Manager's rotation of a secret, in-process against moto, as AWS runs it.

What AWS does (How rotation works,
https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_how.html): RotateSecret
records a new version id labelled AWSPENDING, with no value yet, then invokes the rotation
function once per step (createSecret, setSecret, testSecret, finishSecret) with that id as the
ClientRequestToken. A secret created without a value can be rotated: its first rotation starts
with the pending version as its only version (a DescribeSecret of exactly that state is quoted in
aws-samples/aws-secrets-manager-rotation-lambdas#16), and that is how the security layer gives
the secret its first value without it passing through Pulumi. GetSecretValue without a version
or stage answers the AWSCURRENT version, and UpdateSecretVersionStage needs RemoveFromVersionId
only when the label is attached to another version (UpdateSecretVersionStage API reference).

Where moto 5.2.5 differs, this module does AWS's part itself on moto's in-process records (the
local environment runs moto's server in this process):
- RotateSecret would run the function in Docker, and records no pending version for a secret
  without a value: the pending version is recorded here and the steps are called in-process;
- UpdateSecretVersionStage fails when no version holds AWSCURRENT (getmoto/moto#9451): while a
  rotation runs here, that one call is answered as AWS answers it, through botocore's public
  `before-call` event on the rotation function's own client;
- GetSecretValue without a stage reads moto's "default version", not AWSCURRENT: it is pointed
  at the version that becomes AWSCURRENT.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from botocore.awsrequest import AWSResponse
from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
_UPDATE_STAGE_EVENT = "before-call.secrets-manager.UpdateSecretVersionStage"


def _record(account_id: str, region: str, secret_id: str) -> FakeSecret:
    backend = secretsmanager_backends[account_id][region]
    for record in backend.secrets.values():
        if secret_id in (record.name, record.arn) and isinstance(record, FakeSecret):
            return record
    raise LookupError(f"moto holds no secret {secret_id!r} in {account_id}/{region}")


@contextmanager
def _aws_update_secret_version_stage(client: Any, account_id: str, region: str) -> Iterator[None]:
    """Answer UpdateSecretVersionStage as AWS does when moto cannot (getmoto/moto#9451)."""

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        # `before-call` sees the serialized request: Secrets Manager's JSON body.
        request = json.loads(params["body"])
        record = _record(account_id, region, request["SecretId"])
        label, target = request["VersionStage"], request.get("MoveToVersionId")
        held = any(label in version["version_stages"] for version in record.versions.values())
        if request.get("RemoveFromVersionId") or held or target not in record.versions:
            return None  # moto handles every other case as AWS does
        record.versions[target]["version_stages"].append(label)
        if label == CURRENT:
            record.set_default_version_id(target)
        http = AWSResponse(params["url"], 200, {}, None)
        return http, {"ARN": record.arn, "Name": record.name, "ResponseMetadata": {}}

    client.meta.events.register(_UPDATE_STAGE_EVENT, answer)
    try:
        yield
    finally:
        client.meta.events.unregister(_UPDATE_STAGE_EVENT, answer)


def rotate_immediately(
    function: ModuleType,
    secret_id: str,
    *,
    account_id: str,
    region: str,
    context: Any = None,
) -> str:
    """Rotate `secret_id` once with the rotation `function` (its loaded module), as RotateSecret
    with rotate-immediately does; returns the new version's id.

    Rotation is turned on for the secret first (AWS does that as part of RotateSecret with a
    rotation function), so the function's own checks see what they would see on AWS.
    """
    record = _record(account_id, region, secret_id)
    # moto reports RotationEnabled only once a rotation was requested.
    record.rotation_requested = record.rotation_enabled = True
    token = str(uuid.uuid4())
    for version in record.versions.values():
        if PENDING in version["version_stages"]:
            version["version_stages"].remove(PENDING)
    record.versions[token] = {
        "createdate": int(time.time()),
        "version_id": token,
        "version_stages": [PENDING],
    }
    with _aws_update_secret_version_stage(function.secrets_manager, account_id, region):
        for step in ROTATION_STEPS:
            function.lambda_handler(
                {"Step": step, "SecretId": record.arn, "ClientRequestToken": token}, context
            )
    if CURRENT in record.versions[token]["version_stages"]:
        record.set_default_version_id(token)
    return token
