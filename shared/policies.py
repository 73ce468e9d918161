"""IAM, KMS and bucket policy documents, as pure functions of names and ARNs.

The security layer attaches these documents; tests evaluate the very same documents under
moto's IAM enforcement and check them statically. Every statement names exact resources.
The only wildcards are where AWS offers nothing narrower; each says so where it is written.
"""

from __future__ import annotations

from typing import Any

from shared.naming import (
    API_EXECUTION_LOG_GROUP_PREFIX,
    API_GATEWAY_WELCOME_LOG_GROUP,
    APP_NAME,
    RESULTS_PREFIX,
    UPLOAD_PREFIX,
    ResourceNames,
)

PolicyDocument = dict[str, Any]
Statement = dict[str, Any]

VERSION = "2012-10-17"

# X-Ray has no resource-level permissions: AWS documents "*" as the only resource for these.
XRAY_WRITE_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
# Secrets Manager's random-password generator acts on no resource: "*" is its only form.
RANDOM_PASSWORD_ACTION = "secretsmanager:GetRandomPassword"  # noqa: S105 (an action name)

# Services that encrypt this product's data with the key on a caller's behalf.
KMS_VIA_SERVICES = ("s3", "sqs", "secretsmanager", "dynamodb", "lambda", "sns")

KMS_ADMIN_ACTIONS = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
]


def document(*statements: Statement) -> PolicyDocument:
    return {"Version": VERSION, "Statement": list(statements)}


def service_trust_policy(service: str, account_id: str | None) -> PolicyDocument:
    """Let one AWS service assume the role; with `account_id`, only on this account's behalf.

    Pass None for services that do not send aws:SourceAccount when they assume the role
    (API Gateway's account-level logging role): the condition would lock them out.
    """
    statement: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if account_id is not None:
        # Confused-deputy protection: another account's resources cannot use this role.
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return document(statement)


def _write_own_logs(names: ResourceNames, function_name: str) -> Statement:
    # The log group is created by the compute layer, so the function needs no CreateLogGroup.
    log_group = names.function_log_group(function_name)
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": names.log_streams_arn(log_group),
    }


def _xray_write() -> Statement:
    return {
        "Sid": "WriteTraces",
        "Effect": "Allow",
        "Action": XRAY_WRITE_ACTIONS,
        "Resource": "*",  # X-Ray offers no resource-level permissions
    }


