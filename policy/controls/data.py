"""FSBP controls on the product's other stores: Secrets Manager, SQS, SNS and DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from policy import documents
from policy.model import Control, Finding, Scope
from policy.values import get, number, of_types, points_to, truthy

SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 (a type token)
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"  # noqa: S105
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
TABLE = "aws:dynamodb/table:Table"
SCALING_TARGET = "aws:appautoscaling/target:Target"

# SNS.2: the topic attributes that turn on delivery-status logging (failures) per protocol.
FAILURE_FEEDBACK_ROLES = (
    "applicationFailureFeedbackRoleArn",
    "firehoseFailureFeedbackRoleArn",
    "httpFailureFeedbackRoleArn",
    "lambdaFailureFeedbackRoleArn",
    "sqsFailureFeedbackRoleArn",
)


def check_secret_rotation(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    rotations = of_types(args, SECRET_ROTATION)
    for secret in of_types(args, SECRET):
        configured = [
            rotation for rotation in rotations if points_to(rotation, "secretId", secret, "name")
        ]
        scheduled = [
            rotation
            for rotation in configured
            if get(rotation.props, "rotationRules", "automaticallyAfterDays")
            or get(rotation.props, "rotationRules", "scheduleExpression")
        ]
        if not scheduled:
            yield Finding(
                secret.urn,
                f"secret {get(secret.props, 'name', default=secret.name)} has no SecretRotation "
                "with a rotation schedule",
            )


def check_queue_encrypted(args: ResourceValidationArgs) -> Iterator[Finding]:
    if not get(args.props, "kmsMasterKeyId") and not truthy(
        get(args.props, "sqsManagedSseEnabled")
    ):
        yield Finding(args.urn, f"queue {args.name} is not encrypted at rest")


def check_topic_kms(args: ResourceValidationArgs) -> Iterator[Finding]:
    if not get(args.props, "kmsMasterKeyId"):
        yield Finding(args.urn, f"topic {args.name} is not encrypted with a KMS key")


def check_topic_delivery_logging(args: ResourceValidationArgs) -> Iterator[Finding]:
    if not any(get(args.props, key) for key in FAILURE_FEEDBACK_ROLES):
        yield Finding(
            args.urn,
            f"topic {args.name} logs no delivery status: set a *_failure_feedback_role_arn",
        )


def check_table_scaling(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    targets = of_types(args, SCALING_TARGET)
    for table in of_types(args, TABLE):
        if get(table.props, "billingMode") == "PAY_PER_REQUEST":
            continue
        name = get(table.props, "name", default=table.name)
        dimensions = {
            get(target.props, "scalableDimension")
            for target in targets
            if get(target.props, "resourceId") == f"table/{name}"
            and (number(get(target.props, "maxCapacity")) or 0) > 0
        }
        missing = {
            "dynamodb:table:ReadCapacityUnits",
            "dynamodb:table:WriteCapacityUnits",
        } - dimensions
        if missing:
            yield Finding(
                table.urn,
                f"table {name} has provisioned capacity without auto scaling for "
                f"{', '.join(sorted(missing))}",
            )


def check_table_pitr(args: ResourceValidationArgs) -> Iterator[Finding]:
    if not truthy(get(args.props, "pointInTimeRecovery", "enabled")):
        yield Finding(args.urn, f"table {args.name} does not have point-in-time recovery")


def check_table_deletion_protection(args: ResourceValidationArgs) -> Iterator[Finding]:
    if not truthy(get(args.props, "deletionProtectionEnabled")):
        yield Finding(args.urn, f"table {args.name} does not have deletion protection")


def _policy_not_public(
    control_id: str, policy_name: str, title: str, what: str, types: frozenset[str]
) -> Control:
    """SQS.3 / SNS.4: no statement of the `what` policy allows everyone unrestricted."""

    def check(args: ResourceValidationArgs) -> Iterator[Finding]:
        yield from documents.not_public_findings(args, what)

    return Control(
        control_id,
        policy_name,
        title,
        f"No {what} policy statement allows '*' without an account, organization or source "
        "condition.",
        severity=Severity.HIGH,
        resource_types=types,
        resource_check=check,
    )


CONTROLS = (
    Control(
        "SecretsManager.1",
        "secretsmanager-1-automatic-rotation",
        "Secrets Manager secrets should have automatic rotation enabled",
        "Each secret has a SecretRotation with a rotation schedule.",
        severity=Severity.MEDIUM,
        subjects=frozenset({SECRET}),
        stack_check=check_secret_rotation,
    ),
    Control(
        "SQS.1",
        "sqs-1-encrypted-at-rest",
        "Amazon SQS queues should be encrypted at rest",
        "Each queue sets kms_master_key_id (or SSE-SQS).",
        severity=Severity.MEDIUM,
        resource_types=frozenset({QUEUE}),
        resource_check=check_queue_encrypted,
    ),
    _policy_not_public(
        "SQS.3",
        "sqs-3-queue-policy-not-public",
        "SQS queue access policies should not allow public access",
        "queue",
        frozenset({QUEUE, QUEUE_POLICY}),
    ),
    Control(
        "SNS.1",
        "sns-1-kms-encrypted",
        "SNS topics should be encrypted at-rest using AWS KMS",
        "Each topic sets kms_master_key_id.",
        severity=Severity.MEDIUM,
        resource_types=frozenset({TOPIC}),
        resource_check=check_topic_kms,
    ),
    Control(
        "SNS.2",
        "sns-2-delivery-status-logging",
        "Logging of delivery status should be enabled for notification messages sent to a topic",
        "Each topic sets at least one *_failure_feedback_role_arn.",
        severity=Severity.MEDIUM,
        resource_types=frozenset({TOPIC}),
        resource_check=check_topic_delivery_logging,
    ),
    _policy_not_public(
        "SNS.4",
        "sns-4-topic-policy-not-public",
        "SNS topic access policies should not allow public access",
        "topic",
        frozenset({TOPIC, TOPIC_POLICY}),
    ),
    Control(
        "DynamoDB.1",
        "dynamodb-1-on-demand-or-autoscaling",
        "DynamoDB tables should automatically scale capacity with demand",
        "Each table is on-demand (PAY_PER_REQUEST) or has read and write auto scaling targets.",
        severity=Severity.MEDIUM,
        subjects=frozenset({TABLE}),
        stack_check=check_table_scaling,
    ),
    Control(
        "DynamoDB.2",
        "dynamodb-2-point-in-time-recovery",
        "DynamoDB tables should have point-in-time recovery enabled",
        "Each table enables point_in_time_recovery.",
        severity=Severity.MEDIUM,
        resource_types=frozenset({TABLE}),
        resource_check=check_table_pitr,
    ),
    Control(
        "DynamoDB.6",
        "dynamodb-6-deletion-protection",
        "DynamoDB tables should have deletion protection enabled",
        "Each table sets deletion_protection_enabled.",
        severity=Severity.MEDIUM,
        resource_types=frozenset({TABLE}),
        resource_check=check_table_deletion_protection,
    ),
)
