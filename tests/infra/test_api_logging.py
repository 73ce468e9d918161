"""The api layer's logging: the execution log group it creates before API Gateway would, and the
account-wide setting naming the role API Gateway writes every REST API's logs through."""

from __future__ import annotations

import json
from fnmatch import fnmatch

from shared.manifest import MANIFEST
from tests.conftest import policy_of
from tooling.mock_engine import LayerRun, run_layer


def test_execution_logs_go_to_a_group_created_with_retention_and_the_key(
    chain: dict[str, LayerRun],
) -> None:
    api = chain["api"]
    group = api.named("execution-logs").inputs
    rest_api_id = api.named("rest-api").id
    # The name API Gateway gives a stage's execution log group, which it would otherwise create
    # itself on its first write, with no retention and no encryption.
    assert group["name"] == f"API-Gateway-Execution-Logs_{rest_api_id}/prod"
    assert group["retentionInDays"] == 14
    assert group["kmsKeyId"] == chain["security"].exports["kms_key_arn"].value


def test_the_key_policy_lets_cloudwatch_logs_encrypt_the_execution_log_group(
    chain: dict[str, LayerRun],
) -> None:
    statements = {s["Sid"]: s for s in policy_of(chain["security"].named("app-key"))["Statement"]}
    allowed = statements["CloudWatchLogsEncryptsProductLogGroups"]["Condition"]["ArnLike"][
        "kms:EncryptionContext:aws:logs:arn"
    ]
    execution_logs = chain["api"].named("execution-logs").outputs["arn"]
    access_logs = chain["api"].named("access-logs").outputs["arn"]
    for arn in (execution_logs, access_logs):
        assert any(fnmatch(arn, pattern) for pattern in allowed), arn
    # Another environment's groups, and anything else, are not this key's to encrypt.
    for arn in (
        access_logs.replace("serverless-dev", "serverless-prod"),
        execution_logs.replace("/prod", "/other-stage"),
        access_logs.replace("/aws/apigateway/", "/aws/lambda/"),
    ):
        assert not any(fnmatch(arn, pattern) for pattern in allowed), arn


def test_the_account_setting_names_the_security_layers_role_and_survives_destroy(
    chain: dict[str, LayerRun],
) -> None:
    account = chain["api"].named("account-logging-role")
    assert (
        account.inputs["cloudwatchRoleArn"]
        == chain["security"].exports["api_gateway_cloudwatch_role_arn"].value
    )
    # Destroying the resource would reset the account-wide setting (pulumi-aws 7 /
    # terraform-provider-aws 6), breaking every other environment's logging in the region.
    assert account.retain_on_delete


def test_an_account_whose_administrators_own_the_setting_is_left_alone(
    chain: dict[str, LayerRun],
) -> None:
    run = run_layer(
        MANIFEST.layer("api"), config={"manage_account_logging_role": "false"}, upstream=chain
    )
    assert not run.of_type("aws:apigateway/account:Account")
    # Everything else about logging is unchanged.
    stage = run.named("prod-stage").inputs
    assert json.loads(stage["accessLogSettings"]["format"])
    assert run.named("execution-logs").inputs["retentionInDays"] == 14
