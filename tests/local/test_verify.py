"""Each step of the verify journey fails (or warns) when what it checks is wrong.

The environment is the running local one; each test breaks one thing in it, or points the
journey at something broken, and restores it. Where moto answers differently from AWS, AWS's
answer is injected with botocore's Stubber, and the test says so.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

from shared.manifest import REPO_ROOT
from tooling.checklist import Check, CheckFailedError, Verdict
from tooling.local.environment import LocalEnvironment
from tooling.verify import deployment as deployment_module
from tooling.verify.__main__ import main as verify_main
from tooling.verify.deployment import Deployment, version_of_code_sha256, write_local_environment
from tooling.verify.journey import Journey, run_verify


def _with_outputs(deployment: Deployment, **changes: Any) -> Deployment:
    outputs = {layer: dict(values) for layer, values in deployment.outputs.items()}
    for key, value in changes.items():
        for values in outputs.values():
            if key in values:
                values[key] = value
    return replace(deployment, outputs=outputs)


def _fails(step: Any) -> CheckFailedError:
    with pytest.raises(CheckFailedError) as failed:
        step()
    return failed.value


@pytest.fixture
def journey(env: LocalEnvironment) -> Journey:
    return Journey(env.deployment(), timeout_s=10, poll_s=0.05)


@pytest.fixture(scope="module")
def broken_api() -> Iterator[str]:
    """An API that answers 200 with an empty object to everything, as a misrouted proxy would."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/prod"
    finally:
        server.shutdown()
        server.server_close()


def test_the_reported_version_must_be_the_live_code(env: LocalEnvironment) -> None:
    deployment = replace(env.deployment(), expected_version=lambda: "0123456789ab")
    failed = _fails(Journey(deployment).health)
    assert "but the live alias holds '0123456789ab'" in failed.detail


def test_the_version_of_lambdas_code_digest() -> None:
    # Lambda reports CodeSha256 as base64; GET /health reports the first 12 hex digits.
    assert version_of_code_sha256("q1sZVwQjRMHqmi+RrGVzR5THclhsSyUe9KB0/6c4HGk=") == "ab5b19570423"


def test_a_broken_api_fails_every_api_step(env: LocalEnvironment, broken_api: str) -> None:
    deployment = _with_outputs(
        env.deployment(),
        health_check_url=f"{broken_api}/health",
        process_endpoint_url=f"{broken_api}/process",
        objects_endpoint_url=f"{broken_api}/objects/",
    )
    journey = Journey(deployment)
    assert "answered 200" in _fails(journey.health).detail
    assert "answered 200, not 403" in _fails(journey.unsigned_is_refused).detail
    assert "answered 200" in _fails(journey.process).detail
    assert "not 400" in _fails(journey.malformed_is_refused).detail


def test_an_upload_never_processed_fails_and_is_still_cleaned_up(env: LocalEnvironment) -> None:
    s3 = env.client("s3")
    untriggered = "verify-untriggered-bucket"
    s3.create_bucket(Bucket=untriggered)
    s3.put_bucket_versioning(Bucket=untriggered, VersioningConfiguration={"Status": "Enabled"})
    deployment = _with_outputs(env.deployment(), s3_bucket_name=untriggered)
    checklist = run_verify(deployment, timeout_s=0.3, poll_s=0.05)
    upload = next(c for c in checklist.checks if c.name == "upload processed")
    assert upload.verdict is Verdict.FAIL and "no result for" in upload.detail
    cleanup = checklist.checks[-1]
    assert (cleanup.name, cleanup.verdict) == ("clean up", Verdict.PASS)
    assert not s3.list_object_versions(Bucket=untriggered).get("Versions")


def test_a_message_in_the_dead_letter_queue_fails(env: LocalEnvironment, journey: Journey) -> None:
    sqs = env.client("sqs")
    url = env.resources.dead_letter_queue_url
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"requestContext": {}}))
    try:
        failed = _fails(journey.dead_letter_queue_empty)
        assert "1 failed event(s) wait" in failed.detail and "redrive" in failed.fix
    finally:
        sqs.purge_queue(QueueUrl=url)
    assert journey.dead_letter_queue_empty().verdict is Verdict.PASS


def test_a_raised_or_missing_alarm_fails(env: LocalEnvironment, journey: Journey) -> None:
    cloudwatch = env.client("cloudwatch")
    name = "serverless-local-api-5xx"
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="verify test")
    try:
        assert f"in ALARM: {name}" in _fails(journey.alarms).detail
    finally:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="verify test")
    assert journey.alarms().verdict is Verdict.PASS
    alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    cloudwatch.delete_alarms(AlarmNames=[name])
    try:
        assert f"missing: {name}" in _fails(journey.alarms).detail
    finally:
        keep = (
            "AlarmName",
            "AlarmDescription",
            "Namespace",
            "MetricName",
            "Dimensions",
            "Statistic",
            "Period",
            "EvaluationPeriods",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "AlarmActions",
            "OKActions",
        )
        cloudwatch.put_metric_alarm(**{k: alarm[k] for k in keep if k in alarm})


