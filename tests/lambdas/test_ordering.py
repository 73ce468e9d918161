"""Out-of-order and concurrent events of one key: the result always describes the newest version.

S3 does not order notifications and Lambda's retries reorder them further; several execution
environments may process events of one key at the same time. Each invocation here that stands for
an execution environment is a fresh import of the handler, as Lambda's are separate processes.
"""

from __future__ import annotations

import hashlib
import json
import queue
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import pytest

from tests.lambdas.support import (
    NAMES,
    AtomicRequests,
    FunctionLoader,
    InjectedAnswers,
    emf_metrics,
    log_messages,
    s3_conditional_conflict,
    s3_event,
    s3_record,
)
from tooling.function_fixtures import processor_environment
from tooling.local.functions import LambdaContext

BUCKET = NAMES.upload_bucket
KEY = "uploads/ledger.csv"
RESULT_KEY = f"results/{KEY}.json"


def _sequencer(position: int) -> str:
    # The shape of S3's sequencers (18 hexadecimal digits), growing with the event's position.
    return f"0055AED6DCD9{position:06X}"


def _upload_versions(s3: Any, count: int) -> list[tuple[str, bytes]]:
    """`count` versions of KEY, oldest first, each with its own body."""
    versions = []
    for index in range(count):
        body = f"version {index}\n".encode() * (index + 1)
        versions.append((s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)["VersionId"], body))
    return versions


def _event(versions: list[tuple[str, bytes]], index: int) -> dict[str, Any]:
    return s3_event(s3_record(KEY, version_id=versions[index][0], sequencer=_sequencer(index)))


def _result(s3: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        s3.get_object(Bucket=BUCKET, Key=RESULT_KEY)["Body"].read()
    )
    return document


def _describes(result: dict[str, Any], versions: list[tuple[str, bytes]], index: int) -> bool:
    version_id, body = versions[index]
    return (result["versionId"], result["sequencer"], result["sha256"]) == (
        version_id,
        _sequencer(index),
        hashlib.sha256(body).hexdigest(),
    )


def _result_versions(s3: Any) -> int:
    return len(s3.list_object_versions(Bucket=BUCKET, Prefix=RESULT_KEY).get("Versions", []))


# The comparison S3 documents


@pytest.mark.parametrize(
    ("first", "second", "order"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6", -1),
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5", 1),
        ("0055AED6DCD90281E5", "0055aed6dcd90281e5", 0),  # case carries no meaning
        # Different lengths: the shorter is right-padded with zeros, so the digits that lead
        # are compared first and a longer sequencer is not later for being longer.
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5FF", 1),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E501", -1),
        ("0A", "0A00", 0),
        ("F", "10", 1),
    ],
)
def test_sequencers_compare_as_s3_documents(
    processor: ModuleType, first: str, second: str, order: int
) -> None:
    assert processor.compare_sequencers(first, second) == order
    assert processor.compare_sequencers(second, first) == -order


@pytest.mark.parametrize("text", ["", "0x1A", "1_0", " 0A", "0A\n", "G1", "٣"])
def test_only_hexadecimal_digits_make_a_sequencer(processor: ModuleType, text: str) -> None:
    assert not processor.is_sequencer(text)


# One invocation at a time


