"""Create, in the emulator, the resources the handlers need, as the layer programs declare them.

Nothing here repeats a name or a setting: the five real layer programs are run under the Pulumi
SDK's mocks for the emulator's account and region, and each resource is created from the inputs
the program gave it (bucket versioning and encryption, table keys and TTL, queue retention, the
functions' environment, the processor's retry count and dead-letter queue). Only what an emulator
cannot take as-is is adapted, each in one place below:

- ARNs of resources the emulator assigns itself (the KMS key, the secret) replace the
  placeholders the mocks computed, wherever the programs used them;
- the S3-to-Lambda trigger becomes an S3-to-SQS notification on the same prefix and events
  (moto cannot invoke Lambda), which tooling.local.trigger delivers to the processor;
- the TLS-only bucket policy is not applied: moto evaluates its conditional Deny as if every
  request were insecure and would refuse them all (FACTS: test such policies as documents).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from shared.naming import AwsLocation, ResourceNames
from tooling.local.emulator import EMULATOR_ACCOUNT_ID, EMULATOR_CREDENTIALS, EMULATOR_REGION
from tooling.mock_engine import LayerRun, run_all_layers

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
    notification_queue_url: str
    processor_environment: dict[str, str]
    api_environment: dict[str, str]
    async_invoke: AsyncInvokeSettings
    synthesized: dict[str, LayerRun] = field(repr=False, default_factory=dict)


def synthesize(stack: str = STACK) -> dict[str, LayerRun]:
    """The five layer programs, run under mocks for the emulator's account and region."""
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
    key_inputs = security.named("app-key").inputs
    key_arn: str = kms.create_key(
        Description=key_inputs["description"], Policy=key_inputs["policy"]
    )["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=security.named("app-key-alias").inputs["name"], TargetKeyId=key_arn)

    # The application secret, created without a value as the security layer creates it; its
    # first value comes from the rotation function (tooling.local.secret_rotation)
    secret_inputs = security.named("app-secret").inputs
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

    bucket_name = _create_bucket(storage, endpoint_url, key_arn)
    table_name = _create_table(storage, endpoint_url, key_arn)
    dead_letter_queue_url = _create_queue(
        storage.named("dead-letter-queue").inputs, endpoint_url, key_arn
    )
    notification = compute.named("upload-notification").inputs["lambdaFunctions"][0]
    notification_queue_url = _notification_queue(
        names, endpoint_url, bucket_name, notification["filterPrefix"], notification["events"]
    )
    invoke_config = compute.named("s3-processor-async-invoke").inputs
    return LocalResources(
        names=names,
        endpoint_url=endpoint_url,
        bucket_name=bucket_name,
        upload_prefix=notification["filterPrefix"],
        secret_arn=secret_arn,
        kms_key_arn=key_arn,
        table_name=table_name,
        dead_letter_queue_url=dead_letter_queue_url,
        notification_queue_url=notification_queue_url,
        processor_environment=_substitute(
            compute.named("s3-processor").inputs["environment"]["variables"], replacements
        ),
        api_environment=_substitute(
            compute.named("api-handler").inputs["environment"]["variables"], replacements
        ),
        async_invoke=AsyncInvokeSettings(
            maximum_retry_attempts=int(invoke_config["maximumRetryAttempts"]),
            dead_letter_queue_arn=invoke_config["destinationConfig"]["onFailure"]["destination"],
        ),
        synthesized=runs,
    )


def _create_bucket(storage: LayerRun, endpoint_url: str, key_arn: str) -> str:
    s3 = client("s3", endpoint_url)
    name: str = storage.named("upload-bucket").inputs["bucket"]
    s3.create_bucket(Bucket=name)
    ownership = storage.named("upload-bucket-ownership").inputs["rule"]["objectOwnership"]
    s3.put_bucket_ownership_controls(
        Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]}
    )
    block = storage.named("upload-bucket-public-access").inputs
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
    versioning = storage.named("upload-bucket-versioning").inputs["versioningConfiguration"]
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["status"]})
    (rule,) = storage.named("upload-bucket-encryption").inputs["rules"]
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
    table = storage.named("idempotency-table").inputs
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