def test_a_subscription_pending_confirmation_warns(env: LocalEnvironment) -> None:
    # moto confirms e-mail subscriptions at once; SNS lists them as PendingConfirmation until
    # the recipient follows the link (ListSubscriptionsByTopic API reference): injected.
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=env.emulator_url)
    topic = env.resources.alarm_topic_arn
    deployment = env.deployment()
    clients = {"sns": sns}
    journey = Journey(replace(deployment, aws=lambda s: clients.get(s) or deployment.aws(s)))
    pending = {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "TopicArn": topic}
    confirmed = {**pending, "SubscriptionArn": f"{topic}:0f1e2d3c"}
    with Stubber(sns) as stub:
        for subscriptions in ([pending], [confirmed, pending], []):
            stub.add_response("list_subscriptions_by_topic", {"Subscriptions": subscriptions})
        first, second, third = (journey.alarm_subscription() for _ in range(3))
    assert (first.verdict, first.detail) == (
        Verdict.WARN,
        "1 pending confirmation: nobody receives alarms yet",
    )
    assert (second.verdict, second.detail) == (Verdict.PASS, "1 confirmed, 1 pending")
    assert third.verdict is Verdict.WARN and "alarm_emails" in third.fix


def test_an_unfinished_rotation_fails_and_rotation_off_warns(
    env: LocalEnvironment, journey: Journey
) -> None:
    secrets = env.client("secretsmanager")
    arn = env.resources.secret_arn
    assert journey.secret_rotation().verdict is Verdict.PASS
    token = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    # What a rotation that stopped after createSecret leaves behind.
    secrets.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps({"api_key": "x" * 40}),
        VersionStages=["AWSPENDING"],
    )
    try:
        failed = _fails(journey.secret_rotation)
        assert f"version {token} is still AWSPENDING" in failed.detail
    finally:
        secrets.update_secret_version_stage(
            SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
        )
    off = secrets.create_secret(Name="verify-supplied", SecretString="{}")["ARN"]
    supplied = Journey(_with_outputs(env.deployment(), secrets_manager_arn=off))
    check = supplied.secret_rotation()
    assert check.verdict is Verdict.WARN and "never rotated" in check.detail


def test_the_waf_step_on_aws(env: LocalEnvironment) -> None:
    # The local API has no WAF: the step skips there. On AWS it asks WAFv2 for the stage's
    # web ACL (GetWebACLForResource answers with or without "WebACL"); played by a Stubber.
    assert Journey(env.deployment()).waf().verdict is Verdict.SKIP
    wafv2 = boto3.client("wafv2", region_name="us-east-1", endpoint_url=env.emulator_url)
    deployment = replace(env.deployment(), not_emulated=frozenset(), aws=lambda s: wafv2)
    stage_arn = "arn:aws:apigateway:us-east-1::/restapis/local/stages/prod"
    acl = {
        "Name": "serverless-local-api",
        "Id": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
        "ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/serverless-local-api/a1",
        "DefaultAction": {"Allow": {}},
        "VisibilityConfig": {
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": "serverless-local-api",
        },
    }
    with Stubber(wafv2) as stub:
        stub.add_response("get_web_acl_for_resource", {"WebACL": acl}, {"ResourceArn": stage_arn})
        stub.add_response("get_web_acl_for_resource", {}, {"ResourceArn": stage_arn})
        passed: Check = Journey(deployment).waf()
        failed = _fails(Journey(deployment).waf)
    assert (passed.verdict, passed.detail) == (Verdict.PASS, "web ACL serverless-local-api")
    assert "no web ACL is associated" in failed.detail


def test_a_step_that_cannot_look_fails_and_the_rest_still_run(env: LocalEnvironment) -> None:
    deployment = env.deployment()

    def no_sqs(service: str) -> Any:
        if service == "sqs":
            raise RuntimeError("the queue's endpoint is unreachable")
        return deployment.aws(service)

    checklist = run_verify(replace(deployment, aws=no_sqs), timeout_s=30, poll_s=0.1)
    verdicts = {check.name: check for check in checklist.checks}
    dlq = verdicts["dead-letter queue"]
    assert dlq.verdict is Verdict.FAIL
    assert dlq.detail == "could not check: RuntimeError: the queue's endpoint is unreachable"
    assert verdicts["alarms"].verdict is Verdict.PASS
    assert verdicts["clean up"].verdict is Verdict.PASS
    assert not checklist.passed


def test_verify_local_needs_a_running_environment_and_passes_against_one(
    env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = tmp_path / "environment.json"
    monkeypatch.setattr(deployment_module, "LOCAL_ENVIRONMENT_FILE", published)
    out = io.StringIO()
    assert verify_main(["--target", "local"], console=Console(file=out, width=200)) == 2
    assert "no local environment is running" in out.getvalue()
    assert "nox -s local" in out.getvalue()

    write_local_environment(
        published,
        stack=env.resources.names.environment,
        emulator_url=env.emulator_url,
        outputs=env.outputs(),
        version=env.resources.api_environment["APP_VERSION"],
    )
    out = io.StringIO()
    code = verify_main(
        ["--target", "local", "--timeout", "30"], console=Console(file=out, width=200)
    )
    assert code == 0, out.getvalue()
    assert "verify · stack local · target local" in out.getvalue()
    assert (REPO_ROOT / "build" / "verify-report.json").exists()