def test_an_older_version_delivered_after_a_newer_one_leaves_the_newer_result(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    versions = _upload_versions(s3, 2)

    newer = processor.lambda_handler(_event(versions, 1), processor_context)
    older = processor.lambda_handler(_event(versions, 0), processor_context)

    assert (newer["processed"], older["superseded"]) == (1, 1)
    assert _describes(_result(s3), versions, 1)
    assert _result_versions(s3) == 1  # the older event wrote nothing
    output = capsys.readouterr().out
    assert emf_metrics(output)["ObjectsSuperseded"] == 1
    assert emf_metrics(output)["ObjectsProcessed"] == 1
    (line,) = [m for m in log_messages(output) if "already has its result" in m["message"]]
    assert line["sequencer"] == _sequencer(0)
    # Lambda retries the older event: a duplicate, and still nothing written.
    assert processor.lambda_handler(_event(versions, 0), processor_context)["duplicate"] == 1
    assert _result_versions(s3) == 1


def test_versions_delivered_in_order_each_replace_the_result(
    processor: ModuleType, processor_context: LambdaContext, s3: Any
) -> None:
    versions = _upload_versions(s3, 3)
    for index in range(3):
        assert processor.lambda_handler(_event(versions, index), processor_context)["processed"]
        assert _describes(_result(s3), versions, index)
    assert _result_versions(s3) == 3


def test_a_redelivery_whose_idempotency_record_expired_writes_nothing(
    processor: ModuleType, processor_context: LambdaContext, s3: Any, dynamodb: Any
) -> None:
    # The same event again after its idempotency record expired (or was lost between the
    # result's write and the record's): the result already describes this very event.
    versions = _upload_versions(s3, 1)
    processor.lambda_handler(_event(versions, 0), processor_context)
    for item in dynamodb.scan(TableName=NAMES.idempotency_table)["Items"]:
        dynamodb.delete_item(TableName=NAMES.idempotency_table, Key={"id": item["id"]})

    again = processor.lambda_handler(_event(versions, 0), processor_context)

    assert again["superseded"] == 1
    assert _result_versions(s3) == 1


@pytest.mark.parametrize("sequencer", [None, "", "0x1A", "not hex"], ids=repr)
def test_a_record_without_a_valid_sequencer_fails_and_writes_nothing(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
    sequencer: str | None,
) -> None:
    # S3 sends a sequencer with every ObjectCreated event; without one the record cannot be
    # ordered, so it must not overwrite anything: it fails, Lambda retries, the DLQ keeps it.
    newest = _upload_versions(s3, 2)
    processor.lambda_handler(_event(newest, 1), processor_context)
    record = s3_record(KEY, version_id=newest[0][0], sequencer=sequencer)

    with pytest.raises(processor.RecordsFailedError):
        processor.lambda_handler(s3_event(record), processor_context)

    assert _describes(_result(s3), newest, 1)
    assert _result_versions(s3) == 1
    (failure,) = [
        m for m in log_messages(capsys.readouterr().out) if m["message"] == "Record failed"
    ]
    assert "InvalidRecordError" in failure["exception"]


def test_a_record_without_a_sequencer_outside_the_upload_prefix_is_still_ignored(
    processor: ModuleType, processor_context: LambdaContext
) -> None:
    record = s3_record("elsewhere/x.csv", sequencer=None)
    assert processor.lambda_handler(s3_event(record), processor_context)["ignored"] == 1


def test_a_result_written_before_sequencers_were_recorded_is_replaced(
    processor: ModuleType, processor_context: LambdaContext, s3: Any
) -> None:
    # Results from before this change carry no sequencer metadata: any event may replace them.
    versions = _upload_versions(s3, 1)
    s3.put_object(Bucket=BUCKET, Key=RESULT_KEY, Body=b'{"sequencer": null}')

    assert processor.lambda_handler(_event(versions, 0), processor_context)["processed"] == 1
    assert _describes(_result(s3), versions, 0)


def test_a_conflicting_conditional_write_is_read_again_and_retried(
    processor: ModuleType, processor_context: LambdaContext, s3: Any
) -> None:
    versions = _upload_versions(s3, 2)
    processor.lambda_handler(_event(versions, 0), processor_context)
    # Another conditional write of the result is in progress: S3 answers 409 to our create-only
    # write and, after our re-read, to our If-Match write; the third try goes through.
    conflict = s3_conditional_conflict()
    puts = InjectedAnswers(processor.s3_client, "PutObject", [conflict, conflict])

    counts = processor.lambda_handler(_event(versions, 1), processor_context)

    assert counts["processed"] == 1
    assert _describes(_result(s3), versions, 1)
    # 409 (create), 409 (If-Match), 412 (create, the result exists), 200 (If-Match): botocore
    # does not retry a 409 itself (it would have sent more); the processor reads again instead.
    assert puts.sends == 4


def test_a_result_that_keeps_changing_fails_the_record_after_bounded_attempts(
    processor: ModuleType,
    processor_context: LambdaContext,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    versions = _upload_versions(s3, 1)
    attempts = processor.RESULT_WRITE_ATTEMPTS
    puts = InjectedAnswers(
        processor.s3_client, "PutObject", [s3_conditional_conflict()] * (attempts + 1)
    )

    with pytest.raises(processor.RecordsFailedError):
        processor.lambda_handler(_event(versions, 0), processor_context)

    assert puts.sends == attempts  # one create-only try per attempt: nothing exists to replace
    (failure,) = [
        m for m in log_messages(capsys.readouterr().out) if m["message"] == "Record failed"
    ]
    assert "ResultWriteConflictError" in failure["exception"]
    # Lambda's retry, once the writes settle, processes it: nothing was remembered.
    puts.answers.clear()
    assert processor.lambda_handler(_event(versions, 0), processor_context)["processed"] == 1


# Several execution environments at once


@pytest.fixture
def environments(
    bucket: str, table: str, loader: FunctionLoader, monkeypatch: pytest.MonkeyPatch
) -> Callable[[int], list[ModuleType]]:
    """`count` execution environments of the processor whose S3 requests interleave as S3's do
    (see AtomicRequests: moto's conditional writes are not atomic)."""
    lock = threading.Lock()

    def make(count: int) -> list[ModuleType]:
        modules = [
            loader.load_with("s3_processor", processor_environment(), monkeypatch)
            for _ in range(count)
        ]
        for module in modules:
            monkeypatch.setattr(module, "s3_client", AtomicRequests(module.s3_client, lock))
        return modules

    return make


def test_a_newer_result_written_between_our_read_and_our_write_is_kept(
    environments: Callable[[int], list[ModuleType]],
    processor_context: LambdaContext,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, theirs = environments(2)
    versions = _upload_versions(s3, 3)
    ours.lambda_handler(_event(versions, 0), processor_context)  # the result of version 0
    puts = InjectedAnswers(ours.s3_client.client, "PutObject")

    # Right after our HeadObject has read version 0's result (and found our event, version 1,
    # later), another environment writes version 2's result: the If-Match of our PutObject
    # names version 0's result, so S3 refuses it (412), and our re-read finds version 2's.
    competing: list[dict[str, int]] = []
    atomic = ours.s3_client

    class NewerWriteAfterHead:
        def __getattr__(self, name: str) -> Any:
            return getattr(atomic, name)

        def head_object(self, **request: Any) -> Any:
            response = atomic.head_object(**request)
            if not competing:
                competing.append(theirs.lambda_handler(_event(versions, 2), processor_context))
            return response

    monkeypatch.setattr(ours, "s3_client", NewerWriteAfterHead())

    counts = ours.lambda_handler(_event(versions, 1), processor_context)

    assert competing == [{**competing[0], "processed": 1}]
    assert counts["superseded"] == 1
    assert _describes(_result(s3), versions, 2)
    # Create-only (412), If-Match (412), create-only again (412); then the re-read settles it.
    assert puts.sends == 3
    assert _result_versions(s3) == 2  # version 0's result, then version 2's: nothing else


def test_many_versions_delivered_at_once_in_random_order_leave_the_newest(
    environments: Callable[[int], list[ModuleType]],
    processor_context: LambdaContext,
    s3: Any,
) -> None:
    count, workers = 12, 4
    versions = _upload_versions(s3, count)
    pool: queue.Queue[ModuleType] = queue.Queue()
    for module in environments(workers):
        pool.put(module)
    order = list(range(count))
    random.Random(9).shuffle(order)  # noqa: S311 (a fixed, reproducible delivery order)
    assert order[-1] != count - 1  # the newest is not simply the last one delivered

    def deliver(index: int) -> dict[str, int]:
        """Lambda's asynchronous invocation: an idle environment, up to two retries."""
        for _attempt in range(3):
            module = pool.get()
            try:
                result: dict[str, int] = module.lambda_handler(
                    _event(versions, index), processor_context
                )
                return result
            except module.RecordsFailedError:
                continue
            finally:
                pool.put(module)
        raise AssertionError(f"version {index} would have been dead-lettered")

    with ThreadPoolExecutor(max_workers=workers) as executor:
        outcomes = list(executor.map(deliver, order))

    assert _describes(_result(s3), versions, count - 1)
    totals = {name: sum(outcome[name] for outcome in outcomes) for name in outcomes[0]}
    assert totals["processed"] + totals["superseded"] == count
    assert totals["processed"] >= 1
