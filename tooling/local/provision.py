"""Create, in the emulator, the resources the handlers need, as the layer programs declare them.

Nothing here repeats a name or a setting: the five real layer programs are run under the Pulumi
SDK's mocks for the emulator's account and region, and each resource is created from the inputs
the program gave it, found by what the layer exports (the bucket whose name is
`s3_bucket_name`, the function whose name is `api_handler_function_name`, ...), never by the
programs' logical names (bucket versioning and encryption, table keys and TTL, queue retention, the
functions' environment, the processor's retry count and dead-letter queue). Only what an emulator
cannot take as-is is adapted, each in one place below:

- ARNs of resources the emulator assigns itself (the KMS key, the secret) replace the
  placeholders the mocks computed, wherever the programs used them;
- the S3-to-Lambda trigger becomes an S3-to-SQS notification on the same prefix and events
  (moto cannot invoke Lambda), which tooling.local.trigger delivers to the processor;
- the TLS-only bucket policy is not applied: moto evaluates its conditional Deny as if every
  request were insecure and would refuse them all (FACTS: test such policies as documents);
- the alarm topic, alarms and dashboard are created as observability declares them (an
  emulator evaluates no metric, so every alarm stays in INSUFFICIENT_DATA), so that what
  `nox -s verify` checks of them is there locally too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from shared.naming import AwsLocation, ResourceNames
from tooling.build import ensure_built
from tooling.local.emulator import EMULATOR_ACCOUNT_ID, EMULATOR_CREDENTIALS, EMULATOR_REGION
from tooling.mock_engine import LayerRun, run_all_layers

# The resource types created here, by their Pulumi type tokens.
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 (a type token)
BUCKET = "aws:s3/bucket:Bucket"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
TABLE = "aws:dynamodb/table:Table"
QUEUE = "aws:sqs/queue:Queue"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
FUNCTION = "aws:lambda/function:Function"
TOPIC = "aws:sns/topic:Topic"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"

EMULATOR_LOCATION = AwsLocation(
    partition="aws", region=EMULATOR_REGION, account_id=EMULATOR_ACCOUNT_ID
)
STACK = "local"


@dataclass(frozen=True)
class AsyncInvokeSettings:
    """Lambda's asynchronous invocation settings of the processor's live alias."""

    maximum_retry_attempts: int
    dead_letter_queue_arn: str


@dataclass
class LocalResources:
    """What was created, and what the in-process functions need to reach it."""

    names: ResourceNames
    endpoint_url: str
    bucket_name: str
    upload_prefix: str
    secret_arn: str
    kms_key_arn: str
    table_name: str
    dead_letter_queue_url: str
    alarm_topic_arn: str
    notification_queue_url: str
    processor_environment: dict[str, str]
    api_environment: dict[str, str]
    async_invoke: AsyncInvokeSettings
    synthesized: dict[str, LayerRun] = field(repr=False, default_factory=dict)


def synthesize(stack: str = STACK) -> dict[str, LayerRun]:
    """The five layer programs, run under mocks for the emulator's account and region (with
    the function archives they read built first, when missing or stale)."""
    ensure_built()
    return run_all_layers(stack=stack, location=EMULATOR_LOCATION)


def client(service: str, endpoint_url: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=EMULATOR_REGION,
    ).client(service, endpoint_url=endpoint_url)


def _substitute(environment: Mapping[str, Any], replacements: Mapping[str, str]) -> dict[str, str]:
    return {key: replacements.get(str(value), str(value)) for key, value in environment.items()}


def provision(endpoint_url: str, runs: dict[str, LayerRun] | None = None) -> LocalResources:
    """Create every resource the handlers use in the emulator at `endpoint_url`."""
    runs = runs or synthesize()
    security, storage, compute = runs["security"], runs["storage"], runs["compute"]
    names = ResourceNames(runs["security"].stack, EMULATOR_LOCATION)

    # The product key, under the alias the security layer gives it
    kms = client("kms", endpoint_url)
    exported = {name: run.export_values() for name, run in runs.items()}
    key_inputs = security.one(KMS_KEY, arn=exported["security"]["kms_key_arn"]).inputs
    key_arn: str = kms.create_key(
        Description=key_inputs["description"], Policy=key_inputs["policy"]
    )["KeyMetadata"]["Arn"]
    alias = security.one(KMS_ALIAS, name=exported["security"]["kms_alias_name"]).inputs["name"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_arn)

    # The application secret, created without a value as the security layer creates it; its
    # first value comes from the rotation function (tooling.local.secret_rotation)
    secret_inputs = security.one(SECRET, name=exported["security"]["secret_name"]).inputs
    secret_arn: str = client("secretsmanager", endpoint_url).create_secret(
        # The name the provider completed the layer's `name_prefix` with.
        Name=security.exports["secret_name"].value,
        Description=secret_inputs["description"],
        KmsKeyId=key_arn,
    )["ARN"]
    replacements = {
        security.exports["kms_key_arn"].value: key_arn,
        security.exports["secrets_manager_arn"].value: secret_arn,
    }
    alarm_topic_arn = _create_observability(runs["observability"], endpoint_url, key_arn)

    bucket_name = _create_bucket(storage, endpoint_url, key_arn)
    table_name = _create_table(storage, endpoint_url, key_arn)
    dead_letter_queue_url = _create_queue(
        storage.one(QUEUE, name=exported["storage"]["dead_letter_queue_name"]).inputs,
        endpoint_url,
        key_arn,
    )
    notification = compute.one(NOTIFICATION, bucket=bucket_name).inputs["lambdaFunctions"][0]
    processor_name = exported["compute"]["s3_processor_function_name"]
    api_name = exported["compute"]["api_handler_function_name"]
    notification_queue_url = _notification_queue(
        names, endpoint_url, bucket_name, notification["filterPrefix"], notification["events"]
    )
    invoke_config = compute.one(INVOKE_CONFIG, functionName=processor_name).inputs
    return LocalResources(
        names=names,
        endpoint_url=endpoint_url,
        bucket_name=bucket_name,
        upload_prefix=notification["filterPrefix"],
        secret_arn=secret_arn,
        kms_key_arn=key_arn,
        table_name=table_name,
        dead_letter_queue_url=dead_letter_queue_url,
        alarm_topic_arn=alarm_topic_arn,
        notification_queue_url=notification_queue_url,
        processor_environment=_substitute(
            compute.one(FUNCTION, name=processor_name).inputs["environment"]["variables"],
            replacements,
        ),
        api_environment=_substitute(
            compute.one(FUNCTION, name=api_name).inputs["environment"]["variables"],
            replacements,
        ),
        async_invoke=AsyncInvokeSettings(
            maximum_retry_attempts=int(invoke_config["maximumRetryAttempts"]),
            dead_letter_queue_arn=invoke_config["destinationConfig"]["onFailure"]["destination"],
        ),
        synthesized=runs,
    )


def _create_bucket(storage: LayerRun, endpoint_url: str, key_arn: str) -> str:
    s3 = client("s3", endpoint_url)
    name: str = storage.export_values()["s3_bucket_name"]
    storage.one(BUCKET, bucket=name)
    s3.create_bucket(Bucket=name)
    ownership = storage.one(OWNERSHIP, bucket=name).inputs["rule"]["objectOwnership"]
    s3.put_bucket_ownership_controls(
        Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]}
    )
    block = storage.one(PUBLIC_ACCESS_BLOCK, bucket=name).inputs
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            setting[0].upper() + setting[1:]: block[setting]
            for setting in (
                "blockPublicAcls",
                "ignorePublicAcls",
                "blockPublicPolicy",
                "restrictPublicBuckets",
            )
        },
    )
    versioning = storage.one(VERSIONING, bucket=name).inputs["versioningConfiguration"]
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["status"]})
    (rule,) = storage.one(ENCRYPTION, bucket=name).inputs["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": default["sseAlgorithm"],
                        "KMSMasterKeyID": key_arn,
                    },
                    "BucketKeyEnabled": rule["bucketKeyEnabled"],
                }
            ]
        },
    )
    return name


def _create_table(storage: LayerRun, endpoint_url: str, key_arn: str) -> str:
    dynamodb = client("dynamodb", endpoint_url)
    table = storage.one(TABLE, name=storage.export_values()["idempotency_table_name"]).inputs
    dynamodb.create_table(
        TableName=table["name"],
        BillingMode=table["billingMode"],
        KeySchema=[{"AttributeName": table["hashKey"], "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in table["attributes"]
        ],
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
        DeletionProtectionEnabled=table["deletionProtectionEnabled"],
    )
    dynamodb.update_time_to_live(
        TableName=table["name"],
        TimeToLiveSpecification={
            "Enabled": table["ttl"]["enabled"],
            "AttributeName": table["ttl"]["attributeName"],
        },
    )
    return str(table["name"])


def _create_queue(queue: Mapping[str, Any], endpoint_url: str, key_arn: str) -> str:
    url: str = client("sqs", endpoint_url).create_queue(
        QueueName=queue["name"],
        Attributes={
            # The mocks hand numbers back as floats; SQS wants whole seconds.
            "MessageRetentionPeriod": str(int(queue["messageRetentionSeconds"])),
            "KmsMasterKeyId": key_arn,
            "KmsDataKeyReusePeriodSeconds": str(int(queue["kmsDataKeyReusePeriodSeconds"])),
        },
    )["QueueUrl"]
    return url


def _notification_queue(
    names: ResourceNames, endpoint_url: str, bucket: str, prefix: str, events: list[str]
) -> str:
    """The queue standing in for S3's direct invocation of the processor."""
    sqs = client("sqs", endpoint_url)
    url: str = sqs.create_queue(QueueName=f"{names.prefix}-local-upload-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    client("s3", endpoint_url).put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": events,
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                }
            ]
        },
    )
    return url


