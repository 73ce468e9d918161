"""S3 processor: describes every object uploaded under the upload prefix.

S3 invokes this function asynchronously with `ObjectCreated` events. For each record the object is
read as a stream (never whole: the function has 128-256 MB), its size, content type and SHA-256
are computed, and a JSON result is written at `result_keys.result_key_for(key)`, where the API
serves it.

Delivery is at least once, so each object version is processed under Powertools idempotency,
keyed on bucket, key and version id (or the event's sequencer when the bucket is unversioned) and
stored in the storage layer's DynamoDB table: a duplicate is skipped and counted. A failing
record does not stop the others; once all are tried the invocation fails, so Lambda retries and
finally sends the event to the dead-letter queue, and the records already done are skipped then.

Delivery is also unordered (S3 does not order notifications, and Lambda's retries reorder them
further), so the result of a key must always describe its newest version: each result records
the event's sequencer, and a result is only ever replaced by one of a later event of the same
key, with S3 conditional writes so that concurrent invocations cannot undo each other (see
`_write_result`). An older event is "superseded": counted, and nothing is written.

An object deleted before it is processed is "gone": counted, and nothing is written. Without
`s3:ListBucket` in the implicit check S3 answers such a read with 403, not 404; the processor
then asks a listing whether the version still exists (see `_version_still_exists`).

Configuration is read from the environment once, at cold start (see `ProcessorConfig`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

import boto3  # type: ignore[import-untyped, unused-ignore]
import result_keys  # lambdas/common, at the archive root
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]
from function_config import FunctionEnvironment, retrying_client_config  # lambdas/common

# Reading 1 MiB at a time keeps memory flat whatever the object's size, while the per-chunk
# overhead stays negligible next to hashing.
CHUNK_BYTES = 1024 * 1024

# The idempotency key is `<prefix>#<sha256 of [bucket, key, version]>`. A fixed prefix keeps the
# keys of already processed objects valid across renames of the function or of this module.
IDEMPOTENCY_KEY_PREFIX = "s3-processor#object-version"

# Error codes meaning the object (or the result) no longer exists: retrying cannot help. S3 answers
# them only to a caller allowed s3:ListBucket in the request's implicit check ("404" is HeadObject's
# code: a HEAD response has no body); moto always answers them.
OBJECT_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404"})
# What S3 answers instead to a caller without that permission for a key or version that does not
# exist (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html), and also to a real
# denial (a KMS key policy, a bucket policy): only a listing tells the two apart.
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "403"})
# A conditional write lost: 412 when the condition did not hold, 409 when another conditional
# write of the key was in progress (S3 asks the caller to re-read and retry).
CONDITION_FAILED_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})

# Conditional writes of one result lost in a row before the record fails and Lambda retries the
# event later. Each loss means another invocation changed the result meanwhile, so the result
# moved forward; five in a row needs five concurrent events of one key.
RESULT_WRITE_ATTEMPTS = 5
# User metadata of each result (x-amz-meta-sequencer): HeadObject reads it without the body.
SEQUENCER_METADATA_KEY = "sequencer"
# Objects per page of ListObjectVersions while looking for one version of a key.
VERSION_LISTING_PAGE_SIZE = 1000

RESULT_SCHEMA_VERSION = 1


class RecordsFailedError(RuntimeError):
    """Some records failed; raised after all were tried, so Lambda retries the event."""


class InvalidRecordError(ValueError):
    """An S3 event record without the fields needed to identify the object version."""


class ResultWriteConflictError(RuntimeError):
    """Other invocations kept replacing the result between our read and our write."""


# How S3 orders the events of one key (S3 event message structure, "sequencer"): "If you compare
# the sequencer strings from two event notifications on the same object key, the event
# notification with the greater sequencer hexadecimal value is the event that occurred later";
# sequencers of different keys cannot be compared; "The sequencers can be of different lengths.
# So, to compare these values, first right pad the shorter value with zeros, and then do a
# lexicographical comparison." Events that create or delete objects carry a sequencer.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
# (wording as in AWS's published source of that page, github.com/awsdocs/amazon-s3-userguide,
# doc_source/notification-content-structure.md; older editions said "left pad"). Right padding
# aligns the most significant digits, so a longer sequencer is not later for being longer.
_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]+")


def is_sequencer(text: str) -> bool:
    """Whether `text` is a sequencer: hexadecimal digits only."""
    return _HEX_DIGITS.fullmatch(text) is not None


def compare_sequencers(first: str, second: str) -> int:
    """Negative, zero or positive as the event of `first` came before, with or after `second`'s.

    Both must be sequencers of events on the same object key (see is_sequencer).
    """
    width = max(len(first), len(second))
    left, right = first.upper().ljust(width, "0"), second.upper().ljust(width, "0")
    return (left > right) - (left < right)


@dataclass(frozen=True)
class ProcessorConfig:
    """Everything the compute layer configures, read once per execution environment."""

    bucket_name: str
    upload_prefix: str
    results_prefix: str
    idempotency_table_name: str
    idempotency_ttl_seconds: int

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ProcessorConfig:
        """Raises function_config.ConfigError naming every missing variable, or the invalid one."""
        env = FunctionEnvironment("s3_processor", environ)
        env.require(
            "BUCKET_NAME",
            "UPLOAD_PREFIX",
            "RESULTS_PREFIX",
            "IDEMPOTENCY_TABLE_NAME",
            "IDEMPOTENCY_TTL_SECONDS",
        )
        ttl_seconds = env.positive_int("IDEMPOTENCY_TTL_SECONDS")
        upload_prefix = env.text("UPLOAD_PREFIX")
        results_prefix = env.text("RESULTS_PREFIX")
        if upload_prefix.startswith(results_prefix) or results_prefix.startswith(upload_prefix):
            # Results written under the upload prefix would trigger the processor again, forever.
            raise env.error(
                "UPLOAD_PREFIX and RESULTS_PREFIX must not contain each other, "
                f"got {upload_prefix!r} and {results_prefix!r}"
            )
        return cls(
            bucket_name=env.text("BUCKET_NAME"),
            upload_prefix=upload_prefix,
            results_prefix=results_prefix,
            idempotency_table_name=env.text("IDEMPOTENCY_TABLE_NAME"),
            idempotency_ttl_seconds=ttl_seconds,
        )


CONFIG = ProcessorConfig.from_environment(os.environ)

# An asynchronous invocation can afford patient retries of throttling, 5xx and connection errors.
BOTO_CONFIG = retrying_client_config(total_max_attempts=5, connect_timeout=5, read_timeout=30)

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE

# Created at cold start: the init phase is not billed per invocation and runs at full CPU.
s3_client = boto3.session.Session().client("s3", config=BOTO_CONFIG)
persistence_store = DynamoDBPersistenceLayer(
    table_name=CONFIG.idempotency_table_name, boto_config=BOTO_CONFIG
)


def _count_duplicate(response: dict[str, Any], idempotent_data: DataRecord) -> dict[str, Any]:
    """Powertools calls this instead of the function when the object version was already done."""
    metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
    logger.info(
        "Duplicate delivery skipped", extra={"idempotency_key": idempotent_data.idempotency_key}
    )
    return {**response, "duplicate": True}


idempotency_config = IdempotencyConfig(
    event_key_jmespath="[bucket, key, version]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=CONFIG.idempotency_ttl_seconds,
    hash_function="sha256",
    response_hook=_count_duplicate,
)


@dataclass(frozen=True)
class ObjectVersion:
    """One object version named by an event record, with its key already URL-decoded."""

    bucket: str
    key: str
    version_id: str | None
    sequencer: str | None

    @property
    def version(self) -> str:
        """What makes a delivery of this upload unique: the version id, else the sequencer."""
        return self.version_id or self.sequencer or ""

    def identity(self) -> dict[str, str]:
        return {"bucket": self.bucket, "key": self.key, "version": self.version}


def _object_version(record: S3EventRecord) -> ObjectVersion:
    s3 = record.s3
    raw_key = s3.get_object.raw_event.get("key")
    if not isinstance(raw_key, str) or not raw_key:
        raise InvalidRecordError("the record has no object key")
    sequencer = s3.get_object.raw_event.get("sequencer")
    # Keys arrive URL-encoded (a space as '+', '+' as '%2B', UTF-8 percent-escaped), per record.
    return ObjectVersion(
        bucket=s3.bucket.name,
        key=unquote_plus(raw_key),
        version_id=s3.get_object.version_id or None,
        sequencer=sequencer if isinstance(sequencer, str) and sequencer else None,
    )


def _required_sequencer(version: ObjectVersion) -> str:
    """The record's sequencer, which every ObjectCreated record must carry.

    Without one the record cannot be ordered against the other events of its key, so writing its
    result could replace a newer one: it fails instead (never a silent overwrite), so that Lambda
    retries and then dead-letters it, where the dead-letter alarm makes it visible. Only a record
    built by hand can lack it; S3 always sends one.
    """
    if version.sequencer is None:
        raise InvalidRecordError(
            "the record has no sequencer, so it cannot be ordered against the other events of "
            "its key (S3 sends one with every ObjectCreated event)"
        )
    if not is_sequencer(version.sequencer):
        raise InvalidRecordError("the record's sequencer is not a hexadecimal value")
    return version.sequencer


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _version_still_exists(bucket: str, key: str, version_id: str | None) -> bool:
    """Whether the announced object version still exists, asked through a listing.

    The role may list the upload prefix but has no unconditioned s3:ListBucket: S3's implicit
    ListBucket check behind a GetObject carries no s3:prefix, so a prefix-conditioned grant most
    likely does not turn its 403 into a 404. Listings compare keys byte by byte (UTF-8 binary
    order), and a key sorts before every longer key it prefixes: listing with the key itself as
    prefix returns that key's entries first, so the search stops at the first other key.
    """
    if version_id is None:
        listing = s3_client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return any(item["Key"] == key for item in listing.get("Contents", []))
    pages = s3_client.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Prefix=key, PaginationConfig={"PageSize": VERSION_LISTING_PAGE_SIZE}
    )
    for page in pages:
        versions = page.get("Versions", [])
        if any(item["Key"] == key and item["VersionId"] == version_id for item in versions):
            return True
        # Delete markers are listed apart but in the same order: an entry of another key in
        # either list means every entry of this key has been seen.
        if any(item["Key"] != key for item in [*versions, *page.get("DeleteMarkers", [])]):
            return False
    return False


def _gone(key: str, error_code: str, *, confirmed_by_listing: bool) -> dict[str, Any]:
    # Deleted before we got to it: nothing to describe, and retrying cannot bring it back.
    logger.warning(
        "Object no longer exists; skipped",
        extra={"error_code": error_code, "confirmed_by_listing": confirmed_by_listing},
    )
    metrics.add_metric(name="ObjectsGone", unit=MetricUnit.Count, value=1)
    return {"status": "gone", "key": key}


def _current_result(bucket: str, result_key: str) -> tuple[str, str | None] | None:
    """The current result's ETag and recorded sequencer, or None when there is none now."""
    try:
        head = s3_client.head_object(Bucket=bucket, Key=result_key)
    except ClientError as error:
        # Gone since our create-only write failed (deleted by hand, or a concurrent creation
        # that failed). Without ListBucket on the results S3 answers that HEAD with 403 as it
        # does a real denial; the caller's attempts are bounded, so a real one still fails.
        if _error_code(error) in OBJECT_GONE_CODES | ACCESS_DENIED_CODES:
            return None
        raise
    stored = head.get("Metadata", {}).get(SEQUENCER_METADATA_KEY)
    return str(head["ETag"]), stored if isinstance(stored, str) else None


