"""Delivers the bucket's upload events to the processor with Lambda's asynchronous semantics.

In AWS, S3 invokes the processor's alias asynchronously: Lambda retries a failed invocation
(`maximum_retry_attempts` more times, with backoff), then sends an invocation record to the
on-failure destination, the dead-letter queue. Here S3 notifies a queue instead (moto cannot
invoke Lambda); this poller takes each event from it and does what Lambda would: invoke the
handler in-process, retry, and finally write the same invocation record Lambda writes to the
dead-letter queue. The retry delays are shortened (Lambda waits about 1 and 2 minutes).

moto's notifications leave out two fields S3 always sends and the processor relies on for
idempotency: the object's `versionId` (versioned buckets) and the `sequencer`. The poller adds
them as S3 would (the version S3 reports for the key, a sequencer that grows with each event)
before the processor sees the event.
"""

from __future__ import annotations

import itertools
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


class NotificationPoller:
    """Takes S3 notifications off the local queue and hands them to the invoker."""

    def __init__(self, sqs: Any, s3: Any, queue_url: str, invoker: AsyncInvoker) -> None:
        self.sqs = sqs
        self.s3 = s3
        self.queue_url = queue_url
        self.invoker = invoker
        self._sequence = itertools.count(time.time_ns())
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
            self._complete(record)
        self.delivered_events.append(event)
        self.invoker.invoke(event, self.stats)

    def _complete(self, record: dict[str, Any]) -> None:
        s3_object = record.get("s3", {}).get("object", {})
        if "sequencer" not in s3_object:
            s3_object["sequencer"] = f"{next(self._sequence):020X}"
        if "versionId" not in s3_object:
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(s3_object["key"])
            try:
                head = self.s3.head_object(Bucket=bucket, Key=key)
            except self.s3.exceptions.ClientError:
                return  # deleted since: the processor handles an object that is gone
            if head.get("VersionId"):
                s3_object["versionId"] = head["VersionId"]

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
