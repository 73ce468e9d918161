"""Delivers the bucket's upload events to the processor with Lambda's asynchronous semantics.

In AWS, S3 invokes the processor's alias asynchronously: Lambda retries a failed invocation
(`maximum_retry_attempts` more times, with backoff), then sends an invocation record to the
on-failure destination, the dead-letter queue. Here S3 notifies a queue instead (moto cannot
invoke Lambda); this poller takes each event from it and does what Lambda would: invoke the
handler in-process, retry, and finally write the same invocation record Lambda writes to the
dead-letter queue. The retry delays are shortened (Lambda waits about 1 and 2 minutes).

moto's notifications leave out two fields S3 always sends, which the processor relies on for
idempotency and ordering: `versionId` and `sequencer` (see `EventCompleter`, which adds them as
S3 would).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

ProcessorHandler = Callable[[dict[str, Any], Any], Any]

POLL_WAIT_SECONDS = 1


@dataclass
class DeliveryStats:
    """What the poller did; read by the smoke run and the tests."""

    delivered: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0
    test_events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


@dataclass(frozen=True)
class AsyncInvoker:
    """Lambda's asynchronous invocation of one function, in-process."""

    handler: ProcessorHandler
    context_factory: Callable[[str], Any]
    function_arn: str
    maximum_retry_attempts: int
    send_to_dead_letter_queue: Callable[[str], None]
    retry_delay_seconds: float = 0.2

    def invoke(self, event: dict[str, Any], stats: DeliveryStats) -> bool:
        """True when an attempt succeeded; False when the event was dead-lettered."""
        attempts = 1 + self.maximum_retry_attempts
        request_id = str(uuid.uuid4())
        error: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                self.handler(event, self.context_factory(request_id))
            except Exception as failure:
                error = failure
                stats.add(failed_attempts=1)
                if attempt < attempts:
                    time.sleep(self.retry_delay_seconds * attempt)
                continue
            stats.add(delivered=1)
            return True
        assert error is not None
        self.send_to_dead_letter_queue(
            json.dumps(self._invocation_record(event, request_id, attempts, error))
        )
        stats.add(dead_lettered=1)
        return False

    def _invocation_record(
        self, event: dict[str, Any], request_id: str, attempts: int, error: BaseException
    ) -> dict[str, Any]:
        """The record Lambda sends to an on-failure destination after the last retry."""
        return {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "requestContext": {
                "requestId": request_id,
                "functionArn": self.function_arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_exception(error)[-3:],
            },
        }


# A version id no version has: what an event names when the version its upload created was
# permanently deleted before the event was delivered (see EventCompleter).
DELETED_BEFORE_DELIVERY = "deleted-before-delivery"


