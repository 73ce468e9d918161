"""The acceptance journey: what a user of a deployed environment does, and what must be true.

Each step is a check (tooling.checklist): the API answers as documented, an upload is processed
and its result served by its percent-encoded key, nothing waits in the dead-letter queue, every
alarm exists and none is raised, someone receives them, the secret rotates, the WAF guards the
stage. What the journey writes (one upload and its result) is removed afterwards, whatever
happened. The same code verifies a real environment (`nox -s verify -- --target aws`) and the
local one (`nox -s verify -- --target local`, and `nox -s local -- --smoke`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from shared.naming import RESULTS_PREFIX, UPLOAD_PREFIX
from tooling.api_client import ApiResponse, call_api
from tooling.checklist import Check, CheckFailedError, Checklist, Verdict
from tooling.verify.deployment import Deployment

VERIFY_REPORT = "verify-report.json"
DEFAULT_TIMEOUT_S = 120.0
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class JourneyState:
    """What the steps share: the run's id, the API key if the API uses keys, what to clean."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    api_key_headers: dict[str, str] = field(default_factory=dict)
    written: list[tuple[str, str]] = field(default_factory=list)  # (bucket, key prefix)


class Journey:
    def __init__(
        self,
        deployment: Deployment,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        poll_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deployment = deployment
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.sleep = sleep
        self.clock = clock
        self.state = JourneyState()

    # Calls to the API

    def _call(
        self,
        method: str,
        url: str,
        *,
        sign: bool = True,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        extra = {**(self.state.api_key_headers if sign else {}), **(headers or {})}
        return call_api(
            method, url, body=body, headers=extra, sign=sign, signer=self.deployment.signer
        )

    # The steps

    def health(self) -> Check:
        url = self.deployment.output("health_check_url")
        response = self._call("GET", url, sign=False)
        body = _json_or_none(response)
        if response.status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
            raise CheckFailedError(
                f"GET {url} answered {response.status} {response.body[:200]!r}",
                "see the API handler's log group and the API's access log",
            )
        expected = self.deployment.expected_version()
        if body.get("version") != expected:
            raise CheckFailedError(
                f"the API serves version {body.get('version')!r}, but the live alias holds "
                f"{expected!r}",
                "redeploy the api layer after compute (nox -s deploy -- api)",
            )
        return Check("GET /health", Verdict.PASS, f"200, version {expected}")

    def unsigned_is_refused(self) -> Check:
        url = self.deployment.output("objects_endpoint_url") + "verify-unsigned"
        response = self._call("GET", url, sign=False)
        if response.status != 403:
            raise CheckFailedError(
                f"an unsigned GET /objects/... answered {response.status}, not 403",
                "check the api layer's authorization setting: every route but GET /health "
                "must require it",
            )
        return Check("protected route, unsigned", Verdict.PASS, "403 before the function runs")

    def find_api_key(self) -> None:
        """With `authorization: API_KEY`, calls need the stage's usage-plan key."""
        if "API Gateway usage plans" in self.deployment.not_emulated:
            return
        gateway = self.deployment.aws("apigateway")
        api_id = self.deployment.output("rest_api_id")
        stage = self.deployment.output("api_stage_name")
        for plan in gateway.get_usage_plans().get("items", []):
            stages = plan.get("apiStages", [])
            if any(s.get("apiId") == api_id and s.get("stage") == stage for s in stages):
                for key in gateway.get_usage_plan_keys(usagePlanId=plan["id"]).get("items", []):
                    value = gateway.get_api_key(apiKey=key["id"], includeValue=True)["value"]
                    self.state.api_key_headers = {"x-api-key": value}
                    return

    def process(self) -> Check:
        url = self.deployment.output("process_endpoint_url")
        body = json.dumps({"name": "verify", "data": {"run": self.state.run_id}}).encode()
        response = self._call("POST", url, body=body, headers={"Content-Type": "application/json"})
        answer = _json_or_none(response)
        if (
            response.status != 200
            or not isinstance(answer, dict)
            or not _HEX_SIGNATURE.match(str(answer.get("signature", "")))
        ):
            raise CheckFailedError(
                f"POST {url} answered {response.status} {response.body[:200]!r}",
                "a 403 means your identity may not execute-api:Invoke this API; a 500 is in "
                "the API handler's log group",
            )
        return Check("POST /process, signed", Verdict.PASS, "200 with an HMAC-SHA256 signature")

    def malformed_is_refused(self) -> Check:
        url = self.deployment.output("process_endpoint_url")
        response = self._call(
            "POST", url, body=b"{not json", headers={"Content-Type": "application/json"}
        )
        if response.status != 400:
            raise CheckFailedError(
                f"a malformed body answered {response.status}, not 400",
                "check the POST /process request validator in the api layer",
            )
        return Check("malformed body", Verdict.PASS, "400 before or in the function")

    def upload_is_processed(self) -> Check:
        bucket = self.deployment.output("s3_bucket_name")
        # A space, a plus and non-ASCII: what S3 encodes in events and clients in paths.
        key = f"{UPLOAD_PREFIX}verify/{self.state.run_id} a+b ünïcødé 日本.txt"
        body = f"verify run {self.state.run_id}\n".encode() + secrets.token_bytes(64)
        self.state.written += [(bucket, key), (bucket, f"{RESULTS_PREFIX}{key}")]
        self.deployment.aws("s3").put_object(Bucket=bucket, Key=key, Body=body)
        url = self.deployment.output("objects_endpoint_url") + quote(key, safe="")
        deadline = self.clock() + self.timeout_s
        while True:
            response = self._call("GET", url)
            if response.status == 200 or self.clock() >= deadline:
                break
            self.sleep(self.poll_s)
        if response.status != 200:
            raise CheckFailedError(
                f"no result for {key!r} after {self.timeout_s:.0f} s (last answer "
                f"{response.status})",
                "see the S3 processor's log group and the dead-letter queue; a slow first "
                "start may need a longer --timeout",
            )
        result = (_json_or_none(response) or {}).get("result") or {}
        expected = hashlib.sha256(body).hexdigest()
        if result.get("sha256") != expected or result.get("key") != key:
            raise CheckFailedError(
                f"the result describes {result.get('key')!r} with SHA-256 "
                f"{str(result.get('sha256'))[:16]}..., expected {expected[:16]}...",
                "see the S3 processor's log group",
            )
        return Check(
            "upload processed",
            Verdict.PASS,
            f"{key!r} read back by its encoded path; SHA-256 {expected[:16]}... matches",
        )

    def dead_letter_queue_empty(self) -> Check:
        url = self.deployment.output("dead_letter_queue_url")
        attributes = self.deployment.aws("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = sum(int(value) for value in attributes.values())
        if waiting:
            raise CheckFailedError(
                f"{waiting} failed event(s) wait in {url}",
                "read them (aws sqs receive-message --queue-url <url>), fix the cause in the "
                "processor's logs, then redrive them",
            )
        return Check("dead-letter queue", Verdict.PASS, "empty")

    def alarms(self) -> Check:
        cloudwatch = self.deployment.aws("cloudwatch")
        dashboard = self.deployment.output("dashboard_name")
        body = json.loads(cloudwatch.get_dashboard(DashboardName=dashboard)["DashboardBody"])
        arns = [
            arn
            for widget in body.get("widgets", [])
            if widget.get("type") == "alarm"
            for arn in widget.get("properties", {}).get("alarms", [])
        ]
        names = [arn.split(":alarm:", 1)[1] for arn in arns]
        found: dict[str, str] = {}
        for start in range(0, len(names), 100):
            page = cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])
            found.update({a["AlarmName"]: a["StateValue"] for a in page["MetricAlarms"]})
        missing = sorted(set(names) - set(found))
        if not names or missing:
            raise CheckFailedError(
                f"the dashboard {dashboard} shows {len(names)} alarm(s); missing: "
                f"{', '.join(missing) or 'all'}",
                "redeploy the observability layer (nox -s deploy -- observability)",
            )
        raised = sorted(name for name, state in found.items() if state == "ALARM")
        if raised:
            raise CheckFailedError(
                f"in ALARM: {', '.join(raised)}",
                f"see the dashboard {dashboard} and the alarmed function's logs",
            )
        quiet = sum(state == "INSUFFICIENT_DATA" for state in found.values())
        return Check(
            "alarms",
            Verdict.PASS,
            f"{len(found)} exist, none in ALARM ({quiet} with no data yet)",
        )

    def alarm_subscription(self) -> Check:
        topic = self.deployment.output("sns_topic_arn")
        subscriptions = self.deployment.aws("sns").list_subscriptions_by_topic(TopicArn=topic)[
            "Subscriptions"
        ]
        confirmed = [s for s in subscriptions if s["SubscriptionArn"].startswith("arn:")]
        pending = len(subscriptions) - len(confirmed)
        if confirmed:
            detail = f"{len(confirmed)} confirmed" + (f", {pending} pending" if pending else "")
            return Check("alarm subscription", Verdict.PASS, detail)
        if pending:
            return Check(
                "alarm subscription",
                Verdict.WARN,
                f"{pending} pending confirmation: nobody receives alarms yet",
                "each recipient confirms from the e-mail AWS sent them",
            )
        return Check(
            "alarm subscription",
            Verdict.WARN,
            "no subscriber: alarms are raised but nobody is told",
            "set alarm_emails in stacks/observability and redeploy it",
        )

    def secret_rotation(self) -> Check:
        secret = self.deployment.output("secrets_manager_arn")
        described = self.deployment.aws("secretsmanager").describe_secret(SecretId=secret)
        if not described.get("RotationEnabled"):
            return Check(
                "secret rotation",
                Verdict.WARN,
                "off: a key supplied as config (api_key) is never rotated by the product",
                "leave api_key unset to have the key generated and rotated",
            )
        stages = described.get("VersionIdsToStages", {})
        stuck = [
            v
            for v, labels in stages.items()
            if "AWSPENDING" in labels and "AWSCURRENT" not in labels
        ]
        if stuck:
            raise CheckFailedError(
                f"the last rotation did not finish: version {stuck[0]} is still AWSPENDING",
                "see the rotation function's log group; then rotate again "
                f"(aws secretsmanager rotate-secret --secret-id {secret})",
            )
        if not any("AWSCURRENT" in labels for labels in stages.values()):
            raise CheckFailedError(
                "the secret has no AWSCURRENT value: its first rotation has not completed",
                "see the rotation function's log group",
            )
        last = described.get("LastRotatedDate")
        when = f", last rotated {last:%Y-%m-%d %H:%M} UTC" if last else ""
        return Check("secret rotation", Verdict.PASS, f"enabled{when}")

    def waf(self) -> Check:
        if "WAF on the stage" in self.deployment.not_emulated:
            return Check("WAF on the stage", Verdict.SKIP, "the local API has no WAF")
        api_id = self.deployment.output("rest_api_id")
        stage = self.deployment.output("api_stage_name")
        region = self.deployment.signer[1]
        stage_arn = f"arn:aws:apigateway:{region}::/restapis/{api_id}/stages/{stage}"
        acl = self.deployment.aws("wafv2").get_web_acl_for_resource(ResourceArn=stage_arn)
        if not acl.get("WebACL"):
            raise CheckFailedError(
                f"no web ACL is associated with {stage_arn}",
                "redeploy the api layer (nox -s deploy -- api)",
            )
        return Check("WAF on the stage", Verdict.PASS, f"web ACL {acl['WebACL']['Name']}")

    def clean_up(self) -> Check:
        s3 = self.deployment.aws("s3")
        removed = 0
        for bucket, prefix in self.state.written:
            for page in s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    s3.delete_object(
                        Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"]
                    )
                    removed += 1
        return Check("clean up", Verdict.PASS, f"removed the {removed} object version(s) written")


def run_verify(deployment: Deployment, **options: Any) -> Checklist:
    """The whole journey; the objects it wrote are removed whatever happened."""
    journey = Journey(deployment, **options)
    checklist = Checklist("verify", {"stack": deployment.stack, "target": deployment.target})
    try:
        checklist.run("GET /health", journey.health)
        checklist.run("protected route, unsigned", journey.unsigned_is_refused)
        # Without access to usage plans, signed calls still work for an AWS_IAM API.
        with contextlib.suppress(ClientError):
            journey.find_api_key()
        checklist.run("POST /process, signed", journey.process)
        checklist.run("malformed body", journey.malformed_is_refused)
        checklist.run("upload processed", journey.upload_is_processed)
        checklist.run("dead-letter queue", journey.dead_letter_queue_empty)
        checklist.run("alarms", journey.alarms)
        checklist.run("alarm subscription", journey.alarm_subscription)
        checklist.run("secret rotation", journey.secret_rotation)
        checklist.run("WAF on the stage", journey.waf)
    finally:
        checklist.run("clean up", journey.clean_up)
    return checklist


def _json_or_none(response: ApiResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
