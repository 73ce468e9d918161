"""Compute layer: the two functions and the S3 trigger.

Deploys the S3 processor and the API handler, each with its own KMS-encrypted log group, JSON
logs, active tracing, a published version and a `live` alias; the processor's asynchronous
invoke settings (retries, then the dead-letter queue); and the S3 notification on the upload
prefix, invoking the processor's alias. The code is the archives `nox -s build` made of the
functions the manifest declares for this layer. Reads the key, the secret and the roles from the
security layer, the bucket, table and queue from storage.
"""

import pulumi
import pulumi_aws as aws

from shared.aws_context import current_location
from shared.components.serverless_function import ServerlessFunction, ServerlessFunctionArgs
from shared.config import LayerConfig
from shared.exports import export_outputs
from shared.manifest import MANIFEST
from shared.naming import RESULTS_PREFIX, UPLOAD_PREFIX, ResourceNames
from shared.packaging import SUPPORTED_RUNTIMES, built_archive
from shared.references import UpstreamOutputs
from shared.tags import apply_standard_tags

layer = MANIFEST.layer("compute")
config = LayerConfig(layer)
location = current_location()
names = ResourceNames(pulumi.get_stack(), location)
apply_standard_tags(layer, names.environment)
upstream = UpstreamOutputs(layer, org=config.optional_string("org"))

runtime = config.string("runtime", choices=SUPPORTED_RUNTIMES)
log_level = config.string("log_level", choices=["INFO", "DEBUG", "WARN", "ERROR"])
log_retention_days = config.log_retention_days("log_retention_days")
kms_key_arn = upstream.require("kms_key_arn")
bucket_name = upstream.require("s3_bucket_name")
metrics_namespace = names.prefix
processor = layer.function("s3_processor")
api = layer.function("api_handler")
processor_archive = built_archive(processor.name)
api_handler_archive = built_archive(api.name)

# Processes each upload: reads it from uploads/, writes its result under results/
s3_processor = ServerlessFunction(
    "s3-processor",
    ServerlessFunctionArgs(
        function=processor,
        function_name=names.s3_processor_function,
        description="Processes objects uploaded under uploads/ and writes results/",
        archive=processor_archive,
        handler="handler.lambda_handler",
        runtime=runtime,
        role_arn=upstream.require("s3_processor_role_arn"),
        memory_mb=config.integer("processor_memory_mb", minimum=128, maximum=10240),
        timeout_seconds=config.integer("processor_timeout_seconds", minimum=1, maximum=900),
        log_retention_days=log_retention_days,
        log_level=log_level,
        kms_key_arn=kms_key_arn,
        # S3 events queue up asynchronously: a ceiling keeps a burst of uploads from taking
        # the account's whole concurrency (the API handler is bounded by API throttling).
        reserved_concurrency=config.reserved_concurrency("processor_reserved_concurrency"),
        environment={
            "BUCKET_NAME": bucket_name,
            "UPLOAD_PREFIX": UPLOAD_PREFIX,
            "RESULTS_PREFIX": RESULTS_PREFIX,
            "IDEMPOTENCY_TABLE_NAME": upstream.require("idempotency_table_name"),
            "IDEMPOTENCY_TTL_SECONDS": str(
                config.integer("idempotency_ttl_seconds", minimum=60, maximum=2_592_000)
            ),
            "POWERTOOLS_SERVICE_NAME": "s3-processor",
            "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
        },
    ),
)

# Serves the REST API behind API Gateway
api_handler = ServerlessFunction(
    "api-handler",
    ServerlessFunctionArgs(
        function=api,
        function_name=names.api_handler_function,
        description="Serves GET /health, POST /process and GET /objects/{key+}",
        archive=api_handler_archive,
        handler="handler.lambda_handler",
        runtime=runtime,
        role_arn=upstream.require("api_handler_role_arn"),
        memory_mb=config.integer("api_handler_memory_mb", minimum=128, maximum=10240),
        timeout_seconds=config.integer("api_handler_timeout_seconds", minimum=1, maximum=29),
        log_retention_days=log_retention_days,
        log_level=log_level,
        kms_key_arn=kms_key_arn,
        environment={
            "BUCKET_NAME": bucket_name,
            "RESULTS_PREFIX": RESULTS_PREFIX,
            "SECRET_ARN": upstream.require("secrets_manager_arn"),
            "SECRET_CACHE_SECONDS": str(
                config.integer("secret_cache_seconds", minimum=1, maximum=3600)
            ),
            "CORS_ALLOWED_ORIGINS": ",".join(config.string_list("cors_allowed_origins")),
            "MAX_BODY_BYTES": str(config.integer("max_body_bytes", minimum=1, maximum=6_291_456)),
            # Reported by GET /health: identifies the deployed code without a release process.
            "APP_VERSION": api_handler_archive.sha256_hex[:12],
            "POWERTOOLS_SERVICE_NAME": "api-handler",
            "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
        },
    ),
)

# S3 invokes the processor asynchronously: retry, then keep the event in the dead-letter queue
aws.lambda_.FunctionEventInvokeConfig(
    "s3-processor-async-invoke",
    function_name=s3_processor.function.name,
    qualifier=s3_processor.alias.name,
    maximum_retry_attempts=config.integer("processor_max_retry_attempts", minimum=0, maximum=2),
    maximum_event_age_in_seconds=config.integer(
        "processor_max_event_age_seconds", minimum=60, maximum=21600
    ),
    destination_config={"on_failure": {"destination": upstream.require("dead_letter_queue_arn")}},
)

# Give S3 permission to invoke the processor's live alias, for this bucket and account only;
# the qualifier is the alias resource's own output, so the permission waits for the alias
s3_invoke_permission = aws.lambda_.Permission(
    "s3-invoke-processor",
    action="lambda:InvokeFunction",
    function=s3_processor.function.name,
    qualifier=s3_processor.alias.name,
    principal="s3.amazonaws.com",
    source_arn=upstream.require("s3_bucket_arn"),
    source_account=location.account_id,
)

# Trigger on uploads only: results are written under another prefix, so no recursion. S3 checks
# that it may invoke each destination when the notification is saved ("Unable to validate the
# following destination configurations" otherwise), so the notification follows the permission.
aws.s3.BucketNotification(
    "upload-notification",
    bucket=bucket_name,
    lambda_functions=[
        {
            "lambda_function_arn": s3_processor.alias.arn,
            "events": ["s3:ObjectCreated:*"],
            "filter_prefix": UPLOAD_PREFIX,
        }
    ],
    opts=pulumi.ResourceOptions(depends_on=[s3_invoke_permission]),
)

export_outputs(
    layer,
    {
        "s3_processor_lambda_arn": s3_processor.function.arn,
        "s3_processor_function_name": s3_processor.function.name,
        "s3_processor_alias_arn": s3_processor.alias.arn,
        "s3_processor_log_group_name": s3_processor.log_group.name,
        "api_handler_lambda_arn": api_handler.function.arn,
        "api_handler_function_name": api_handler.function.name,
        "api_handler_alias_arn": api_handler.alias.arn,
        "api_handler_alias_invoke_arn": api_handler.alias.invoke_arn,
        "api_handler_log_group_name": api_handler.log_group.name,
    },
)