class EventCompleter:
    """Adds to moto's ObjectCreated records the `versionId` and `sequencer` S3 would have sent.

    What S3 sends (S3 event message structure,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html):
    `versionId`, the version the event's request created ("object version if bucket is
    versioning-enabled, otherwise null"), and `sequencer`, a hexadecimal string by which the
    events of one key are ordered (the rule is quoted where the processor compares them,
    `compare_sequencers` in lambdas/s3_processor/handler.py).

    How it is imitated: moto sends each notification synchronously inside the request that
    creates the version (PutObject, POST, CopyObject, CompleteMultipartUpload), so the queue
    holds the events of one key in the order their versions were created. The n-th ObjectCreated
    event of a key therefore names the oldest version of that key not yet named by an earlier
    event whose ETag is the event's `eTag` (moto sends the right one), and gets a sequencer that
    grows with n. Versions come from ListObjectVersions at delivery time; S3 lists the versions
    of a key newest first.

    Limits: moto's server cannot list a bucket holding a key with a character XML 1.0 cannot
    carry (it answers 500 for NUL, and turns a CR into a LF), where S3 lists it URL-encoded
    (EncodingType=url, which botocore asks for); for such a key the current version, from
    HeadObject, is named instead, which is right unless the key changed again before delivery.
    A version permanently deleted before its event is delivered can no longer be listed:
    its event names `DELETED_BEFORE_DELIVERY` (S3 would name the deleted version; either way the
    processor finds it gone). If a deleted version had the same ETag as a later one of the key,
    the later one is named in its place. State is per poller: events already delivered before it
    started (none, in a fresh environment) are not counted. An event that already carries a
    sequencer (a redelivery) is left exactly as it is.
    """

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self._lock = threading.Lock()
        self._events_seen: dict[tuple[str, str], int] = {}
        self._named: dict[tuple[str, str], set[str]] = {}

    def complete(self, record: dict[str, Any]) -> None:
        s3_object = record.get("s3", {}).get("object", {})
        if "sequencer" in s3_object or not str(record.get("eventName", "")).startswith(
            "ObjectCreated:"
        ):
            return
        key = (record["s3"]["bucket"]["name"], unquote_plus(s3_object["key"]))
        with self._lock:
            position = self._events_seen.get(key, 0) + 1
            self._events_seen[key] = position
            # Fixed width (S3's are 18 digits), so that the sequencers of one key also grow as
            # strings, whatever rule compares sequencers of different lengths.
            s3_object["sequencer"] = f"{position:018X}"
            version_id = self._version_created(key, str(s3_object.get("eTag", "")))
            if version_id is not None:
                s3_object["versionId"] = version_id

    def _version_created(self, key: tuple[str, str], etag: str) -> str | None:
        """The oldest version of the key not yet named whose ETag is the event's (None for a
        version written without versioning)."""
        bucket, name = key
        named = self._named.setdefault(key, set())
        versions: list[dict[str, Any]] = []
        try:
            pages = self.s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=name
            )
            for page in pages:
                versions.extend(item for item in page.get("Versions", []) if item["Key"] == name)
        except ClientError:
            return self._current_version(bucket, name, etag)
        if not versions and not name.isprintable():
            # moto listed it under another name (a CR turned into a LF): ask for the object.
            return self._current_version(bucket, name, etag)
        unversioned = False
        for item in reversed(versions):  # oldest first
            version_id = str(item["VersionId"])
            if item["ETag"].strip('"') != etag or version_id in named:
                continue
            if version_id == "null":
                # Written while versioning was off: the next such upload replaces it in place,
                # and S3's event names no version.
                unversioned = True
                continue
            named.add(version_id)
            return version_id
        return None if unversioned else DELETED_BEFORE_DELIVERY

    def _current_version(self, bucket: str, name: str, etag: str) -> str | None:
        """The key's current version, for a key moto cannot list (see the class's limits)."""
        try:
            head = self.s3.head_object(Bucket=bucket, Key=name)
        except ClientError:
            return DELETED_BEFORE_DELIVERY
        if head["ETag"].strip('"') != etag:
            return DELETED_BEFORE_DELIVERY
        version_id = head.get("VersionId")
        return None if version_id in (None, "null") else str(version_id)


class NotificationPoller:
    """Takes S3 notifications off the local queue and hands them to the invoker."""

    def __init__(self, sqs: Any, s3: Any, queue_url: str, invoker: AsyncInvoker) -> None:
        self.sqs = sqs
        self.s3 = s3
        self.queue_url = queue_url
        self.invoker = invoker
        self.completer = EventCompleter(s3)
        self.delivered_events: list[dict[str, Any]] = []
        self.stats = DeliveryStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-s3-trigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=POLL_WAIT_SECONDS
            )
            for message in response.get("Messages", []):
                self.deliver(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def deliver(self, event: dict[str, Any]) -> None:
        if event.get("Event") == "s3:TestEvent":
            # S3 sends one when the notification is configured; S3 would invoke the function
            # with it too, and the processor ignores it. Counting it keeps the stats honest.
            self.stats.add(test_events=1)
        for record in event.get("Records", []):
            self.completer.complete(record)
        self.delivered_events.append(event)
        self.invoker.invoke(event, self.stats)

    def wait_until_idle(self, timeout_seconds: float) -> bool:
        """True once the queue is empty and no message is in flight, within the timeout."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if all(int(value) == 0 for value in attributes.values()):
                return True
            self._stop.wait(0.1)
        return False
