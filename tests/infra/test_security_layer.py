"""Security layer: the key, the secret and least-privilege roles, checked on the real program."""

from __future__ import annotations

import json
from typing import Any

from shared.manifest import MANIFEST
from shared.naming import RESULTS_PREFIX, UPLOAD_PREFIX, ResourceNames
from tests.conftest import as_list, policy_of
from tooling.mock_engine import LayerRun, run_layer, unwrap_secret

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
    assert set(logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]) == {
        names.log_group_arn(names.function_log_group(names.s3_processor_function)),
        names.log_group_arn(names.function_log_group(names.api_handler_function)),
        names.log_group_arn(names.function_log_group(names.secret_rotation_function)),
        names.log_group_arn(names.api_access_log_group),
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


def test_secret_is_encrypted_with_the_key_and_generated_as_a_secret(
    chain: dict[str, LayerRun],
) -> None:
    security = chain["security"]
    secret = security.named("app-secret")
    assert secret.inputs["kmsKeyId"] == security.named("app-key").outputs["arn"]
    value, is_secret = unwrap_secret(security.named("app-secret-value").inputs["secretString"])
    assert is_secret, "the secret value must reach Pulumi state encrypted"
    generated = security.named("generated-api-key")
    assert generated.inputs["length"] >= 32
    assert json.loads(value) == {"api_key": generated.outputs["result"]}


def test_a_supplied_secret_is_used_and_nothing_is_generated() -> None:
    run = run_layer(MANIFEST.layer("security"), secret_config={"api_key": "supplied-key-value"})
    value, is_secret = unwrap_secret(run.named("app-secret-value").inputs["secretString"])
    assert is_secret
    assert json.loads(value) == {"api_key": "supplied-key-value"}
    assert not run.of_type("random:index/randomPassword:RandomPassword")


def test_no_secret_value_appears_in_any_export(chain: dict[str, LayerRun]) -> None:
    generated = chain["security"].named("generated-api-key").outputs["result"]
    for run in chain.values():
        for exported in run.exports.values():
            assert generated not in json.dumps(exported.value)


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


def test_api_gateway_logging_role_covers_the_access_log_group(chain: dict[str, LayerRun]) -> None:
    allowed = _allowed(_statements(chain["security"], "api-gateway-cloudwatch-role-policy"))
    access_log_arn = chain["api"].named("access-logs").outputs["arn"]
    assert {access_log_arn, f"{access_log_arn}:*"} <= allowed["logs:PutLogEvents"]


def test_generated_secret_is_rotated_by_the_rotation_function(chain: dict[str, LayerRun]) -> None:
    security = chain["security"]
    function = security.named("secret-rotation")
    assert function.inputs["reservedConcurrentExecutions"] == 1
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


def test_sns_delivery_status_role_writes_only_the_topics_log_groups(
    chain: dict[str, LayerRun], names: ResourceNames
) -> None:
    security = chain["security"]
    (trust,) = policy_of(security.named("sns-delivery-status-role"), "assumeRolePolicy")[
        "Statement"
    ]
    assert trust["Principal"] == {"Service": "sns.amazonaws.com"}
    allowed = _allowed(_statements(security, "sns-delivery-status-role-policy"))
    topic = chain["observability"].named("alarm-topic").inputs["name"]
    success = names.log_group_arn(f"sns/us-east-1/123456789012/{topic}")
    assert allowed["logs:PutLogEvents"] == {
        success,
        f"{success}:*",
        f"{success}/Failure",
        f"{success}/Failure:*",
    }