def _is_at_least(stored: str | None, sequencer: str) -> bool:
    """Whether a result recorded for `stored` describes this event or a later one of the key.

    A result without a valid sequencer was not written by this code (results from before the
    sequencer was recorded, or edited by hand): any event may replace it.
    """
    if stored is None or not is_sequencer(stored):
        return False
    return compare_sequencers(stored, sequencer) >= 0


def _write_result(bucket: str, result_key: str, body: bytes, sequencer: str) -> bool:
    """Write the result unless the current one describes this event or a later one of the key.

    True when written, False when superseded. Optimistic concurrency with S3 conditional writes:
    create only if no result exists (If-None-Match: *); otherwise read the current result's
    sequencer and ETag, and replace exactly that result (If-Match: <ETag>) only if ours is later.
    A write that loses (412, or 409 for a concurrent conditional write) reads again. Source:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
    """
    request: dict[str, Any] = {
        "Bucket": bucket,
        "Key": result_key,
        "Body": body,
        "ContentType": "application/json",
        "Metadata": {SEQUENCER_METADATA_KEY: sequencer},
    }
    last_error: ClientError | None = None
    for _ in range(RESULT_WRITE_ATTEMPTS):
        try:
            s3_client.put_object(**request, IfNoneMatch="*")
            return True
        except ClientError as error:
            if _error_code(error) not in CONDITION_FAILED_CODES:
                raise
            last_error = error
        current = _current_result(bucket, result_key)
        if current is None:
            continue  # no result now: try creating it again
        etag, stored = current
        if _is_at_least(stored, sequencer):
            return False
        try:
            s3_client.put_object(**request, IfMatch=etag)
            return True
        except ClientError as error:
            # 404: the result was deleted since we read it; create it again.
            if _error_code(error) not in CONDITION_FAILED_CODES | OBJECT_GONE_CODES:
                raise
            last_error = error
    raise ResultWriteConflictError(
        f"the result changed under {RESULT_WRITE_ATTEMPTS} write attempts in a row; the record "
        "fails so that Lambda retries it"
    ) from last_error


