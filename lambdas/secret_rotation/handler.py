"""Rotates the application secret with Secrets Manager's four-step protocol.

Secrets Manager invokes this function once per step with the secret's ARN, the client request
token (the new version's id) and the step:

- createSecret: stage a new value under AWSPENDING, keeping every other field of the JSON. The
  security layer creates the secret with no value and rotates it at once (rotate-immediately),
  so the first rotation finds no AWSCURRENT version and creates the secret's first value.
- setSecret: nothing to do: the API key is checked by this application itself, which reads
  AWSCURRENT through its cache, so there is no external system to update.
- testSecret: the pending value is well-formed (a JSON object with a long enough api_key).
- finishSecret: move AWSCURRENT to the new version (from the old one, when there is one).

Each step is idempotent: Secrets Manager may retry any of them. Only the standard library,
boto3 (shipped by the Lambda runtime) and lambdas/common are used; no secret value is ever logged.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3
from function_config import retrying_client_config  # lambdas/common

API_KEY_LENGTH = 40
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"

logger = logging.getLogger()
logger.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO"))

# Timeouts are botocore's defaults.
secrets_manager = boto3.client(
    "secretsmanager",
    config=retrying_client_config(total_max_attempts=5, connect_timeout=60, read_timeout=60),
)


class RotationError(RuntimeError):
    """The rotation request cannot be carried out as asked; Secrets Manager will report it."""


def _check_version(secret_id: str, token: str) -> bool:
    """True when the step still has work to do; raise when the request is inconsistent."""
    metadata = secrets_manager.describe_secret(SecretId=secret_id)
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"rotation is not enabled for {secret_id}")
    stages = metadata.get("VersionIdsToStages", {})
    if token not in stages:
        raise RotationError(f"version {token} is not a version of {secret_id}")
    if CURRENT in stages[token]:
        logger.info("version %s is already AWSCURRENT; nothing to do", token)
        return False
    if PENDING not in stages[token]:
        raise RotationError(f"version {token} of {secret_id} is not staged AWSPENDING")
    return True


def create_secret(secret_id: str, token: str) -> None:
    try:
        secrets_manager.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
        logger.info("pending version %s already exists", token)
        return
    except secrets_manager.exceptions.ResourceNotFoundException:
        pass
    try:
        current = json.loads(
            secrets_manager.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)[
                "SecretString"
            ]
        )
    except secrets_manager.exceptions.ResourceNotFoundException:
        # The first rotation of a secret created without a value: nothing to carry over.
        logger.info("no AWSCURRENT version yet; creating the secret's first value")
        current = {}
    if not isinstance(current, dict):
        raise RotationError(f"the AWSCURRENT value of {secret_id} is not a JSON object")
    new_key = secrets_manager.get_random_password(
        PasswordLength=API_KEY_LENGTH, ExcludePunctuation=True, IncludeSpace=False
    )["RandomPassword"]
    secrets_manager.put_secret_value(
        SecretId=secret_id,
        ClientRequestToken=token,
        SecretString=json.dumps({**current, "api_key": new_key}),
        VersionStages=[PENDING],
    )
    logger.info("staged new version %s", token)


def set_secret(secret_id: str, token: str) -> None:
    logger.info("no external system holds the key; version %s needs no setSecret work", token)


def verify_pending(secret_id: str, token: str) -> None:
    pending = secrets_manager.get_secret_value(
        SecretId=secret_id, VersionId=token, VersionStage=PENDING
    )
    try:
        value = json.loads(pending["SecretString"])
    except json.JSONDecodeError:
        raise RotationError(f"pending version {token} is not JSON") from None
    api_key = value.get("api_key") if isinstance(value, dict) else None
    if not isinstance(api_key, str) or len(api_key) < API_KEY_LENGTH:
        raise RotationError(f"pending version {token} has no api_key of {API_KEY_LENGTH} chars")
    logger.info("pending version %s is well-formed", token)


def finish_secret(secret_id: str, token: str) -> None:
    stages = secrets_manager.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    current_version = next((v for v, s in stages.items() if CURRENT in s), None)
    if current_version == token:
        logger.info("version %s is already AWSCURRENT", token)
        return
    move: dict[str, str] = {"MoveToVersionId": token}
    if current_version is not None:
        # Absent for the first value: there is no earlier version to take the label from.
        move["RemoveFromVersionId"] = current_version
    secrets_manager.update_secret_version_stage(SecretId=secret_id, VersionStage=CURRENT, **move)
    logger.info("version %s is now AWSCURRENT (was %s)", token, current_version)


STEPS = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": verify_pending,
    "finishSecret": finish_secret,
}


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    step_name = event.get("Step")
    step = STEPS.get(str(step_name))
    if step is None:
        raise RotationError(f"unknown rotation step {step_name!r}")
    secret_id, token = event["SecretId"], event["ClientRequestToken"]
    logger.info("rotation step %s for version %s", step_name, token)
    if _check_version(secret_id, token):
        step(secret_id, token)
