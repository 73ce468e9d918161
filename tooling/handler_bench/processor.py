"""The S3 processor's throughput on small objects, and its requests per delivered event."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from shared.naming import UPLOAD_PREFIX
from tooling.function_fixtures import (
    NAMES,
    lambda_context,
    s3_event,
    s3_record,
)
from tooling.handler_bench.aws import client
from tooling.local.functions import LambdaContext

# Sequencers that grow with every event the benchmark makes, so the events of one key are in
# upload order (S3's are 18 hexadecimal digits).
_SEQUENCERS = itertools.count(0x0055AED6DCD9000000)


def upload_event(key: str, version_id: str, sequencer: str | None = None) -> dict[str, Any]:
    """The one-record notification S3 sends for this upload."""
    return s3_event(s3_record(key, version_id=version_id, sequencer=sequencer or next_sequencer()))


def next_sequencer() -> str:
    return f"{next(_SEQUENCERS):018X}"


class CallCounter:
    """Counts the HTTP sends of one client (retries included), by operation, through
    botocore's `before-send` event."""

    def __init__(self, aws_client: Any) -> None:
        self.sends: dict[str, int] = {}
        self._events = aws_client.meta.events
        self._event_name = f"before-send.{aws_client.meta.service_model.service_id.hyphenize()}"
        self._events.register(self._event_name, self)

    def unregister(self) -> None:
        self._events.unregister(self._event_name, self)

    def __call__(self, request: Any, **kwargs: Any) -> None:
        operation = str(kwargs.get("event_name", "")).rsplit(".", 1)[-1]
        self.sends[operation] = self.sends.get(operation, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.sends.values())


@dataclass(frozen=True)
class RoundTrips:
    """Requests per delivered event, by service, and S3's by operation."""

    s3: float
    s3_operations: dict[str, float]
    dynamodb: float


@dataclass(frozen=True)
class Throughput:
    objects: int
    objects_per_second: float
    ms_per_object: float
    first_version: RoundTrips
    duplicate: RoundTrips
    new_version: RoundTrips
    late_older_version: RoundTrips


def _round_trips(
    processor: ModuleType, events: list[dict[str, Any]], context: LambdaContext
) -> RoundTrips:
    """Deliver `events` one by one and count the processor's requests per event."""
    s3_calls = CallCounter(processor.s3_client)
    dynamodb_calls = CallCounter(processor.persistence_store.client)
    try:
        for event in events:
            processor.lambda_handler(event, context)
    finally:
        s3_calls.unregister()
        dynamodb_calls.unregister()
    count = len(events)
    return RoundTrips(
        s3=s3_calls.total / count,
        s3_operations={name: sends / count for name, sends in sorted(s3_calls.sends.items())},
        dynamodb=dynamodb_calls.total / count,
    )


def throughput(processor: ModuleType, count: int, size: int) -> Throughput:
    """Process `count` fresh objects of `size` bytes (one more to warm up), deliver each event
    again, then two later versions of each key, the newest first; count requests throughout."""
    s3 = client("s3")
    body = os.urandom(size)
    keys = [f"{UPLOAD_PREFIX}bench/small {index:05d}.csv" for index in range(count + 1)]
    events = []
    for key in keys:
        version = s3.put_object(Bucket=NAMES.upload_bucket, Key=key, Body=body)["VersionId"]
        events.append(upload_event(key, version))
    context = lambda_context(NAMES.s3_processor_function)
    # One warm-up object outside the count: first use of each client loads its models.
    processor.lambda_handler(events[0], context)
    start = time.perf_counter()
    first_version = _round_trips(processor, events[1:], context)
    elapsed = time.perf_counter() - start
    # At-least-once delivery: every event again.
    duplicate = _round_trips(processor, events[1:], context)
    # Two more versions of each key; the newest is delivered before the one between.
    between: list[tuple[str, str, str]] = []
    newest: list[tuple[str, str, str]] = []
    for key in keys[1:]:
        for later in (between, newest):
            version = s3.put_object(Bucket=NAMES.upload_bucket, Key=key, Body=body)
            later.append((key, version["VersionId"], next_sequencer()))
    new_version = _round_trips(processor, [upload_event(*item) for item in newest], context)
    late = _round_trips(processor, [upload_event(*item) for item in between], context)
    return Throughput(
        objects=count,
        objects_per_second=count / elapsed,
        ms_per_object=elapsed / count * 1000,
        first_version=first_version,
        duplicate=duplicate,
        new_version=new_version,
        late_older_version=late,
    )
