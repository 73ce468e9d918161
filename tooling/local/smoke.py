"""A scripted journey through the running local environment, as a newcomer would take it."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from tooling.local.environment import LocalEnvironment
from tooling.local.http import ApiResponse, call_api

SMOKE_KEY = "uploads/smoke test/héllo wörld+1.txt"
SMOKE_BODY = b"hello from the local environment\n"


@dataclass
class Step:
    name: str
    passed: bool
    detail: str


def _wait_for_result(env: LocalEnvironment, key: str, timeout_seconds: float) -> ApiResponse:
    # Every reserved character escaped, `/` included, as a client should; the local API passes
    # the path on still encoded, as API Gateway does, and the handler decodes it.
    url = f"{env.api_url}/objects/{quote(key, safe='')}"
    deadline = time.monotonic() + timeout_seconds
    while True:
        response = call_api("GET", url)
        if response.status == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def _result_versions(env: LocalEnvironment, key: str) -> int:
    results = env.client("s3").list_object_versions(
        Bucket=env.resources.bucket_name, Prefix=f"results/{key}"
    )
    return len(results.get("Versions", []))


def run_smoke(env: LocalEnvironment, timeout_seconds: float = 30.0) -> list[Step]:
    """Health, upload, result through the API, a redelivered event, bad requests."""
    steps: list[Step] = []

    def step(name: str, check: Callable[[], tuple[bool, str]]) -> bool:
        try:
            passed, detail = check()
        except Exception as error:
            passed, detail = False, f"{type(error).__name__}: {error}"
        steps.append(Step(name, passed, detail))
        return passed

    def health() -> tuple[bool, str]:
        response = call_api("GET", f"{env.api_url}/health", sign=False)
        body = response.json()
        return response.status == 200 and body.get("status") == "ok", f"{response.status} {body}"

    def upload_and_read() -> tuple[bool, str]:
        env.client("s3").put_object(
            Bucket=env.resources.bucket_name, Key=SMOKE_KEY, Body=SMOKE_BODY
        )
        response = _wait_for_result(env, SMOKE_KEY, timeout_seconds)
        if response.status != 200:
            return False, f"GET /objects/... answered {response.status} {response.body[:200]!r}"
        served = response.json()
        result = served["result"]
        expected = hashlib.sha256(SMOKE_BODY).hexdigest()
        ok = (
            served["key"] == SMOKE_KEY
            and result["sha256"] == expected
            and result["size"] == len(SMOKE_BODY)
        )
        return ok, f"key {served['key']!r}, sha256 {result['sha256'][:16]}... size {result['size']}"

    def duplicate_processed_once() -> tuple[bool, str]:
        # S3 delivers at least once: hand the processor the very same event again.
        (event,) = [
            e
            for e in env.poller.delivered_events
            if any(r["s3"]["object"]["key"].endswith("1.txt") for r in e.get("Records", []))
        ][-1:]
        before = _result_versions(env, SMOKE_KEY)
        env.poller.deliver(json.loads(json.dumps(event)))
        after = _result_versions(env, SMOKE_KEY)
        return after == before == 1, f"result versions before {before}, after redelivery {after}"

    def bad_requests() -> tuple[bool, str]:
        url = f"{env.api_url}/process"
        json_header = {"Content-Type": "application/json"}
        malformed = call_api("POST", url, body=b"{not json", headers=json_header)
        invalid = call_api("POST", url, body=b'{"name": 5}', headers=json_header)
        unsigned = call_api("POST", url, body=b"{}", headers=json_header, sign=False)
        statuses = (malformed.status, invalid.status, unsigned.status)
        return statuses == (
            400,
            422,
            403,
        ), f"malformed {statuses[0]}, invalid {statuses[1]}, unsigned {statuses[2]}"

    def dead_letter_queue_empty() -> tuple[bool, str]:
        stats = env.poller.stats
        return (
            stats.dead_lettered == 0,
            f"delivered {stats.delivered}, dead-lettered {stats.dead_lettered}",
        )

    step("GET /health answers 200", health)
    if step("an upload is processed and its result served by its encoded path", upload_and_read):
        step("a redelivered event is processed once", duplicate_processed_once)
    step("bad requests are rejected (400, 422, 403)", bad_requests)
    step("no event was dead-lettered", dead_letter_queue_empty)
    return steps


def print_report(steps: list[Step], console: Console) -> bool:
    table = Table(title="Local smoke run")
    for column in ("step", "result", "detail"):
        table.add_column(column)
    for item in steps:
        table.add_row(item.name, "[green]pass[/]" if item.passed else "[red]FAIL[/]", item.detail)
    console.print(table)
    passed = all(item.passed for item in steps)
    console.print(
        f"{sum(s.passed for s in steps)} passed, {sum(not s.passed for s in steps)} failed"
    )
    return passed
