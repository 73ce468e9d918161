"""The running local environment over real HTTP and real boto3 calls."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from shared.manifest import MANIFEST
from shared.naming import UPLOAD_PREFIX
from tooling.api_client import call_api
from tooling.checklist import Verdict
from tooling.local.environment import LocalEnvironment
from tooling.local.provision import _create_table
from tooling.verify.journey import run_verify


def _result(env: LocalEnvironment, key: str) -> dict[str, Any]:
    # Every reserved character escaped, `/` included: the encoding a client should use.
    response = call_api("GET", f"{env.api_url}/objects/{quote(key, safe='')}")
    assert response.status == 200, (key, response.status, response.body[:200])
    result: dict[str, Any] = response.json()["result"]
    return result


def test_resources_have_the_names_and_settings_the_layer_programs_declare(
    env: LocalEnvironment,
) -> None:
    runs = env.resources.synthesized
    storage, security, compute = runs["storage"], runs["security"], runs["compute"]
    s3, dynamodb, sqs = env.client("s3"), env.client("dynamodb"), env.client("sqs")
    bucket = storage.exports["s3_bucket_name"].value
    assert env.resources.bucket_name == bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == env.resources.kms_key_arn
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())

    table_inputs = storage.named("idempotency-table").inputs
    table = dynamodb.describe_table(TableName=storage.exports["idempotency_table_name"].value)[
        "Table"
    ]
    assert table["KeySchema"] == [{"AttributeName": table_inputs["hashKey"], "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == table_inputs["billingMode"]
    ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == table_inputs["ttl"]["attributeName"]

    queue_url = sqs.get_queue_url(QueueName=storage.exports["dead_letter_queue_name"].value)[
        "QueueUrl"
    ]
    retention = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["MessageRetentionPeriod"]
    )
    assert (
        int(retention["Attributes"]["MessageRetentionPeriod"])
        == storage.named("dead-letter-queue").inputs["messageRetentionSeconds"]
    )
    assert (
        env.resources.async_invoke.dead_letter_queue_arn
        == storage.exports["dead_letter_queue_arn"].value
    )

    secret = env.client("secretsmanager").describe_secret(SecretId=env.resources.secret_arn)
    assert secret["Name"] == security.exports["secret_name"].value
    declared = compute.named("s3-processor").inputs["environment"]["variables"]
    assert env.resources.processor_environment == {k: str(v) for k, v in declared.items()}
    api_env = env.resources.api_environment
    assert api_env["SECRET_ARN"] == env.resources.secret_arn
    assert env.resources.upload_prefix == UPLOAD_PREFIX


def test_the_verify_journey_passes_on_the_local_environment(env: LocalEnvironment) -> None:
    checklist = run_verify(env.deployment(), timeout_s=30, poll_s=0.1)
    verdicts = {check.name: check.verdict for check in checklist.checks}
    assert verdicts == {
        "GET /health": Verdict.PASS,
        "protected route, unsigned": Verdict.PASS,
        "POST /process, signed": Verdict.PASS,
        "malformed body": Verdict.PASS,
        "upload processed": Verdict.PASS,
        "dead-letter queue": Verdict.PASS,
        "alarms": Verdict.PASS,
        # The local topic has no subscriber (alarm_emails is empty by default).
        "alarm subscription": Verdict.WARN,
        "secret rotation": Verdict.PASS,
        "WAF on the stage": Verdict.SKIP,
        "clean up": Verdict.PASS,
    }, [(c.name, c.detail) for c in checklist.checks]
    # Nothing the journey wrote is left behind.
    listed = env.client("s3").list_object_versions(
        Bucket=env.resources.bucket_name, Prefix=f"{UPLOAD_PREFIX}verify/"
    )
    assert not listed.get("Versions") and not listed.get("DeleteMarkers")


def test_the_local_outputs_are_the_manifests_keys_with_local_endpoints(
    env: LocalEnvironment,
) -> None:
    outputs = env.outputs()
    for layer in MANIFEST.layers:
        assert set(outputs[layer.name]) == set(layer.outputs), layer.name
    assert outputs["api"]["health_check_url"] == f"{env.api_url}/health"
    assert outputs["api"]["objects_endpoint_url"] == f"{env.api_url}/objects/"
    assert outputs["storage"]["dead_letter_queue_url"] == env.resources.dead_letter_queue_url
    assert outputs["security"]["secrets_manager_arn"] == env.resources.secret_arn
    topics = env.client("sns").list_topics()["Topics"]
    assert {"TopicArn": outputs["observability"]["sns_topic_arn"]} in topics


def test_a_redelivered_event_is_processed_once(env: LocalEnvironment) -> None:
    key = f"{UPLOAD_PREFIX}redelivered/once.txt"
    env.client("s3").put_object(Bucket=env.resources.bucket_name, Key=key, Body=b"once")
    assert env.poller.wait_until_idle(30)
    (event,) = [
        e
        for e in env.poller.delivered_events
        if any(r["s3"]["object"]["key"].endswith("once.txt") for r in e.get("Records", []))
    ]
    before = _result_versions(env, key)
    # S3 delivers at least once: hand the processor the very same event again.
    env.poller.deliver(json.loads(json.dumps(event)))
    assert _result_versions(env, key) == before == 1


def _result_versions(env: LocalEnvironment, key: str) -> int:
    listed = env.client("s3").list_object_versions(
        Bucket=env.resources.bucket_name, Prefix=f"results/{key}"
    )
    return len(listed.get("Versions", []))


def test_concurrent_uploads_are_each_processed_exactly_once(env: LocalEnvironment) -> None:
    s3 = env.client("s3")
    bodies = {
        f"{UPLOAD_PREFIX}concurrent/file {n:02d}.bin": f"payload {n}".encode() * (n + 1)
        for n in range(16)
    }

    def upload(item: tuple[str, bytes]) -> None:
        s3.put_object(Bucket=env.resources.bucket_name, Key=item[0], Body=item[1])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(upload, bodies.items()))
    assert env.poller.wait_until_idle(60)
    for key, body in bodies.items():
        assert _result(env, key)["sha256"] == hashlib.sha256(body).hexdigest()
        versions = s3.list_object_versions(
            Bucket=env.resources.bucket_name, Prefix=f"results/{key}"
        )
        assert len(versions["Versions"]) == 1, f"{key} processed more than once"
    records = env.client("dynamodb").scan(TableName=env.resources.table_name)["Items"]
    concurrent = [r for r in records if "concurrent/file" in json.dumps(r)]
    assert len(concurrent) == len(bodies)


# moto's server cannot store a key holding a newline (PutObject answers 404: its URL routing
# does not match one), so that key's round trip runs on in-process moto instead, in
# tests/lambdas/test_cross_function.py; AWS itself accepts such keys.
ESCAPED_KEYS = (
    f"{UPLOAD_PREFIX}escapes/a b+c.csv",
    f"{UPLOAD_PREFIX}escapes/100% #1?.csv",
    f"{UPLOAD_PREFIX}escapes/a%20b.csv",
    f"{UPLOAD_PREFIX}escapes/nul\x00 cr\r tab\t.csv",
    f"{UPLOAD_PREFIX}escapes/café/日本/😀.csv",
)


def test_a_result_is_served_by_its_percent_encoded_path(env: LocalEnvironment) -> None:
    s3, bucket = env.client("s3"), env.resources.bucket_name
    bodies = {key: key.encode("utf-8") for key in ESCAPED_KEYS}
    written = []
    try:
        for key, body in bodies.items():
            put = s3.put_object(Bucket=bucket, Key=key, Body=body)
            written.append((key, put["VersionId"]))
        assert env.poller.wait_until_idle(60)
        for key, body in bodies.items():
            result = _result(env, key)
            assert (result["key"], result["sha256"]) == (key, hashlib.sha256(body).hexdigest())
            result_key = f"results/{key}.json"
            written.append((result_key, s3.head_object(Bucket=bucket, Key=result_key)["VersionId"]))
    finally:
        # moto's server answers 500 to any listing of a bucket holding a key with NUL (S3 lists
        # it URL-encoded), so these versions go, by id, before the next test lists the bucket.
        for key, version in written:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version)


def test_a_failing_processor_retries_then_dead_letters_the_event(env: LocalEnvironment) -> None:
    dynamodb, sqs = env.client("dynamodb"), env.client("sqs")
    table = env.resources.table_name
    before = env.poller.stats.failed_attempts
    # Without its idempotency table the processor cannot record anything: every attempt fails.
    dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
    dynamodb.delete_table(TableName=table)
    try:
        key = f"{UPLOAD_PREFIX}doomed/report.csv"
        env.client("s3").put_object(Bucket=env.resources.bucket_name, Key=key, Body=b"a,b\n")
        assert env.poller.wait_until_idle(60)
        messages = sqs.receive_message(
            QueueUrl=env.resources.dead_letter_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2
        )["Messages"]
    finally:
        _create_table(
            env.resources.synthesized["storage"], env.emulator_url, env.resources.kms_key_arn
        )
    (message,) = messages
    record = json.loads(message["Body"])
    attempts = 1 + env.resources.async_invoke.maximum_retry_attempts
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == attempts
    assert (
        record["requestPayload"]["Records"][0]["s3"]["object"]["key"]
        == "uploads%2Fdoomed%2Freport.csv"
    )
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert env.poller.stats.failed_attempts - before == attempts
    response = call_api("GET", f"{env.api_url}/objects/{quote(key, safe='')}")
    assert response.status == 404
