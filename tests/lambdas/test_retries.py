"""Transient AWS faults are retried by botocore's standard retry mode; permanent ones fail at
once and cleanly. Faults are injected after botocore's pipeline (see InjectedAnswers)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import botocore.retries.standard  # type: ignore[import-untyped, unused-ignore]
import pytest
from botocore.exceptions import ConnectionClosedError  # type: ignore[import-untyped, unused-ignore]

from tests.lambdas.support import (
    NAMES,
    Answer,
    InjectedAnswers,
    api_event,
    json_error,
    s3_error,
    s3_event,
    s3_record,
)
from tooling.local.functions import LambdaContext


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Records each backoff botocore's standard mode computes, and skips the wait itself."""
    delays: list[float] = []
    original = botocore.retries.standard.ExponentialBackoff.delay_amount

    def no_wait(self: Any, context: Any) -> float:
        delays.append(original(self, context))
        return 0.0

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", no_wait)
    return delays


def _upload(s3: Any, key: str, body: bytes = b"data") -> dict[str, Any]:
    version = s3.put_object(Bucket=NAMES.upload_bucket, Key=key, Body=body)["VersionId"]
    return s3_record(key, version_id=version)


def _has_result(s3: Any, key: str) -> bool:
    listing = s3.list_objects_v2(Bucket=NAMES.upload_bucket, Prefix=f"results/{key}.json")
    return "Contents" in listing


def test_processor_rides_out_throttling_5xx_and_connection_errors(
    processor: ModuleType, processor_context: LambdaContext, s3: Any, backoffs: list[float]
) -> None:
    record = _upload(s3, "uploads/flaky.csv")
    get = InjectedAnswers(
        processor.s3_client, "GetObject", [s3_error(503, "SlowDown"), s3_error(503, "SlowDown")]
    )
    put = InjectedAnswers(processor.s3_client, "PutObject", [s3_error(500, "InternalError")])
    dynamodb = processor.persistence_store.client
    put_item = InjectedAnswers(
        dynamodb,
        "PutItem",
        [
            json_error(400, "ThrottlingException"),
            json_error(400, "ProvisionedThroughputExceededException"),
        ],
    )
    update_item = InjectedAnswers(
        dynamodb,
        "UpdateItem",
        [Answer(raise_error=ConnectionClosedError(endpoint_url="https://dynamodb"))],
    )

    counts = processor.lambda_handler(s3_event(record), processor_context)

    assert counts["processed"] == 1
    assert (get.sends, put.sends, put_item.sends, update_item.sends) == (3, 2, 3, 2)
    assert len(backoffs) == 6  # one computed backoff per retry, all by botocore
    assert _has_result(s3, "uploads/flaky.csv")


def test_processor_gives_up_after_the_configured_attempts(
    processor: ModuleType, processor_context: LambdaContext, s3: Any, backoffs: list[float]
) -> None:
    record = _upload(s3, "uploads/down.csv")
    get = InjectedAnswers(processor.s3_client, "GetObject", [s3_error(503, "SlowDown")] * 10)

    with pytest.raises(processor.RecordsFailedError):
        processor.lambda_handler(s3_event(record), processor_context)

    assert get.sends == 5  # total_max_attempts
    assert not _has_result(s3, "uploads/down.csv")


