"""Security layer: the key, the secret and least-privilege roles, checked on the real program."""

from __future__ import annotations

import json
from fnmatch import fnmatch
from typing import Any

from shared.manifest import MANIFEST
from shared.naming import RESULTS_PREFIX, UPLOAD_PREFIX, ResourceNames
from tests.conftest import as_list, policy_of
from tooling.mock_engine import LayerRun, run_all_layers, run_layer, unwrap_secret

# Wildcard resources allowed, each because AWS offers nothing narrower for the action.
DOCUMENTED_WILDCARD_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "logs:DescribeLogGroups",
    "secretsmanager:GetRandomPassword",
}


def _statements(run: LayerRun, policy_name: str) -> list[dict[str, Any]]:
    return list(policy_of(run.named(policy_name))["Statement"])


def _allowed(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """action -> resources it is allowed on."""
    allowed: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            allowed.setdefault(action, set()).update(as_list(statement["Resource"]))
    return allowed


def test_kms_key_rotates_and_has_an_alias(chain: dict[str, LayerRun]) -> None:
    security = chain["security"]
    key = security.named("app-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    alias = security.named("app-key-alias")
    assert alias.inputs["name"] == "alias/serverless-dev"
    assert alias.inputs["targetKeyId"] == key.outputs["keyId"]


def test_key_policy_lets_only_the_products_services_use_the_key(
    chain: dict[str, LayerRun], names: ResourceNames
) -> None:
    statements = {s["Sid"]: s for s in policy_of(chain["security"].named("app-key"))["Statement"]}
    admin = statements["AccountAdministersKey"]
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:*"} & set(admin["Action"])
    via = statements["AccountUsesKeyThroughServices"]["Condition"]["StringEquals"]
    assert via["kms:CallerAccount"] == "123456789012"
    assert set(via["kms:ViaService"]) >= {
        f"{service}.us-east-1.amazonaws.com"
        for service in ("s3", "sqs", "secretsmanager", "dynamodb")
    }
    logs = statements["CloudWatchLogsEncryptsProductLogGroups"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert set(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]) == {
        names.log_group_arn(names.function_log_group(names.s3_processor_function)),
        names.log_group_arn(names.function_log_group(names.api_handler_function)),
        names.log_group_arn(names.function_log_group(names.secret_rotation_function)),
        names.log_group_arn(names.api_access_log_group),
        # The REST API's id is unknown until the api layer runs: only it is a wildcard.
        names.log_group_arn("API-Gateway-Execution-Logs_*/prod"),
    }
    alarms = statements["AlarmsPublishToEncryptedTopic"]
    assert "cloudwatch.amazonaws.com" in alarms["Principal"]["Service"]
    assert "sns.amazonaws.com" in alarms["Principal"]["Service"]
    # Every statement that can use key material is conditioned.
    for sid, statement in statements.items():
        if set(as_list(statement["Action"])) & {
            "kms:Decrypt",
            "kms:Decrypt*",
            "kms:GenerateDataKey*",
        }:
            assert "Condition" in statement, sid


def test_a_generated_secret_never_passes_through_pulumi(chain: dict[str, LayerRun]) -> None:
    security = chain["security"]
    secret = security.named("app-secret")
    assert secret.inputs["kmsKeyId"] == security.named("app-key").outputs["arn"]
    assert "secretString" not in secret.inputs
    # No version and no generator: the rotation function makes the first value inside AWS.
    assert not security.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert not [r for r in security.resources if r.type.startswith("random:")]
    rotation = security.named("app-secret-rotation").inputs
    assert rotation["rotateImmediately"] is True


def test_a_supplied_secret_is_stored_encrypted_and_never_generated() -> None:
    run = run_layer(MANIFEST.layer("security"), secret_config={"api_key": "supplied-key-value"})
    value, is_secret = unwrap_secret(run.named("app-secret-value").inputs["secretString"])
    assert is_secret, "a supplied value reaches Pulumi state encrypted"
    assert json.loads(value) == {"api_key": "supplied-key-value"}
    assert run.named("app-secret-value").inputs["secretId"] == run.named("app-secret").id


def test_no_secret_value_appears_in_any_export() -> None:
    chain = run_all_layers(secret_config={"security": {"api_key": "supplied-key-value"}})
    for run in chain.values():
        for exported in run.exports.values():
            assert "supplied-key-value" not in json.dumps(exported.value)


def test_one_role_per_function_trusted_by_lambda_for_this_account_only(
    chain: dict[str, LayerRun],
) -> None:
    security = chain["security"]
    processor, api = security.named("s3-processor-role"), security.named("api-handler-role")
    assert processor.outputs["arn"] != api.outputs["arn"]
    for role in (processor, api):
        (statement,) = policy_of(role, "assumeRolePolicy")["Statement"]
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    (gateway,) = policy_of(security.named("api-gateway-cloudwatch-role"), "assumeRolePolicy")[
        "Statement"
    ]
    assert gateway["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "Condition" not in gateway, "API Gateway sends no aws:SourceAccount when assuming"
    assert {r.name for r in security.of_type("aws:iam/role:Role")} == {
        "s3-processor-role",
        "api-handler-role",
        "secret-rotation-role",
        "api-gateway-cloudwatch-role",
    }


def test_no_wildcard_actions_and_wildcard_resources_only_where_documented(
    chain: dict[str, LayerRun],
) -> None:
    security = chain["security"]
    for policy in security.of_type("aws:iam/rolePolicy:RolePolicy"):
        for action, resources in _allowed(list(policy_of(policy)["Statement"])).items():
            assert "*" not in action, f"{policy.name}: wildcard action {action}"
            if "*" in resources:
                assert action in DOCUMENTED_WILDCARD_ACTIONS, f"{policy.name}: {action} on *"


def test_processor_policy_names_exactly_what_later_layers_create(
    chain: dict[str, LayerRun], names: ResourceNames
) -> None:
    statements = _statements(chain["security"], "s3-processor-role-policy")
    allowed = _allowed(statements)
    storage, compute = chain["storage"].export_values(), chain["compute"]
    bucket_arn = storage["s3_bucket_arn"]
    # Results are read too: HeadObject (s3:GetObject) reads the sequencer a result records.
    assert allowed["s3:GetObject"] == {
        f"{bucket_arn}/{UPLOAD_PREFIX}*",
        f"{bucket_arn}/{RESULTS_PREFIX}*",
    }
    assert allowed["s3:GetObjectVersion"] == {f"{bucket_arn}/{UPLOAD_PREFIX}*"}
    assert allowed["s3:PutObject"] == {f"{bucket_arn}/{RESULTS_PREFIX}*"}
    # Listing only under the upload prefix, to tell a deleted upload from a denial. moto cannot
    # judge this condition (it evaluates StringEquals only), so the document is checked here.
    listings = [
        s
        for s in statements
        if {"s3:ListBucket", "s3:ListBucketVersions"} & set(as_list(s["Action"]))
    ]
    assert len(listings) == 1
    assert set(as_list(listings[0]["Action"])) == {"s3:ListBucket", "s3:ListBucketVersions"}
    assert listings[0]["Resource"] == bucket_arn
    assert listings[0]["Condition"] == {"StringLike": {"s3:prefix": [f"{UPLOAD_PREFIX}*"]}}
    assert not any(action.startswith("s3:Delete") for action in allowed)
    assert allowed["dynamodb:PutItem"] == {storage["idempotency_table_arn"]}
    assert allowed["sqs:SendMessage"] == {storage["dead_letter_queue_arn"]}
    log_group = compute.named("s3-processor-logs").outputs["arn"]
    assert allowed["logs:PutLogEvents"] == {f"{log_group}:*"}
    assert allowed["kms:GenerateDataKey"] == {chain["security"].exports["kms_key_arn"].value}
    assert "secretsmanager:GetSecretValue" not in allowed, "the processor never reads the secret"


def test_api_handler_policy_reads_results_and_the_secret_only(chain: dict[str, LayerRun]) -> None:
    statements = _statements(chain["security"], "api-handler-role-policy")
    allowed = _allowed(statements)
    bucket_arn = chain["storage"].exports["s3_bucket_arn"].value
    assert allowed["s3:GetObject"] == {f"{bucket_arn}/{RESULTS_PREFIX}*"}
    listing = next(s for s in statements if "s3:ListBucket" in as_list(s["Action"]))
    assert listing["Resource"] == bucket_arn
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{RESULTS_PREFIX}*"]}}
    assert allowed["secretsmanager:GetSecretValue"] == {
        chain["security"].exports["secrets_manager_arn"].value
    }
    log_group = chain["compute"].named("api-handler-logs").outputs["arn"]
    assert allowed["logs:PutLogEvents"] == {f"{log_group}:*"}
    writes = {a for a in allowed if a.split(":")[1].startswith(("Put", "Delete", "Update", "Send"))}
    assert writes == {"logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_account_logging_role_can_do_what_api_gateway_needs(
    chain: dict[str, LayerRun], names: ResourceNames
) -> None:
    security = chain["security"]
    allowed = _allowed(_statements(security, "api-gateway-cloudwatch-role-policy"))
    groups = {
        # UpdateAccount test-writes here before it accepts the role.
        names.log_group_arn("/aws/apigateway/welcome"),
        # Every REST API's execution logs: the setting serves the whole account and region.
        names.log_group_arn("API-Gateway-Execution-Logs_*"),
        # Every environment's access logs: the role in the setting may be another's.
        names.log_group_arn("/aws/apigateway/serverless-*"),
    }
    writable = groups | {f"{group}:*" for group in groups}
    for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"):
        assert allowed[action] == writable, action
    assert allowed["logs:DescribeLogGroups"] == {"*"}
    # This environment's real groups fall under the patterns.
    access_log = chain["api"].named("access-logs").outputs["arn"]
    execution_log = chain["api"].named("execution-logs").outputs["arn"]
    for arn in (access_log, execution_log):
        assert any(fnmatch(arn, group) for group in groups), arn


def test_account_logging_role_outlives_the_stack_under_a_unique_name(
    chain: dict[str, LayerRun],
) -> None:
    # The account-wide setting may still name this role for another environment's stage when
    # this one is destroyed, so destroy leaves it (and its policy) in place, and a later
    # deployment of the same environment gets a fresh name instead of colliding with it.
    security = chain["security"]
    for name in ("api-gateway-cloudwatch-role", "api-gateway-cloudwatch-role-policy"):
        assert security.named(name).retain_on_delete, name
    role = security.named("api-gateway-cloudwatch-role").inputs
    assert "name" not in role
    assert role["namePrefix"] == "serverless-dev-apigw-logs-"
    assert len(role["namePrefix"]) <= 38, "IAM's limit for a role name prefix"
    others = [
        r
        for r in security.aws_resources
        if r.name not in ("api-gateway-cloudwatch-role", "api-gateway-cloudwatch-role-policy")
    ]
    assert not [r.name for r in others if r.retain_on_delete]


def test_generated_secret_is_rotated_by_the_rotation_function(chain: dict[str, LayerRun]) -> None:
    security = chain["security"]
    function = security.named("secret-rotation")
    assert function.inputs["reservedConcurrentExecutions"] == 1  # the config default
    assert function.inputs["role"] == security.named("secret-rotation-role").outputs["arn"]
    rotation = security.named("app-secret-rotation").inputs
    assert rotation["secretId"] == security.named("app-secret").id
    assert rotation["rotationLambdaArn"] == function.outputs["arn"]
    assert rotation["rotationRules"] == {"automaticallyAfterDays": 30}
    permission = security.named("secretsmanager-invoke-rotation").inputs
    assert permission["principal"] == "secretsmanager.amazonaws.com"
    assert permission["sourceArn"] == security.exports["secrets_manager_arn"].value
    assert permission["sourceAccount"] == "123456789012"


def test_a_supplied_secret_is_not_rotated() -> None:
    run = run_layer(MANIFEST.layer("security"), secret_config={"api_key": "supplied-key-value"})
    assert not run.of_type("aws:secretsmanager/secretRotation:SecretRotation")
    # The function stays, so the outputs and the alarms on it do not depend on the choice.
    assert run.named("secret-rotation").inputs["name"] == "serverless-dev-secret-rotation"


def test_rotation_role_touches_only_the_secret_and_the_key(chain: dict[str, LayerRun]) -> None:
    security = chain["security"]
    allowed = _allowed(_statements(security, "secret-rotation-role-policy"))
    secret_arn = security.exports["secrets_manager_arn"].value
    for action in (
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ):
        assert allowed[action] == {secret_arn}, action
    assert allowed["secretsmanager:GetRandomPassword"] == {"*"}
    assert allowed["kms:GenerateDataKey"] == {security.exports["kms_key_arn"].value}
    log_group = security.named("secret-rotation-logs").outputs["arn"]
    assert allowed["logs:PutLogEvents"] == {f"{log_group}:*"}