def _create_observability(observability: LayerRun, endpoint_url: str, key_arn: str) -> str:
    """The alarm topic, every alarm notifying it, and the dashboard; the topic's ARN."""
    exported = observability.export_values()
    topic_resource = observability.one(TOPIC, arn=exported["sns_topic_arn"])
    topic = topic_resource.inputs
    topic_arn: str = client("sns", endpoint_url).create_topic(
        Name=topic["name"], Attributes={"KmsMasterKeyId": key_arn}
    )["TopicArn"]
    placeholder_topic = exported["sns_topic_arn"]
    cloudwatch = client("cloudwatch", endpoint_url)
    for alarm in observability.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        inputs = alarm.inputs
        statistic = (
            {"ExtendedStatistic": inputs["extendedStatistic"]}
            if inputs.get("extendedStatistic")
            else {"Statistic": inputs["statistic"]}
        )
        cloudwatch.put_metric_alarm(
            AlarmName=inputs["name"],
            AlarmDescription=inputs["alarmDescription"],
            Namespace=inputs["namespace"],
            MetricName=inputs["metricName"],
            Dimensions=[{"Name": k, "Value": str(v)} for k, v in inputs["dimensions"].items()],
            # The mocks hand numbers back as floats; CloudWatch wants whole seconds and periods.
            Period=int(inputs["period"]),
            EvaluationPeriods=int(inputs["evaluationPeriods"]),
            Threshold=float(inputs["threshold"]),
            ComparisonOperator=inputs["comparisonOperator"],
            TreatMissingData=inputs["treatMissingData"],
            ActionsEnabled=inputs["actionsEnabled"],
            AlarmActions=[
                topic_arn if a == placeholder_topic else a for a in inputs["alarmActions"]
            ],
            OKActions=[topic_arn if a == placeholder_topic else a for a in inputs["okActions"]],
            **statistic,
        )
    dashboard = observability.one(DASHBOARD, dashboardName=exported["dashboard_name"]).inputs
    cloudwatch.put_dashboard(
        DashboardName=dashboard["dashboardName"], DashboardBody=dashboard["dashboardBody"]
    )
    return topic_arn
