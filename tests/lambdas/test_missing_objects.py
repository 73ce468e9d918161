"""An upload deleted before the processor reads it, as real S3 reports it to the processor's role.

The role has no unconditioned s3:ListBucket, so S3 answers GetObject on a key or version that no
longer exists with 403 AccessDenied, the answer it also gives a real denial (a KMS key policy, a
bucket policy). moto answers 404 instead, so each test injects S3's 403 (support.s3_access_denied)
on GetObject and lets every other request reach moto: the processor must tell "gone" (skip,
count, never retry) from "denied" (fail, so Lambda retries and dead-letters) through a listing.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]

from tests.lambdas.support import (
    NAMES,
    InjectedAnswers,
    emf_metrics,
    log_messages,
    s3_access_denied,
    s3_error,
    s3_event,
    s3_record,
)
from tooling.local.functions import LambdaContext

BUCKET = NAMES.upload_bucket


def _upload(s3: Any, key: str, body: bytes = b"data") -> str:
    version: str = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]
    return version


def _has_result(s3: Any, key: str) -> bool:
    return "Contents" in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{key}.json")


def _gets_denied_as_s3_does(processor: ModuleType) -> InjectedAnswers:
    # One GetObject answered as S3 answers the role for a missing version; moto says 404.
    return InjectedAnswers(processor.s3_client, "GetObject", [s3_access_denied()])


def test_a_deleted_version_answered_with_403_is_gone_and_not_retried(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = "uploads/report.csv"
    deleted = _upload(s3, key, b"first")
    _upload(s3, key, b"second")  # the key itself still exists, in another version
    _upload(s3, f"{key}.bak")  # a longer key with the same prefix
    s3.delete_object(Bucket=BUCKET, Key=key, VersionId=deleted)
    get = _gets_denied_as_s3_does(processor)
    listing = InjectedAnswers(processor.s3_client, "ListObjectVersions")
    event = s3_event(s3_record(key, version_id=deleted))

    counts = processor.lambda_handler(event, processor_context)  # does not raise: no retry

    assert counts["gone"] == 1 and counts["failed"] == 0
    assert get.sends == 1  # a 403 is not retried by botocore either
    assert listing.sends == 1
    assert not _has_result(s3, key)
    output = capsys.readouterr().out
    assert emf_metrics(output)["ObjectsGone"] == 1
    (gone,) = [line for line in log_messages(output) if "no longer exists" in line["message"]]
    assert gone["error_code"] == "AccessDenied" and gone["confirmed_by_listing"] is True
    # The outcome is remembered: a redelivery of the event reads and lists nothing.
    assert processor.lambda_handler(event, processor_context)["duplicate"] == 1
    assert (get.sends, listing.sends) == (1, 1)


def test_a_403_for_a_version_that_still_exists_fails_the_record_for_lambda_to_retry(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = "uploads/encrypted.csv"
    version = _upload(s3, key)
    _gets_denied_as_s3_does(processor)  # a real denial, e.g. by the KMS key's policy
    event = s3_event(s3_record(key, version_id=version))

    with pytest.raises(processor.RecordsFailedError):
        processor.lambda_handler(event, processor_context)

    output = capsys.readouterr().out
    assert "ObjectsGone" not in emf_metrics(output)
    (failure,) = [line for line in log_messages(output) if line["message"] == "Record failed"]
    assert "AccessDenied" in failure["exception"]
    assert not _has_result(s3, key)
    # Lambda's retry, once the denial is lifted, processes it: nothing was remembered.
    assert processor.lambda_handler(event, processor_context)["processed"] == 1


@pytest.mark.parametrize("still_there", [False, True], ids=["deleted", "present"])
def test_an_unversioned_record_is_checked_with_a_listing_of_the_key(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    still_there: bool,
) -> None:
    # A record without a version id (an unversioned bucket) is looked up by key alone.
    key = "uploads/plain.txt"
    _upload(s3, key)
    _upload(s3, f"{key}.v2")  # listed right after the key: must not count as the key
    if not still_there:
        s3.delete_object(Bucket=BUCKET, Key=key)
    _gets_denied_as_s3_does(processor)
    listing = InjectedAnswers(processor.s3_client, "ListObjectsV2")
    event = s3_event(s3_record(key, version_id=None, sequencer="0A"))

    if still_there:
        with pytest.raises(processor.RecordsFailedError):
            processor.lambda_handler(event, processor_context)
    else:
        assert processor.lambda_handler(event, processor_context)["gone"] == 1
    assert listing.sends == 1


@pytest.mark.parametrize("deleted", [False, True], ids=["present", "deleted"])
def test_the_version_search_pages_through_the_key_and_stops_at_the_next_key(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    deleted: bool,
) -> None:
    # Versions are listed newest first, so the oldest of five is on the third page of two.
    monkeypatch.setattr(processor, "VERSION_LISTING_PAGE_SIZE", 2)
    key = "uploads/busy.csv"
    oldest = _upload(s3, key, b"0")
    for index in range(1, 5):
        _upload(s3, key, str(index).encode())
    for suffix in ("a", "b", "c", "d", "e", "f"):
        _upload(s3, f"{key}.{suffix}")  # pages the search must not read
    if deleted:
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=oldest)
    _gets_denied_as_s3_does(processor)
    listing = InjectedAnswers(processor.s3_client, "ListObjectVersions")
    event = s3_event(s3_record(key, version_id=oldest))

    if deleted:
        assert processor.lambda_handler(event, processor_context)["gone"] == 1
    else:
        with pytest.raises(processor.RecordsFailedError):
            processor.lambda_handler(event, processor_context)
    # Pages: [v4, v3], [v2, v1], [v0 or busy.csv.a, ...]: the third settles it either way.
    assert listing.sends == 3


def test_a_denied_listing_fails_the_record_rather_than_calling_it_gone(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = "uploads/unknown.csv"
    version = _upload(s3, key)
    _gets_denied_as_s3_does(processor)
    InjectedAnswers(processor.s3_client, "ListObjectVersions", [s3_error(403, "AccessDenied")])

    with pytest.raises(processor.RecordsFailedError):
        processor.lambda_handler(s3_event(s3_record(key, version_id=version)), processor_context)

    assert "ObjectsGone" not in emf_metrics(capsys.readouterr().out)


def test_the_injected_answer_is_the_one_s3_sends(processor: ModuleType, s3: Any) -> None:
    # Guards the tests above: botocore must parse the injected body as it parses S3's.
    _gets_denied_as_s3_does(processor)
    with pytest.raises(ClientError) as raised:
        processor.s3_client.get_object(Bucket=BUCKET, Key="uploads/none.csv", VersionId="v")
    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"] == {"Code": "AccessDenied", "Message": "Access Denied"}
    assert response["ResponseMetadata"]["RequestId"] == "4442587FB7D0A2F9"
