"""Storage layer: a private, encrypted, TLS-only bucket; the idempotency table; the DLQ."""

from __future__ import annotations

from shared.manifest import MANIFEST
from shared.naming import IDEMPOTENCY_KEY_ATTRIBUTE, IDEMPOTENCY_TTL_ATTRIBUTE
from tests.conftest import policy_of
from tooling.mock_engine import LayerRun, run_layer


def test_bucket_is_versioned_and_kms_encrypted_with_a_bucket_key(
    chain: dict[str, LayerRun],
) -> None:
    storage = chain["storage"]
    kms_key_arn = chain["security"].exports["kms_key_arn"].value
    assert storage.named("upload-bucket-versioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }
    (rule,) = storage.named("upload-bucket-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": kms_key_arn,
    }
    assert rule["bucketKeyEnabled"] is True


def test_bucket_is_private_with_acls_disabled(chain: dict[str, LayerRun]) -> None:
    storage = chain["storage"]
    block = storage.named("upload-bucket-public-access").inputs
    for setting in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[setting] is True, setting
    ownership = storage.named("upload-bucket-ownership").inputs["rule"]
    assert ownership == {"objectOwnership": "BucketOwnerEnforced"}


def test_bucket_policy_denies_every_request_without_tls(chain: dict[str, LayerRun]) -> None:
    storage = chain["storage"]
    bucket_arn = storage.exports["s3_bucket_arn"].value
    statements = policy_of(storage.named("upload-bucket-tls-only"))["Statement"]
    insecure = next(s for s in statements if s["Sid"] == "DenyInsecureTransport")
    assert insecure["Effect"] == "Deny"
    assert insecure["Principal"] == "*"
    assert insecure["Action"] == "s3:*"
    assert set(insecure["Resource"]) == {bucket_arn, f"{bucket_arn}/*"}
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    outdated = next(s for s in statements if s["Sid"] == "DenyOutdatedTls")
    assert outdated["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
    assert all(s["Effect"] == "Deny" for s in statements), "the policy grants nothing"


def test_lifecycle_expires_noncurrent_versions_and_aborts_multipart_uploads(
    chain: dict[str, LayerRun],
) -> None:
    rules = {r["id"]: r for r in chain["storage"].named("upload-bucket-lifecycle").inputs["rules"]}
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 30
    }
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 7
    }
    assert all(rule["status"] == "Enabled" for rule in rules.values())


def test_force_destroy_only_where_config_allows(chain: dict[str, LayerRun]) -> None:
    assert chain["storage"].named("upload-bucket").inputs["forceDestroy"] is False
    allowed = run_layer(MANIFEST.layer("storage"), config={"force_destroy": "true"}, upstream=chain)
    assert allowed.named("upload-bucket").inputs["forceDestroy"] is True


def test_idempotency_table_is_on_demand_with_ttl_kms_and_pitr(chain: dict[str, LayerRun]) -> None:
    table = chain["storage"].named("idempotency-table").inputs
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["hashKey"] == IDEMPOTENCY_KEY_ATTRIBUTE
    assert table["ttl"] == {"attributeName": IDEMPOTENCY_TTL_ATTRIBUTE, "enabled": True}
    assert table["serverSideEncryption"] == {
        "enabled": True,
        "kmsKeyArn": chain["security"].exports["kms_key_arn"].value,
    }
    assert table["pointInTimeRecovery"] == {"enabled": True}


def test_dead_letter_queue_is_encrypted_and_keeps_messages_14_days(
    chain: dict[str, LayerRun],
) -> None:
    queue = chain["storage"].named("dead-letter-queue").inputs
    assert queue["kmsMasterKeyId"] == chain["security"].exports["kms_key_arn"].value
    assert queue["messageRetentionSeconds"] == 14 * 86_400


def test_upload_bucket_logs_requests_to_the_access_log_bucket(chain: dict[str, LayerRun]) -> None:
    storage = chain["storage"]
    logging = storage.named("upload-bucket-access-logging").inputs
    assert logging["bucket"] == storage.exports["s3_bucket_name"].value
    assert logging["targetBucket"] == storage.named("access-log-bucket").outputs["bucket"]
    assert logging["targetPrefix"] == "upload-bucket/"


def test_access_log_bucket_accepts_only_the_upload_buckets_logs(chain: dict[str, LayerRun]) -> None:
    storage = chain["storage"]
    log_bucket_arn = storage.named("access-log-bucket").outputs["arn"]
    statements = policy_of(storage.named("access-log-bucket-tls-only"))["Statement"]
    (delivery,) = [s for s in statements if s["Effect"] == "Allow"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == f"{log_bucket_arn}/upload-bucket/*"
    assert delivery["Condition"] == {
        "ArnLike": {"aws:SourceArn": storage.exports["s3_bucket_arn"].value},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }
    assert {s["Sid"] for s in statements} >= {"DenyInsecureTransport", "DenyOutdatedTls"}


def test_access_log_bucket_is_private_versioned_and_expires_logs(
    chain: dict[str, LayerRun],
) -> None:
    storage = chain["storage"]
    (rule,) = storage.named("access-log-bucket-encryption").inputs["rules"]
    # S3 log delivery cannot write to SSE-KMS buckets: SSE-S3 is the strongest it accepts.
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    assert storage.named("access-log-bucket-public-access").inputs["restrictPublicBuckets"] is True
    assert storage.named("access-log-bucket-ownership").inputs["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"
    }
    rules = {r["id"]: r for r in storage.named("access-log-bucket-lifecycle").inputs["rules"]}
    assert rules["expire-objects"]["expiration"] == {"days": 365}


def test_table_is_protected_from_deletion_unless_config_says_otherwise(
    chain: dict[str, LayerRun],
) -> None:
    assert chain["storage"].named("idempotency-table").inputs["deletionProtectionEnabled"] is True
    unprotected = run_layer(
        MANIFEST.layer("storage"), config={"table_deletion_protection": "false"}, upstream=chain
    )
    assert unprotected.named("idempotency-table").inputs["deletionProtectionEnabled"] is False