def test_processor_fails_a_permanent_error_at_once_and_keeps_going(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    backoffs: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    denied = _upload(s3, "uploads/denied.csv")
    fine = _upload(s3, "uploads/fine.csv")
    get = InjectedAnswers(processor.s3_client, "GetObject", [s3_error(403, "AccessDenied")])

    with pytest.raises(processor.RecordsFailedError, match="1 of 2 record"):
        processor.lambda_handler(s3_event(denied, fine), processor_context)

    assert get.sends == 2  # the denied GET once, not retried; then the next record's GET
    assert backoffs == []
    assert not _has_result(s3, "uploads/denied.csv")
    assert _has_result(s3, "uploads/fine.csv")
    failure = [line for line in capsys.readouterr().out.splitlines() if "Record failed" in line]
    assert len(failure) == 1 and "AccessDenied" in json.loads(failure[0])["exception"]


def _process_event() -> dict[str, Any]:
    return api_event(
        "POST",
        "/process",
        body='{"name":"x","data":{}}',
        headers={"Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "fault",
    [json_error(500, "InternalServiceError"), json_error(400, "ThrottlingException")],
    ids=["5xx", "throttling"],
)
def test_api_retries_a_transient_secrets_manager_fault(
    api: ModuleType, api_context: LambdaContext, backoffs: list[float], fault: Answer
) -> None:
    get_secret = InjectedAnswers(api.secrets_provider().client, "GetSecretValue", [fault, fault])

    response = api.lambda_handler(_process_event(), api_context)

    assert response["statusCode"] == 200
    assert get_secret.sends == 3
    assert len(backoffs) == 2


def test_api_answers_a_permanent_secrets_manager_error_with_a_generic_500(
    api: ModuleType, api_context: LambdaContext, backoffs: list[float]
) -> None:
    get_secret = InjectedAnswers(
        api.secrets_provider().client, "GetSecretValue", [json_error(400, "AccessDeniedException")]
    )

    response = api.lambda_handler(_process_event(), api_context)

    assert response["statusCode"] == 500
    assert "AccessDenied" not in response["body"]
    assert json.loads(response["body"])["message"] == "internal server error"
    assert get_secret.sends == 1
    assert backoffs == []


def _objects_event(key: str) -> dict[str, Any]:
    return api_event("GET", f"/objects/{key}", path_parameters={"key": key})


def test_api_retries_a_throttled_result_read(
    api: ModuleType, api_context: LambdaContext, s3: Any, backoffs: list[float]
) -> None:
    s3.put_object(Bucket=NAMES.upload_bucket, Key="results/uploads/r.csv.json", Body=b'{"size": 1}')
    get = InjectedAnswers(api.s3_client(), "GetObject", [s3_error(503, "SlowDown")] * 2)

    response = api.lambda_handler(_objects_event("uploads/r.csv"), api_context)

    assert response["statusCode"] == 200
    assert get.sends == 3


def test_api_gives_up_after_its_attempts_with_a_generic_500(
    api: ModuleType, api_context: LambdaContext, backoffs: list[float]
) -> None:
    get = InjectedAnswers(api.s3_client(), "GetObject", [s3_error(503, "SlowDown")] * 10)

    response = api.lambda_handler(_objects_event("uploads/r.csv"), api_context)

    assert response["statusCode"] == 500
    assert "SlowDown" not in response["body"]
    assert get.sends == 3  # the API's total_max_attempts, well inside API Gateway's 29 s


def test_api_tells_a_missing_result_from_a_denial_when_s3_answers_403(
    api: ModuleType, api_context: LambdaContext, backoffs: list[float]
) -> None:
    # Real S3 answers 403 for a missing key unless it sees s3:ListBucket for the request.
    InjectedAnswers(api.s3_client(), "GetObject", [s3_error(403, "AccessDenied")])
    listing = InjectedAnswers(api.s3_client(), "ListObjectsV2")

    response = api.lambda_handler(_objects_event("uploads/none.csv"), api_context)

    assert response["statusCode"] == 404
    assert listing.sends == 1


def test_api_reports_a_real_denial_as_a_generic_500(
    api: ModuleType, api_context: LambdaContext, backoffs: list[float]
) -> None:
    InjectedAnswers(api.s3_client(), "GetObject", [s3_error(403, "AccessDenied")])
    InjectedAnswers(api.s3_client(), "ListObjectsV2", [s3_error(403, "AccessDenied")])

    response = api.lambda_handler(_objects_event("uploads/none.csv"), api_context)

    assert response["statusCode"] == 500
    assert "AccessDenied" not in response["body"]