def s3_processor_policy(names: ResourceNames, kms_key_arn: str) -> PolicyDocument:
    """The S3 processor reads and lists uploads, reads and writes results, records idempotency,
    dead-letters."""
    return document(
        _write_own_logs(names, names.s3_processor_function),
        {
            "Sid": "ReadUploads",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": names.bucket_objects_arn(UPLOAD_PREFIX),
        },
        {
            # s3:GetObject because HeadObject needs it: before replacing a result the processor
            # reads the sequencer recorded in the result's metadata, so that an older event never
            # overwrites a newer result (conditional writes need no other permission).
            "Sid": "ReadAndWriteResults",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": names.bucket_objects_arn(RESULTS_PREFIX),
        },
        {
            # Without s3:ListBucket S3 answers 403, not 404, for an upload deleted before it was
            # processed; the processor then lists the key's versions to tell that from a real
            # denial. The implicit ListBucket check behind GetObject carries no s3:prefix, so
            # this conditioned grant most likely leaves GetObject's answer at 403: the explicit
            # listing, which does carry the prefix, is what the processor relies on.
            "Sid": "ListUploads",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
            "Resource": names.bucket_arn(),
            "Condition": {"StringLike": {"s3:prefix": [f"{UPLOAD_PREFIX}*"]}},
        },
        {
            "Sid": "IdempotencyRecords",
            "Effect": "Allow",
            "Action": [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": names.table_arn(),
        },
        {
            "Sid": "DeadLetterFailedEvents",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": names.queue_arn(),
        },
        {
            "Sid": "UseDataKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": kms_key_arn,
        },
        _xray_write(),
    )


def api_handler_policy(names: ResourceNames, kms_key_arn: str, secret_arn: str) -> PolicyDocument:
    """The API handler reads results and the application secret; it writes nothing."""
    return document(
        _write_own_logs(names, names.api_handler_function),
        {
            "Sid": "ReadResults",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": names.bucket_objects_arn(RESULTS_PREFIX),
        },
        {
            # Without ListBucket S3 answers a missing key with 403, which the API would have
            # to report as 404 blindly; the condition keeps the listing to results only.
            "Sid": "ListResults",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": names.bucket_arn(),
            "Condition": {"StringLike": {"s3:prefix": [f"{RESULTS_PREFIX}*"]}},
        },
        {
            "Sid": "ReadAppSecret",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": secret_arn,
        },
        {
            "Sid": "DecryptSecretAndResults",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": kms_key_arn,
        },
        _xray_write(),
    )


def secret_rotation_policy(
    names: ResourceNames, kms_key_arn: str, secret_arn: str
) -> PolicyDocument:
    """The rotation function stages, tests and promotes new values of this one secret."""
    return document(
        _write_own_logs(names, names.secret_rotation_function),
        {
            "Sid": "RotateAppSecret",
            "Effect": "Allow",
            "Action": [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            "Resource": secret_arn,
        },
        {
            "Sid": "GenerateNewValue",
            "Effect": "Allow",
            "Action": [RANDOM_PASSWORD_ACTION],
            "Resource": "*",  # GetRandomPassword acts on no resource
        },
        {
            "Sid": "EncryptSecretValues",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": kms_key_arn,
        },
        _xray_write(),
    )


def api_gateway_account_logging_policy(names: ResourceNames) -> PolicyDocument:
    """What the role behind the account-wide API Gateway logging setting must be allowed.

    API Gateway uses one role per account and region for every REST API there, whichever
    environment set it last (README, "API Gateway's account-wide logging role"). So the role
    may write: the welcome group UpdateAccount test-writes to before it accepts the role; the
    execution logs API Gateway names after each API's id (unknown until an api layer runs, and
    any environment's API may be the one logging, hence the id wildcard); and the access logs
    of every environment of this product in this region (`/aws/apigateway/serverless-*`), since
    the role serving them may be another environment's. The actions are those of AWS's own
    AmazonAPIGatewayPushToCloudWatchLogs policy, on these groups instead of on `*`.
    """
    groups = [
        names.log_group_arn(API_GATEWAY_WELCOME_LOG_GROUP),
        names.log_group_arn(f"{API_EXECUTION_LOG_GROUP_PREFIX}*"),
        names.log_group_arn(f"/aws/apigateway/{APP_NAME}-*"),
    ]
    return document(
        {
            "Sid": "WriteApiGatewayLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
                "logs:GetLogEvents",
                "logs:FilterLogEvents",
            ],
            "Resource": [*groups, *(f"{group}:*" for group in groups)],
        },
        {
            "Sid": "FindLogGroups",
            "Effect": "Allow",
            "Action": ["logs:DescribeLogGroups"],
            "Resource": "*",  # DescribeLogGroups has no resource-level permissions
        },
    )


def kms_key_policy(names: ResourceNames) -> PolicyDocument:
    """Key policy: the account administers the key; data is used only through services.

    In a key policy "Resource": "*" means "this key"; it is the only form AWS accepts.
    """
    loc = names.location
    account_root = f"arn:{loc.partition}:iam::{loc.account_id}:root"
    log_groups = names.log_group_arns_for_kms()
    return document(
        {
            # No kms:Decrypt or kms:Encrypt here: the account can manage but not read with the
            # key except through the statements below.
            "Sid": "AccountAdministersKey",
            "Effect": "Allow",
            "Principal": {"AWS": account_root},
            "Action": KMS_ADMIN_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "AccountUsesKeyThroughServices",
            "Effect": "Allow",
            "Principal": {"AWS": account_root},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:CreateGrant",
                "kms:DescribeKey",
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": loc.account_id,
                    "kms:ViaService": [
                        f"{service}.{loc.region}.amazonaws.com" for service in KMS_VIA_SERVICES
                    ],
                }
            },
        },
        {
            "Sid": "CloudWatchLogsEncryptsProductLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{loc.region}.amazonaws.com"},
            "Action": [
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            "Resource": "*",
            # ArnLike: the execution log group's ARN has the REST API's id as a wildcard.
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        },
        {
            # CloudWatch alarms publish to the KMS-encrypted alarm topic; SNS delivers from it.
            "Sid": "AlarmsPublishToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "sns.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": loc.account_id}},
        },
    )


def server_access_log_delivery_statement(
    log_bucket_arn: str, prefix: str, source_bucket_arn: str, account_id: str
) -> Statement:
    """Let S3's logging service write one source bucket's access logs under `prefix`."""
    return {
        "Sid": "S3ServerAccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{log_bucket_arn}/{prefix}*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": source_bucket_arn},
            "StringEquals": {"aws:SourceAccount": account_id},
        },
    }


def tls_only_bucket_policy(
    bucket_arn: str, extra_statements: tuple[Statement, ...] = ()
) -> PolicyDocument:
    """Deny every request to the bucket that is not HTTPS with TLS 1.2 or later."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return document(
        *extra_statements,
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    )


def alarm_topic_policy(names: ResourceNames, topic_arn: str) -> PolicyDocument:
    """Only this product's CloudWatch alarms publish, and only over TLS."""
    account_id = names.location.account_id
    return document(
        {
            "Sid": "AccountAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": names.alarm_arn("*")},
            },
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
