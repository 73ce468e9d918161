"""Every resource-level control: a compliant and a violating resource, through the real Policy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UnknownValueError, unknown_checking_proxy

from policy.controls import CONTROLS
from shared.manifest import MANIFEST
from shared.tags import standard_tags
from tests.policy.helpers import resource_args, violations

ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234"
# The tags the programs apply: they must satisfy Tags.required.
TAGS = standard_tags(MANIFEST.layer("storage"), "dev")


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "arn:aws:s3:::bucket/*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


PERMISSION = "aws:lambda/permission:Permission"
FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
S3_PERMISSION = {
    "action": "lambda:InvokeFunction",
    "principal": "s3.amazonaws.com",
    "sourceArn": "arn:aws:s3:::uploads",
    "sourceAccount": ACCOUNT,
}
TRACED_FUNCTION = {
    "runtime": "python3.13",
    "tracingConfig": {"mode": "Active"},
    "loggingConfig": {"logFormat": "JSON"},
}
PUBLIC = {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}
CONDITIONED = {**PUBLIC, "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
SNS_PUBLIC = {**PUBLIC, "Action": "sns:Publish"}

# (control, resource type, compliant props, violating props, fragment of the violation)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    ("Lambda.1", PERMISSION, S3_PERMISSION, {**S3_PERMISSION, "principal": "*"}, "everyone"),
    (
        "Lambda.1",
        PERMISSION,
        {**S3_PERMISSION, "principal": "apigateway.amazonaws.com", "sourceAccount": None},
        {**S3_PERMISSION, "sourceAccount": None},
        "source_account is required",
    ),
    (
        "Lambda.1",
        PERMISSION,
        S3_PERMISSION,
        {"principal": "apigateway.amazonaws.com", "action": "lambda:InvokeFunction"},
        "set source_arn",
    ),
    ("Lambda.2", FUNCTION, {"runtime": "python3.12"}, {"runtime": "python3.9"}, "'python3.9'"),
    (
        "APIGateway.3",
        "aws:apigateway/stage:Stage",
        {"xrayTracingEnabled": True},
        {"xrayTracingEnabled": False},
        "X-Ray",
    ),
    (
        "APIGateway.5",
        "aws:apigateway/methodSettings:MethodSettings",
        {"settings": {"cachingEnabled": True, "cacheDataEncrypted": True}},
        {"settings": {"cachingEnabled": True}},
        "without encrypting",
    ),
    ("KMS.4", "aws:kms/key:Key", {"enableKeyRotation": True}, {}, "rotation"),
    (
        "KMS.4",
        "aws:kms/key:Key",
        {"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"},
        {"enableKeyRotation": False},
        "rotation",
    ),
    (
        "KMS.5",
        "aws:kms/key:Key",
        {"policy": doc({**CONDITIONED, "Action": "kms:Decrypt"})},
        {"policy": doc({**PUBLIC, "Action": "kms:Decrypt"})},
        "allows everyone",
    ),
    (
        "IAM.1",
        ROLE_POLICY,
        {"policy": doc(allow("s3:GetObject"), allow("xray:PutTraceSegments", "*"))},
        {"policy": doc(allow("*"))},
        "allows the action '*'",
    ),
    (
        "IAM.1",
        MANAGED_POLICY,
        {"policy": doc(allow(["logs:DescribeLogGroups"], "*"))},
        {"policy": doc(allow(["s3:GetObject", "xray:PutTraceSegments"], "*"))},
        "s3:GetObject on Resource '*'",
    ),
    (
        "IAM.1",
        "aws:iam/role:Role",
        {"inlinePolicies": [{"name": "p", "policy": doc(allow("s3:GetObject"))}]},
        {"inlinePolicies": [{"name": "p", "policy": doc(allow("s3:GetObject", NotAction="x"))}]},
        "NotAction",
    ),
    (
        "IAM.21",
        ROLE_POLICY,
        {"policy": doc(allow("s3:Get*"))},
        {"policy": doc(allow("s3:*"))},
        "every action of a service",
    ),
    (
        "KMS.1",
        MANAGED_POLICY,
        {"policy": doc(allow("kms:Decrypt", KEY_ARN))},
        {"policy": doc(allow("kms:Decrypt", "*"))},
        "kms:Decrypt on every KMS key",
    ),
    (
        "KMS.2",
        ROLE_POLICY,
        {"policy": doc(allow(["kms:Decrypt", "kms:GenerateDataKey"], KEY_ARN))},
        {"policy": doc(allow("kms:*", "arn:aws:kms:*:*:key/*"))},
        "kms:Decrypt, kms:ReEncryptFrom on every KMS key",
    ),
    (
        "SQS.1",
        "aws:sqs/queue:Queue",
        {"kmsMasterKeyId": KEY_ARN},
        {"sqsManagedSseEnabled": False},
        "not encrypted",
    ),
    (
        "SQS.3",
        "aws:sqs/queuePolicy:QueuePolicy",
        {"policy": doc(CONDITIONED)},
        {"policy": doc(PUBLIC)},
        "allows everyone",
    ),
    ("SNS.1", "aws:sns/topic:Topic", {"kmsMasterKeyId": KEY_ARN}, {}, "KMS"),
    (
        "SNS.2",
        "aws:sns/topic:Topic",
        {"sqsFailureFeedbackRoleArn": f"arn:aws:iam::{ACCOUNT}:role/feedback"},
        {"sqsSuccessFeedbackSampleRate": 100},
        "delivery status",
    ),
    (
        "SNS.4",
        "aws:sns/topicPolicy:TopicPolicy",
        {"policy": doc({**SNS_PUBLIC, "Effect": "Deny"})},
        {"policy": doc(SNS_PUBLIC)},
        "allows everyone",
    ),
    (
        "DynamoDB.2",
        "aws:dynamodb/table:Table",
        {"pointInTimeRecovery": {"enabled": True}},
        {"pointInTimeRecovery": {"enabled": False}},
        "point-in-time",
    ),
    (
        "DynamoDB.6",
        "aws:dynamodb/table:Table",
        {"deletionProtectionEnabled": True},
        {},
        "deletion protection",
    ),
    (
        "CloudWatch.15",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        {"alarmActions": ["arn:aws:sns:us-east-1:123456789012:alarms"]},
        {"alarmActions": []},
        "no alarm action",
    ),
    (
        "CloudWatch.17",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        {"actionsEnabled": True},
        {"actionsEnabled": False},
        "deactivated",
    ),
    (
        "Logs.retention",
        "aws:cloudwatch/logGroup:LogGroup",
        {"retentionInDays": 14},
        {"name": "/aws/lambda/f"},
        "forever",
    ),
    (
        "SLS.tracing-json-logs",
        FUNCTION,
        TRACED_FUNCTION,
        {**TRACED_FUNCTION, "loggingConfig": {"logFormat": "Text"}},
        "does not log in JSON",
    ),
    (
        "SLS.tracing-json-logs",
        FUNCTION,
        TRACED_FUNCTION,
        {**TRACED_FUNCTION, "tracingConfig": {"mode": "PassThrough"}},
        "active X-Ray tracing",
    ),
    (
        "Tags.required",
        "aws:s3/bucket:Bucket",
        {"tags": TAGS},
        {"tags": {**TAGS, "owner": ""}},
        "lacks the required tags owner",
    ),
]


@pytest.mark.parametrize(
    ("control_id", "resource_type", "compliant", "violating", "fragment"),
    CASES,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(CASES)],
)
def test_control_passes_compliant_and_reports_violating_resource(
    control_id: str,
    resource_type: str,
    compliant: dict[str, Any],
    violating: dict[str, Any],
    fragment: str,
) -> None:
    assert violations(control_id, resource_args(resource_type, compliant)) == []
    found = violations(control_id, resource_args(resource_type, violating, name="bad"))
    assert found, f"{control_id} did not report {violating}"
    assert any(fragment in message for message in found), found


def test_every_resource_control_has_a_case() -> None:
    resource_controls = {c.control_id for c in CONTROLS if c.kind == "resource"}
    assert resource_controls == {case[0] for case in CASES}


def test_resource_control_ignores_other_types() -> None:
    assert violations("DynamoDB.6", resource_args("aws:sqs/queue:Queue", {})) == []


def test_required_tags_skip_types_that_take_no_tags() -> None:
    args = resource_args("aws:s3/bucketVersioning:BucketVersioning", {"bucket": "b"})
    assert violations("Tags.required", args) == []


def test_required_tags_count_the_provider_default_tags() -> None:
    from pulumi_policy import PolicyProviderResource

    args = resource_args("aws:sqs/queue:Queue", {"tags": {"owner": "@team"}})
    args.provider = PolicyProviderResource(
        "pulumi:providers:aws", {"defaultTags": {"tags": TAGS}}, "urn:provider", "default"
    )
    assert violations("Tags.required", args) == []


def test_a_value_unknown_at_preview_leaves_the_control_undecided() -> None:
    # The engine hands policies a proxy that raises on unknown values; the SDK turns the
    # exception into an advisory "can't run during preview" diagnostic, never a violation.
    props = unknown_checking_proxy({"enableKeyRotation": UNKNOWN_BOOLEAN_VALUE})
    args = resource_args("aws:kms/key:Key", props)
    with pytest.raises(UnknownValueError):
        violations("KMS.4", args)
