"""Helpers shared by the handler tests: the names and events of tooling.function_fixtures (which
the benchmark uses too), fault injection, and reading what the handlers printed (Powertools
logs and EMF metrics are JSON lines on stdout)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped, unused-ignore]

from shared.packaging import LAMBDAS_DIR
from tooling.function_fixtures import NAMES as NAMES
from tooling.function_fixtures import api_event as api_event
from tooling.function_fixtures import load_event as load_event
from tooling.function_fixtures import object_path as object_path
from tooling.function_fixtures import s3_event as s3_event
from tooling.function_fixtures import s3_record as s3_record
from tooling.local.functions import load_handler

# A value that must never appear in any response, log line or metric.
API_KEY = "test-api-key-0123456789abcdef"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every JSON object line of captured stdout (logs and EMF), in order."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("{"):
            parsed = json.loads(stripped)
            if isinstance(parsed, dict):
                lines.append(parsed)
    return lines


def emf_metrics(text: str) -> dict[str, float]:
    """Sum of every EMF metric value printed, by metric name."""
    totals: dict[str, float] = {}
    for line in json_lines(text):
        if "_aws" not in line:
            continue
        for directive in line["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] = totals.get(metric["Name"], 0.0) + sum(values)
    return totals


def log_messages(text: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(text) if "_aws" not in line and "message" in line]


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever sys.stdout is at the time of the write.

    While a handler is imported, sys.stdout is itself such a proxy; then the stream it stands
    in for is used, or a write (or the flush of an old proxy being garbage-collected at that
    moment) would call itself until the interpreter aborts.
    """

    def __init__(self, stands_for: Any) -> None:
        super().__init__()
        self._stands_for = stands_for

    def _stream(self) -> Any:
        stream = sys.stdout
        return stream._stands_for if isinstance(stream, _CurrentStdout) else stream

    def write(self, text: str) -> int:
        written: int = self._stream().write(text)
        return written

    def flush(self) -> None:
        self._stream().flush()

    def close(self) -> None:
        """A proxy owns no stream: closing it, also at garbage collection, flushes nothing."""


