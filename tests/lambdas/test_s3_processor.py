"""The S3 processor on moto: decoding, results, idempotency, ignored events, partial failure,
bounded memory, logs and metrics."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from types import ModuleType
from typing import Any

import pytest

from tests.lambdas.support import (
    NAMES,
    Answer,
    InjectedAnswers,
    PatternStream,
    emf_metrics,
    load_event,
    log_messages,
    s3_event,
    s3_record,
)
from tooling.local.functions import LambdaContext

# Distinctive content: it must never appear in a log line or a metric.
CONTENT_MARKER = b"confidential-object-content-7f3a"


def _upload(s3: Any, key: str, body: bytes, content_type: str = "text/csv") -> str:
    response = s3.put_object(
        Bucket=NAMES.upload_bucket, Key=key, Body=body, ContentType=content_type
    )
    version_id: str = response["VersionId"]
    return version_id


def _result(s3: Any, key: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=NAMES.upload_bucket, Key=f"results/{key}.json")["Body"].read()
    document: dict[str, Any] = json.loads(body)
    return document


def counts_of(**outcomes: int) -> dict[str, int]:
    """What the handler returns: records per outcome, these and zero for every other."""
    names = ("processed", "superseded", "duplicate", "gone", "ignored", "failed")
    return {name: outcomes.get(name, 0) for name in names}


def _result_versions(s3: Any, key: str) -> int:
    listing = s3.list_object_versions(Bucket=NAMES.upload_bucket, Prefix=f"results/{key}.json")
    return len(listing.get("Versions", []))


KEYS = (
    "uploads/a b.csv",  # space: '+' in the event
    "uploads/a+b.csv",  # plus: '%2B' in the event
    "uploads/ünïcødé/日本語 ファイル.txt",  # UTF-8 percent-escapes
    "uploads/nested/deeper/still/x%y&z=1.bin",  # literal '%', '&', '=' and nested prefixes
)


def test_each_record_key_is_decoded_and_described(
    processor: ModuleType, processor_context: LambdaContext, s3: Any
) -> None:
    records = []
    for index, key in enumerate(KEYS):
        body = CONTENT_MARKER + bytes([index]) * (1000 + index)
        version = _upload(s3, key, body, content_type=f"text/type-{index}")
        records.append(s3_record(key, version_id=version, sequencer=f"00{index:016X}"))

    counts = processor.lambda_handler(s3_event(*records), processor_context)

    assert counts == counts_of(processed=4)
    for index, key in enumerate(KEYS):
        body = CONTENT_MARKER + bytes([index]) * (1000 + index)
        result = _result(s3, key)
        assert result["key"] == key
        assert result["bucket"] == NAMES.upload_bucket
        assert result["size"] == len(body)
        assert result["sha256"] == hashlib.sha256(body).hexdigest()
        assert result["contentType"] == f"text/type-{index}"
        assert result["versionId"] == records[index]["s3"]["object"]["versionId"]


def test_the_encoded_form_really_differs_from_the_key() -> None:
    # Guards the test above: the event must carry the keys URL-encoded, as S3 sends them.
    encoded = [s3_record(key)["s3"]["object"]["key"] for key in KEYS]
    assert encoded[0] == "uploads/a+b.csv"
    assert encoded[1] == "uploads/a%2Bb.csv"
    assert "%C3%BC" in encoded[2]


def test_duplicate_delivery_is_processed_once(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    version = _upload(s3, "uploads/once.csv", b"1,2,3\n")
    event = s3_event(s3_record("uploads/once.csv", version_id=version))

    first = processor.lambda_handler(event, processor_context)
    second = processor.lambda_handler(event, processor_context)
    # The same record twice in one event is a duplicate too.
    third = processor.lambda_handler(
        s3_event(*event["Records"], *event["Records"]), processor_context
    )

    assert first["processed"] == 1
    assert second == counts_of(duplicate=1)
    assert third["duplicate"] == 2
    assert _result_versions(s3, "uploads/once.csv") == 1  # the result was written once
    assert emf_metrics(capsys.readouterr().out)["DuplicatesSkipped"] == 3


def test_a_new_version_of_the_same_key_is_processed_again(
    processor: ModuleType, processor_context: LambdaContext, s3: Any
) -> None:
    first = _upload(s3, "uploads/doc.txt", b"first")
    processor.lambda_handler(
        s3_event(s3_record("uploads/doc.txt", version_id=first, sequencer="0055AED6DCD90281E5")),
        processor_context,
    )
    second = _upload(s3, "uploads/doc.txt", b"second version")
    counts = processor.lambda_handler(
        s3_event(s3_record("uploads/doc.txt", version_id=second, sequencer="0055AED6DCD90281F0")),
        processor_context,
    )

    assert counts["processed"] == 1
    result = _result(s3, "uploads/doc.txt")
    assert result["sha256"] == hashlib.sha256(b"second version").hexdigest()
    # The result names the version and the event it describes, also in its metadata.
    assert (result["versionId"], result["sequencer"]) == (second, "0055AED6DCD90281F0")
    head = s3.head_object(Bucket=NAMES.upload_bucket, Key="results/uploads/doc.txt.json")
    assert head["Metadata"] == {"sequencer": "0055AED6DCD90281F0"}
    assert _result_versions(s3, "uploads/doc.txt") == 2


def test_unversioned_records_are_told_apart_by_sequencer(
    processor: ModuleType, processor_context: LambdaContext, s3: Any
) -> None:
    _upload(s3, "uploads/plain.txt", b"plain")
    record = s3_record("uploads/plain.txt", version_id=None, sequencer="0A")

    assert processor.lambda_handler(s3_event(record), processor_context)["processed"] == 1
    assert processor.lambda_handler(s3_event(record), processor_context)["duplicate"] == 1
    later = s3_record("uploads/plain.txt", version_id=None, sequencer="0B")
    assert processor.lambda_handler(s3_event(later), processor_context)["processed"] == 1
    assert _result(s3, "uploads/plain.txt")["sequencer"] == "0B"


def test_the_s3_test_event_is_ignored_with_a_log_line(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    counts = processor.lambda_handler(load_event("s3_test_event"), processor_context)

    assert counts == counts_of()
    messages = [line["message"] for line in log_messages(capsys.readouterr().out)]
    assert "S3 test event ignored" in messages
    assert "Contents" not in s3.list_objects_v2(Bucket=NAMES.upload_bucket, Prefix="results/")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (s3_record("results/uploads/x.csv.json"), "key is outside the upload prefix"),
        (s3_record("other/x.csv"), "key is outside the upload prefix"),
        (
            s3_record("uploads/x.csv", bucket="someone-elses-bucket"),
            "bucket is not the configured upload bucket",
        ),
        (
            s3_record("uploads/x.csv", event_name="ObjectRemoved:Delete"),
            "not an ObjectCreated event",
        ),
    ],
    ids=["results-prefix", "other-prefix", "other-bucket", "removed"],
)
def test_records_not_for_this_function_are_ignored_with_a_log_line(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
    record: dict[str, Any],
    reason: str,
) -> None:
    counts = processor.lambda_handler(s3_event(record), processor_context)

    assert counts["ignored"] == 1
    assert counts["processed"] == counts["failed"] == 0
    output = capsys.readouterr().out
    ignored = [line for line in log_messages(output) if line["message"] == "Record ignored"]
    assert [line["reason"] for line in ignored] == [reason]
    assert emf_metrics(output)["RecordsIgnored"] == 1
    assert "Contents" not in s3.list_objects_v2(Bucket=NAMES.upload_bucket, Prefix="results/")


def test_a_failing_record_leaves_the_others_processed_and_fails_the_invocation(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good_before = _upload(s3, "uploads/good-1.csv", b"a")
    good_after = _upload(s3, "uploads/good-2.csv", b"b")
    # A key so long that its result key would exceed S3's 1024 bytes: a permanent failure.
    long_key = "uploads/" + "k" * 1010
    bad = _upload(s3, long_key, b"c")
    event = s3_event(
        s3_record("uploads/good-1.csv", version_id=good_before),
        s3_record(long_key, version_id=bad),
        s3_record("uploads/good-2.csv", version_id=good_after),
    )

    with pytest.raises(processor.RecordsFailedError, match="1 of 3 record"):
        processor.lambda_handler(event, processor_context)

    assert _result(s3, "uploads/good-1.csv")["size"] == 1
    assert _result(s3, "uploads/good-2.csv")["size"] == 1
    output = capsys.readouterr().out
    assert emf_metrics(output)["RecordsFailed"] == 1  # metrics are flushed despite the failure
    failed = [line for line in log_messages(output) if line["message"] == "Record failed"]
    assert len(failed) == 1 and failed[0]["record_index"] == 1

    # Lambda's retry delivers the same event: the done records are skipped, not redone, and the
    # failed one is attempted again (its idempotency record was released when it failed).
    with pytest.raises(processor.RecordsFailedError):
        processor.lambda_handler(event, processor_context)
    retry_output = capsys.readouterr().out
    assert emf_metrics(retry_output)["DuplicatesSkipped"] == 2
    assert emf_metrics(retry_output)["RecordsFailed"] == 1
    assert _result_versions(s3, "uploads/good-1.csv") == 1


def test_an_object_deleted_before_processing_is_skipped_not_failed(
    processor: ModuleType,
    processor_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    counts = processor.lambda_handler(
        s3_event(s3_record("uploads/vanished.csv")), processor_context
    )

    assert counts["gone"] == 1
    assert emf_metrics(capsys.readouterr().out)["ObjectsGone"] == 1


def test_a_large_object_is_streamed_with_bounded_memory(
    processor: ModuleType, processor_context: LambdaContext, s3: Any
) -> None:
    size = 64 * 1024 * 1024
    # Warm up first: botocore loads service models on first use, which is not per-object memory.
    small = _upload(s3, "uploads/small.bin", b"warm-up")
    processor.lambda_handler(
        s3_event(s3_record("uploads/small.bin", version_id=small)), processor_context
    )

    # The 64 MiB body is produced as botocore reads it (moto never holds it): what is measured
    # is the handler's and botocore's own allocation while streaming, hashing and writing.
    body = PatternStream(size)
    InjectedAnswers(
        processor.s3_client,
        "GetObject",
        [
            Answer(
                status=200,
                stream=body,
                headers={
                    "Content-Length": str(size),
                    "Content-Type": "application/octet-stream",
                    "ETag": '"big"',
                    "x-amz-version-id": "big-version",
                },
            )
        ],
    )
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        counts = processor.lambda_handler(
            s3_event(s3_record("uploads/big.bin", version_id="big-version")), processor_context
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert counts["processed"] == 1
    assert body.position == size
    assert body.largest_read <= processor.CHUNK_BYTES
    growth_mib = (peak - baseline) / 1024 / 1024
    assert growth_mib < 8, f"peak memory grew {growth_mib:.1f} MiB for a 64 MiB object"
    result = _result(s3, "uploads/big.bin")
    assert result["size"] == size
    assert result["sha256"] == PatternStream.sha256(size)


def test_logs_are_structured_with_correlation_ids_and_never_carry_content(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    version = _upload(s3, "uploads/secret.csv", CONTENT_MARKER * 10)
    record = s3_record("uploads/secret.csv", version_id=version)
    record["responseElements"]["x-amz-request-id"] = "REQ0123456789ABC"

    processor.lambda_handler(s3_event(record), processor_context)

    output = capsys.readouterr().out
    assert CONTENT_MARKER.decode() not in output
    processed = [line for line in log_messages(output) if line["message"] == "Object processed"]
    assert len(processed) == 1
    line = processed[0]
    assert line["correlation_id"] == "REQ0123456789ABC"
    assert line["function_request_id"] == processor_context.aws_request_id
    assert line["object_key"] == "uploads/secret.csv"
    assert line["service"] == "s3-processor"
    metrics = emf_metrics(output)
    assert metrics["ObjectsProcessed"] == 1
    assert metrics["BytesProcessed"] == len(CONTENT_MARKER) * 10


@pytest.mark.parametrize("response_elements", ["absent", "null"])
def test_a_record_without_response_elements_is_processed_normally(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
    response_elements: str,
) -> None:
    # An event replayed by hand (or one of moto's notifications) may lack responseElements,
    # which S3 itself always sends: there is then no S3 request id to log, and nothing else
    # changes.
    version = _upload(s3, "uploads/replayed.csv", b"a,b\n1,2\n")
    record = s3_record("uploads/replayed.csv", version_id=version)
    if response_elements == "absent":
        del record["responseElements"]
    else:
        record["responseElements"] = None

    counts = processor.lambda_handler(s3_event(record), processor_context)

    assert counts == counts_of(processed=1)
    result = _result(s3, "uploads/replayed.csv")
    assert result["versionId"] == version
    assert result["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    output = capsys.readouterr().out
    (line,) = [line for line in log_messages(output) if line["message"] == "Object processed"]
    assert line["object_key"] == "uploads/replayed.csv"
    assert line.get("s3_request_id") is None
    assert line.get("correlation_id") is None
    assert emf_metrics(output)["ObjectsProcessed"] == 1
