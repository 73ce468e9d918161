"""The local S3-to-Lambda delivery names what S3 names: the version each upload created, and a
sequencer that orders the events of a key (see tooling.local.trigger.EventCompleter)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any
from urllib.parse import quote, unquote_plus

from shared.naming import UPLOAD_PREFIX
from tooling.api_client import call_api
from tooling.local.environment import LocalEnvironment
from tooling.local.trigger import DELETED_BEFORE_DELIVERY, AsyncInvoker, NotificationPoller

PROBE = "trigger-fidelity-probe"


def _recording_poller(
    env: LocalEnvironment, queue_url: str
) -> tuple[NotificationPoller, list[dict[str, Any]]]:
    """A poller (not started) whose function only records the events it is invoked with."""
    invoked: list[dict[str, Any]] = []
    invoker = AsyncInvoker(
        handler=lambda event, _context: invoked.append(event),
        context_factory=lambda _request_id: None,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:recorder",
        maximum_retry_attempts=0,
        send_to_dead_letter_queue=lambda _body: None,
    )
    return NotificationPoller(env.client("sqs"), env.client("s3"), queue_url, invoker), invoked


def _notified_bucket(env: LocalEnvironment) -> str:
    """A versioned bucket notifying a queue of its own, which nothing polls; returns its URL."""
    s3, sqs = env.client("s3"), env.client("sqs")
    s3.create_bucket(Bucket=PROBE)
    s3.put_bucket_versioning(Bucket=PROBE, VersioningConfiguration={"Status": "Enabled"})
    queue_url: str = sqs.create_queue(QueueName=PROBE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=PROBE,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return queue_url


def _queued_events(env: LocalEnvironment, queue_url: str, count: int) -> list[dict[str, Any]]:
    """The first `count` upload events on the queue, in queue order (the test event skipped)."""
    sqs = env.client("sqs")
    events: list[dict[str, Any]] = []
    while len(events) < count:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        assert messages, f"only {len(events)} of {count} events arrived"
        for message in messages:
            body = json.loads(message["Body"])
            if "Records" in body:
                events.append(body)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return events


def _objects(events: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The `s3.object` of every record of `key` (sent URL-encoded), in delivery order."""
    return [
        record["s3"]["object"]
        for event in events
        for record in event.get("Records", [])
        if unquote_plus(record["s3"]["object"]["key"]) == key
    ]


def test_uploads_made_before_delivery_each_name_the_version_they_created(
    env: LocalEnvironment,
) -> None:
    queue_url = _notified_bucket(env)
    s3 = env.client("s3")
    key, other = "uploads/twice.csv", "uploads/thrice.csv"
    # All uploads happen before any event is delivered, as when S3's delivery lags: naming the
    # key's current version at delivery time would name the last upload every time. The third
    # upload of `key` has the first one's content, so the same ETag.
    created = [
        s3.put_object(Bucket=PROBE, Key=key, Body=body)["VersionId"]
        for body in (b"one", b"two", b"one")
    ]
    kept, deleted, last = (
        s3.put_object(Bucket=PROBE, Key=other, Body=body)["VersionId"]
        for body in (b"a", b"b", b"c")
    )
    s3.delete_object(Bucket=PROBE, Key=other, VersionId=deleted)  # gone before delivery
    poller, invoked = _recording_poller(env, queue_url)

    for event in _queued_events(env, queue_url, 6):
        poller.deliver(event)

    delivered = _objects(invoked, key)
    assert [item["versionId"] for item in delivered] == created
    assert [item["versionId"] for item in _objects(invoked, other)] == [
        kept,
        DELETED_BEFORE_DELIVERY,
        last,
    ]
    # Sequencers grow with the events of a key, as strings of one length and as numbers.
    for objects in (delivered, _objects(invoked, other)):
        sequencers = [item["sequencer"] for item in objects]
        assert sequencers == sorted(sequencers) and len(set(sequencers)) == len(sequencers)
        assert len({len(sequencer) for sequencer in sequencers}) == 1
        assert [int(s, 16) for s in sequencers] == sorted(int(s, 16) for s in sequencers)

    # A redelivered event (it carries its sequencer) is handed over exactly as it was.
    again = copy.deepcopy(invoked[0])
    poller.deliver(copy.deepcopy(again))
    assert invoked[-1] == again


def test_two_quick_uploads_of_one_key_leave_the_newest_result(env: LocalEnvironment) -> None:
    s3 = env.client("s3")
    key = f"{UPLOAD_PREFIX}quick/twice.csv"
    bodies = (b"first upload\n", b"second upload, a moment later\n")
    created = [
        s3.put_object(Bucket=env.resources.bucket_name, Key=key, Body=body)["VersionId"]
        for body in bodies
    ]
    assert env.poller.wait_until_idle(60)

    delivered = _objects(env.poller.delivered_events, key)
    assert [item["versionId"] for item in delivered] == created
    response = call_api("GET", f"{env.api_url}/objects/{quote(key)}")
    assert response.status == 200
    result = response.json()["result"]
    assert result["versionId"] == created[1]
    assert result["sha256"] == hashlib.sha256(bodies[1]).hexdigest()
    assert result["sequencer"] == delivered[1]["sequencer"]