class FunctionLoader:
    """Imports a function folder's `handler` fresh, as Lambda does in a new environment, with
    the one in-process loader (tooling.local.functions.load_handler: the folder and
    lambdas/common on sys.path for the import only). The function's environment is set with
    monkeypatch and stays set for the test, so none is passed to load_handler.
    """

    def load(self, function: str, lambdas_dir: Path = LAMBDAS_DIR) -> ModuleType:
        # Powertools' logger keeps the stream it finds at import; give it one that always
        # writes to the current sys.stdout, which pytest replaces for every test phase.
        real_stdout = sys.stdout
        sys.stdout = _CurrentStdout(real_stdout)
        try:
            module = load_handler(function, {}, lambdas_dir)
        finally:
            sys.stdout = real_stdout
        # Powertools configures its logger once per service and process: when another test
        # module imported this handler first (tests/infra, tests/local), the logger kept that
        # import's stream, and this import added none. Point it at the current stdout too.
        service_logger = getattr(module, "logger", None)
        if isinstance(service_logger, Logger):
            handler = service_logger.registered_handler
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(_CurrentStdout(real_stdout))
        return module

    def load_with(
        self, function: str, environment: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> ModuleType:
        """Load `function` with `environment` set, left set for the test."""
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return self.load(function)


class _Raw:
    """The minimal raw stream botocore reads an HTTP response body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()

    def close(self) -> None:
        self._body = b""

    def read(self, amt: int | None = None) -> bytes:
        if amt is None:
            body, self._body = self._body, b""
        else:
            body, self._body = self._body[:amt], self._body[amt:]
        return body


class PatternStream:
    """A deterministic body of `size` bytes, produced as it is read and never held whole.

    Reading it all at once (`read()` without a size) fails the test: a handler streaming with
    bounded memory never does that.
    """

    BLOCK = hashlib.sha256(b"pattern").digest() * 2048  # 64 KiB, not trivially compressible

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.largest_read = 0
        self.closed = False

    def read(self, amt: int | None = None) -> bytes:
        if amt is None:
            raise AssertionError("the whole object was read into memory at once")
        amt = min(amt, self.size - self.position)
        self.largest_read = max(self.largest_read, amt)
        offset = self.position % len(self.BLOCK)
        repeats = (offset + amt) // len(self.BLOCK) + 1
        chunk = (self.BLOCK * repeats)[offset : offset + amt]
        self.position += amt
        return chunk

    def close(self) -> None:
        self.closed = True

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(1024 * 1024):
            yield chunk

    @classmethod
    def sha256(cls, size: int) -> str:
        digest = hashlib.sha256()
        for chunk in cls(size).stream():
            digest.update(chunk)
        return digest.hexdigest()


@dataclass(frozen=True)
class Answer:
    """What to answer in AWS's place: an HTTP response, or a connection error to raise."""

    status: int = 500
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    raise_error: Exception | None = None
    stream: Any = None  # a raw stream (PatternStream) to answer with instead of `body`


def s3_error(status: int, code: str) -> Answer:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
    body += "<Message>injected by the test</Message></Error>"
    return Answer(status=status, body=body.encode(), headers={"Content-Type": "application/xml"})


def s3_access_denied() -> Answer:
    """What S3 answers a GetObject for a key or version that does not exist when the caller lacks
    s3:ListBucket: 403 AccessDenied, exactly as it answers a real denial (GetObject: "If the
    object that you request doesn't exist, the error that Amazon S3 returns depends on whether
    you also have the s3:ListBucket permission ... 403 Access Denied";
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html; S3's error body:
    https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#RESTErrorResponses).
    moto answers such a request 404 (NoSuchKey or NoSuchVersion) whatever the caller's
    permissions, so tests inject this answer where AWS would give it."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
        "<Message>Access Denied</Message><RequestId>4442587FB7D0A2F9</RequestId>"
        "<HostId>eftixk72aD6Ap51TnqcoF8eFidJG9Z/2mkiDFu8yU9AS1ed4OpIszj7UDNEHGran</HostId></Error>"
    )
    return Answer(
        status=403,
        body=body.encode(),
        headers={
            "Content-Type": "application/xml",
            "x-amz-request-id": "4442587FB7D0A2F9",
            "x-amz-id-2": "eftixk72aD6Ap51TnqcoF8eFidJG9Z/2mkiDFu8yU9AS1ed4OpIszj7UDNEHGran",
        },
    )


def s3_conditional_conflict() -> Answer:
    """What S3 answers a conditional PutObject while another conditional write of the same key is
    in progress: 409 ConditionalRequestConflict, after which the caller should read again and
    retry (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html;
    PutObject's If-Match and If-None-Match). moto, whose conditional writes are not atomic,
    never answers it."""
    return s3_error(409, "ConditionalRequestConflict")


def json_error(status: int, code: str) -> Answer:
    body = json.dumps({"__type": code, "message": "injected by the test"}).encode()
    return Answer(
        status=status,
        body=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code},
    )


class InjectedAnswers:
    """Answers the next sends of one operation of one client with the given answers, then
    lets the requests through to moto; counts every send (retries included).

    Registered on `before-send`, so the request has gone through botocore's whole pipeline and
    its retry handler sees the answer exactly as if it came from the network. moto's own
    handler runs on the same event: the answered request is pointed at an address moto does not
    serve (and that is never contacted: botocore takes the first answer), so an injected
    throttle has no side effect on moto's state, as a real one has none on AWS.
    """

    def __init__(self, client: Any, operation: str, answers: list[Answer] | None = None) -> None:
        self.answers = list(answers or [])
        self.sends = 0
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register_first(f"before-send.{service}.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sends += 1
        if not self.answers:
            return None
        answer = self.answers.pop(0)
        if answer.raise_error is not None:
            raise answer.raise_error
        url = request.url
        request.url = "http://127.0.0.1:9/answered-by-the-test"
        raw = answer.stream if answer.stream is not None else _Raw(answer.body)
        return AWSResponse(url, answer.status, dict(answer.headers), raw)


class AtomicRequests:
    """An S3 client whose requests each run alone, under a lock shared by every wrapper of it.

    S3 executes each request atomically: a conditional PutObject checks its condition and writes
    in one step, and a HeadObject sees a whole object version or none (strong read-after-write
    consistency; https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel).
    moto does not: its PutObject checks If-Match / If-None-Match, then stores the new version,
    then sets its metadata, and another thread can run between those steps. Tests that run
    several invocations at once give each one's client this wrapper, so the requests interleave
    as S3's do and only as S3's do. Paginators are not wrapped (no concurrent test uses one).
    """

    def __init__(self, client: Any, lock: Any) -> None:
        self.client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call
