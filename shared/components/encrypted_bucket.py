"""A private S3 bucket: versioned, encrypted, owner-enforced, TLS-only, with lifecycle rules,
optionally logging its requests to another bucket or receiving another bucket's logs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from shared.naming import S3_ACCESS_LOG_PREFIX
from shared.policies import server_access_log_delivery_statement, tls_only_bucket_policy

DefaultEncryption = (
    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict
)


@dataclass(frozen=True)
class AccessLogSource:
    """The bucket whose server access logs this bucket receives."""

    bucket_arn: str
    account_id: str


@dataclass
class EncryptedBucketArgs:
    bucket_name: str
    # None selects SSE-S3: S3 server access logging cannot deliver to an SSE-KMS bucket, so
    # only the bucket that receives access logs uses it; every other bucket uses the key.
    kms_key_arn: pulumi.Input[str] | None
    force_destroy: bool
    noncurrent_version_expiration_days: int
    abort_incomplete_multipart_days: int
    expire_objects_after_days: int | None = None
    # The bucket this one's server access logs go to (an EncryptedBucket that receives them).
    access_log_bucket: EncryptedBucket | None = None
    receives_access_logs_from: AccessLogSource | None = None


class EncryptedBucket(pulumi.ComponentResource):
    """The bucket and the settings resources that make it private and durable."""

    bucket: aws.s3.Bucket
    policy: aws.s3.BucketPolicy

    def __init__(
        self, name: str, args: EncryptedBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless:storage:EncryptedBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            name,
            bucket=args.bucket_name,
            # Emptying a versioned bucket on destroy loses data: only when the stack allows it.
            force_destroy=args.force_destroy,
            opts=child,
        )
        bucket_id = self.bucket.id

        # ACLs disabled: the bucket owner owns every object, whoever uploads it.
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket_id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        default_encryption: DefaultEncryption = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn}
            if args.kms_key_arn is not None
            else {"sse_algorithm": "AES256"}
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": default_encryption,
                    # One data key per bucket instead of one KMS call per object.
                    "bucket_key_enabled": args.kms_key_arn is not None,
                }
            ],
            opts=child,
        )
        source = args.receives_access_logs_from
        self.policy = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket_id,
            policy=self.bucket.arn.apply(
                lambda arn: json.dumps(
                    tls_only_bucket_policy(
                        arn,
                        ()
                        if source is None
                        else (
                            server_access_log_delivery_statement(
                                arn, S3_ACCESS_LOG_PREFIX, source.bucket_arn, source.account_id
                            ),
                        ),
                    )
                )
            ),
            # S3 rejects a policy while the public access block is still being applied.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=self._lifecycle_rules(args),
            opts=child,
        )
        target = args.access_log_bucket
        if target is not None:
            aws.s3.BucketLogging(
                f"{name}-access-logging",
                bucket=bucket_id,
                target_bucket=target.bucket.bucket,
                target_prefix=S3_ACCESS_LOG_PREFIX,
                # The target's policy is what lets S3's logging service write there; logging
                # turned on before it exists would lose the first logs.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[target.policy]),
            )
        self.register_outputs({"bucket_name": self.bucket.bucket, "bucket_arn": self.bucket.arn})

    @staticmethod
    def _lifecycle_rules(
        args: EncryptedBucketArgs,
    ) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
        rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = [
            {
                "id": "expire-noncurrent-versions",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {
                    "noncurrent_days": args.noncurrent_version_expiration_days
                },
            },
            {
                "id": "abort-incomplete-multipart-uploads",
                "status": "Enabled",
                "filter": {},
                "abort_incomplete_multipart_upload": {
                    "days_after_initiation": args.abort_incomplete_multipart_days
                },
            },
        ]
        if args.expire_objects_after_days is not None:
            rules.append(
                {
                    "id": "expire-objects",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": args.expire_objects_after_days},
                }
            )
        return rules
