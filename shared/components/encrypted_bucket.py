"""A private S3 bucket: versioned, SSE-KMS with a bucket key, owner-enforced, TLS-only."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from shared.policies import tls_only_bucket_policy


@dataclass
class EncryptedBucketArgs:
    bucket_name: str
    kms_key_arn: pulumi.Input[str]
    force_destroy: bool
    noncurrent_version_expiration_days: int
    abort_incomplete_multipart_days: int


class EncryptedBucket(pulumi.ComponentResource):
    """The bucket and the six settings resources that make it private and durable."""

    bucket: aws.s3.Bucket

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
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": args.kms_key_arn,
                    },
                    # One data key per bucket instead of one KMS call per object.
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket_id,
            policy=self.bucket.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))),
            # S3 rejects a policy while the public access block is still being applied.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=[
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
            ],
            opts=child,
        )
        self.register_outputs({"bucket_name": self.bucket.bucket, "bucket_arn": self.bucket.arn})