def _process_object(
    *, identity: dict[str, str], version_id: str | None, sequencer: str
) -> dict[str, Any]:
    """Stream one object version, describe it and write the result; runs once per version."""
    bucket, key = identity["bucket"], identity["key"]
    # First, so that a key with no possible result key fails before the object is read.
    result_key = result_keys.result_key_for(key, CONFIG.results_prefix)
    request: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version_id:
        # Read exactly the version the event announced, not whatever is newest now.
        request["VersionId"] = version_id
    try:
        response = s3_client.get_object(**request)
    except ClientError as error:
        code = _error_code(error)
        if code in OBJECT_GONE_CODES:
            return _gone(key, code, confirmed_by_listing=False)
        if code in ACCESS_DENIED_CODES and not _version_still_exists(bucket, key, version_id):
            return _gone(key, code, confirmed_by_listing=True)
        # A real denial (a KMS key, a bucket policy): fail, so Lambda retries and dead-letters.
        raise

    digest = hashlib.sha256()
    size = 0
    body = response["Body"]
    try:
        for chunk in body.iter_chunks(chunk_size=CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    finally:
        body.close()

    result = {
        "schemaVersion": RESULT_SCHEMA_VERSION,
        "bucket": bucket,
        "key": key,
        "versionId": response.get("VersionId") or version_id,
        "sequencer": sequencer,
        "size": size,
        "contentType": response.get("ContentType") or "binary/octet-stream",
        "sha256": digest.hexdigest(),
        "eTag": str(response.get("ETag", "")).strip('"'),
        "processedAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    document = json.dumps(result, ensure_ascii=False, sort_keys=True).encode("utf-8")
    written = _write_result(bucket, result_key, document, sequencer)
    metrics.add_metric(name="BytesProcessed", unit=MetricUnit.Bytes, value=size)
    if not written:
        # Cached by the idempotency layer like any outcome: a redelivery of this version is
        # superseded for good, as the key's recorded sequencer only ever grows.
        metrics.add_metric(name="ObjectsSuperseded", unit=MetricUnit.Count, value=1)
        logger.info(
            "A later event of the key already has its result; nothing written",
            extra={"result_key": result_key, "sequencer": sequencer},
        )
        return {"status": "superseded", "key": key, "resultKey": result_key, "size": size}
    metrics.add_metric(name="ObjectsProcessed", unit=MetricUnit.Count, value=1)
    logger.info(
        "Object processed",
        extra={"result_key": result_key, "size": size, "content_type": result["contentType"]},
    )
    return {"status": "processed", "key": key, "resultKey": result_key, "size": size}


class ProcessObject(Protocol):
    def __call__(
        self, *, identity: dict[str, str], version_id: str | None, sequencer: str
    ) -> dict[str, Any]: ...


# Applied without decorator syntax because Powertools' decorator is untyped; the Protocol keeps
# the call site checked. Only `identity` is hashed into the idempotency key.
process_object: ProcessObject = idempotent_function(
    _process_object,
    data_keyword_argument="identity",
    persistence_store=persistence_store,
    config=idempotency_config,
    key_prefix=IDEMPOTENCY_KEY_PREFIX,
)


def _skip_reason(record: S3EventRecord, version: ObjectVersion) -> str | None:
    """Why a well-formed record is not for this function, or None when it is."""
    if not record.event_name.startswith("ObjectCreated:"):
        return "not an ObjectCreated event"
    if version.bucket != CONFIG.bucket_name:
        return "bucket is not the configured upload bucket"
    if not version.key.startswith(CONFIG.upload_prefix):
        return "key is outside the upload prefix"
    return None


def _handle_record(record: S3EventRecord) -> str:
    version = _object_version(record)
    with logger.append_context_keys(
        bucket=version.bucket,
        object_key=version.key,
        object_version=version.version,
        # S3 always sends responseElements; an event built by hand (a replay) may lack it or
        # hold null.
        s3_request_id=(record.raw_event.get("responseElements") or {}).get("x-amz-request-id"),
    ):
        reason = _skip_reason(record, version)
        if reason is not None:
            logger.info("Record ignored", extra={"reason": reason, "event_name": record.event_name})
            metrics.add_metric(name="RecordsIgnored", unit=MetricUnit.Count, value=1)
            return "ignored"
        outcome = process_object(
            identity=version.identity(),
            version_id=version.version_id,
            sequencer=_required_sequencer(version),
        )
        if outcome.get("duplicate"):
            return "duplicate"
        return str(outcome["status"])


def _flush_metrics() -> None:
    # Powertools warns when flushing an empty metric set; only flush when there is something.
    if metrics.provider.metric_set:
        metrics.flush_metrics()


@logger.inject_lambda_context(
    correlation_id_path='Records[0].responseElements."x-amz-request-id"', clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Process every record; fail the invocation afterwards if any record failed."""
    idempotency_config.register_lambda_context(context)
    try:
        return _process_event(event)
    finally:
        _flush_metrics()


def _process_event(event: dict[str, Any]) -> dict[str, int]:
    counts = {
        "processed": 0,
        "superseded": 0,
        "duplicate": 0,
        "gone": 0,
        "ignored": 0,
        "failed": 0,
    }
    if event.get("Event") == "s3:TestEvent":
        # S3 sends this once when the notification is configured; there is nothing to process.
        logger.info("S3 test event ignored")
        metrics.add_metric(name="TestEventsIgnored", unit=MetricUnit.Count, value=1)
        return counts

    records = list(S3Event(event).records) if isinstance(event.get("Records"), list) else []
    if not records:
        logger.warning("Event without S3 records ignored", extra={"event_keys": sorted(event)})
        metrics.add_metric(name="RecordsIgnored", unit=MetricUnit.Count, value=1)
        return counts

    for index, record in enumerate(records):
        try:
            counts[_handle_record(record)] += 1
        except Exception:
            # Keep going: one bad record must not stop the others. The traceback goes to the
            # log (never object contents: only keys and error codes reach the messages).
            counts["failed"] += 1
            metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=1)
            logger.exception("Record failed", extra={"record_index": index})

    logger.info("Event processed", extra={"records": len(records), **counts})
    if counts["failed"]:
        raise RecordsFailedError(
            f"{counts['failed']} of {len(records)} record(s) failed; the invocation fails so "
            "Lambda retries the event (records already done are skipped as duplicates) and "
            "finally sends it to the dead-letter queue"
        )
    return counts
