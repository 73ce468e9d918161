"""Storage layer: where uploads, idempotency records and failed events are kept.

Deploys the upload bucket (versioned, SSE-KMS with a bucket key, public access blocked, ACLs
disabled, TLS-only, lifecycle rules, server access logging), the bucket receiving its access
logs, the DynamoDB table in which the processor records what it has processed (on-demand, TTL,
KMS, point-in-time recovery, deletion protection) and the SQS dead-letter queue for events that
failed processing (KMS, 14 days). Reads the KMS key from the security layer.
"""

import pulumi
import pulumi_aws as aws

from shared.aws_context import current_location
from shared.components.encrypted_bucket import (
    AccessLogSource,
    EncryptedBucket,
    EncryptedBucketArgs,
)
from shared.config import LayerConfig
from shared.exports import export_outputs
from shared.manifest import MANIFEST
from shared.naming import IDEMPOTENCY_KEY_ATTRIBUTE, IDEMPOTENCY_TTL_ATTRIBUTE, ResourceNames
from shared.references import UpstreamOutputs
from shared.tags import apply_standard_tags

SECONDS_PER_DAY = 86_400

layer = MANIFEST.layer("storage")
config = LayerConfig(layer)
location = current_location()
names = ResourceNames(pulumi.get_stack(), location)
apply_standard_tags(layer, names.environment)
upstream = UpstreamOutputs(layer, org=config.optional_string("org"))
kms_key_arn = upstream.require("kms_key_arn")
force_destroy = config.boolean("force_destroy")
noncurrent_version_expiration_days = config.integer(
    "noncurrent_version_expiration_days", minimum=1, maximum=3650
)
abort_incomplete_multipart_days = config.integer(
    "abort_incomplete_multipart_days", minimum=1, maximum=30
)

# Server access logs of the upload bucket: who read or wrote which object, kept for audit
access_logs = EncryptedBucket(
    "access-log-bucket",
    EncryptedBucketArgs(
        bucket_name=names.access_log_bucket,
        kms_key_arn=None,
        force_destroy=force_destroy,
        noncurrent_version_expiration_days=noncurrent_version_expiration_days,
        abort_incomplete_multipart_days=abort_incomplete_multipart_days,
        expire_objects_after_days=config.integer(
            "access_log_retention_days", minimum=1, maximum=3650
        ),
        receives_access_logs_from=AccessLogSource(names.bucket_arn(), location.account_id),
    ),
)

# The upload bucket: the processor reads uploads/ and writes results/
uploads = EncryptedBucket(
    "upload-bucket",
    EncryptedBucketArgs(
        bucket_name=names.upload_bucket,
        kms_key_arn=kms_key_arn,
        force_destroy=force_destroy,
        noncurrent_version_expiration_days=noncurrent_version_expiration_days,
        abort_incomplete_multipart_days=abort_incomplete_multipart_days,
        access_log_bucket=access_logs,
    ),
)

# Idempotency records: one item per processed object version, expired by TTL
idempotency_table = aws.dynamodb.Table(
    "idempotency-table",
    name=names.idempotency_table,
    billing_mode="PAY_PER_REQUEST",
    hash_key=IDEMPOTENCY_KEY_ATTRIBUTE,
    attributes=[{"name": IDEMPOTENCY_KEY_ATTRIBUTE, "type": "S"}],
    ttl={"attribute_name": IDEMPOTENCY_TTL_ATTRIBUTE, "enabled": True},
    server_side_encryption={"enabled": True, "kms_key_arn": kms_key_arn},
    point_in_time_recovery={"enabled": True},
    # Losing the table would reprocess every object still in the bucket.
    deletion_protection_enabled=config.boolean("table_deletion_protection"),
)

# Events the processor failed on after Lambda's retries, kept for inspection and replay
dead_letter_queue = aws.sqs.Queue(
    "dead-letter-queue",
    name=names.dead_letter_queue,
    kms_master_key_id=kms_key_arn,
    # One data key per five minutes instead of one KMS call per message.
    kms_data_key_reuse_period_seconds=300,
    message_retention_seconds=config.integer("dead_letter_retention_days", minimum=1, maximum=14)
    * SECONDS_PER_DAY,
)

export_outputs(
    layer,
    {
        "s3_bucket_name": uploads.bucket.bucket,
        "s3_bucket_arn": uploads.bucket.arn,
        "idempotency_table_name": idempotency_table.name,
        "idempotency_table_arn": idempotency_table.arn,
        "dead_letter_queue_arn": dead_letter_queue.arn,
        "dead_letter_queue_name": dead_letter_queue.name,
        "dead_letter_queue_url": dead_letter_queue.url,
    },
)
