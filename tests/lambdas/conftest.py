"""Fixtures for the Lambda handler tests: dummy credentials, in-process moto, the resources the
storage and security layers create (with the names shared.naming gives them), a fake Lambda
context, and each function loaded fresh with the environment the compute layer declares for it
(tooling.function_fixtures, which the benchmark uses too)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]
import botocore.session  # type: ignore[import-untyped, unused-ignore]
import pytest
from moto import mock_aws

from tests.lambdas.support import API_KEY, NAMES, FunctionLoader
from tooling.function_fixtures import (
    CORS_ORIGIN as CORS_ORIGIN,
)
from tooling.function_fixtures import (
    api_environment,
    create_idempotency_table,
    create_secret,
    create_upload_bucket,
    lambda_context,
    processor_environment,
)
from tooling.local.functions import LambdaContext

PROCESSOR_ENV = processor_environment()
# SECRET_ARN holds the mocks' placeholder: the `api` fixture sets the ARN of the secret it made.
API_ENV = api_environment()
MAX_BODY_BYTES = int(API_ENV["MAX_BODY_BYTES"])

# Variables a developer's shell may carry that would change what the handlers or boto3 do.
_SCRUBBED_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "POWERTOOLS_DEV",
    "POWERTOOLS_IDEMPOTENCY_DISABLED",
    "POWERTOOLS_METRICS_DISABLED",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_PARAMETERS_MAX_AGE",
    "CORS_ALLOWED_ORIGINS",
    *PROCESSOR_ENV,
    *API_ENV,
)


@pytest.fixture(scope="session", autouse=True)
def shared_botocore_loader() -> Iterator[None]:
    """One botocore data loader for every session the tests and handlers create.

    Each fresh handler import makes new boto3 sessions, and each session would parse the
    service models' JSON again (about 0.15 s per client). The loader only reads botocore's own
    data files, so sharing it changes nothing but the time.
    """
    original = botocore.session.create_loader
    loaders: dict[Any, Any] = {}

    def cached_loader(search_path_string: Any = None) -> Any:
        if search_path_string not in loaders:
            loaders[search_path_string] = original(search_path_string)
        return loaders[search_path_string]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", cached_loader)
        yield


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast, and loudly, on any connection or name lookup beyond this machine."""
    original_connect = socket.socket.connect
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in _LOOPBACK:
            raise ConnectionRefusedError(f"the handler tests may not connect to {address[0]!r}")
        original_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK and host is not None:
            raise socket.gaierror(f"the handler tests may not resolve {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and region only: no test may reach a real AWS account."""
    for name in _SCRUBBED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def processor_context() -> LambdaContext:
    return lambda_context(NAMES.s3_processor_function)


@pytest.fixture
def api_context() -> LambdaContext:
    return lambda_context(NAMES.api_handler_function)


@pytest.fixture
def loader() -> FunctionLoader:
    return FunctionLoader()


@pytest.fixture
def s3(aws: None) -> Any:
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    return create_upload_bucket(s3)


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def table(dynamodb: Any) -> str:
    return create_idempotency_table(dynamodb)


@pytest.fixture
def secret_arn(aws: None) -> str:
    return create_secret(boto3.client("secretsmanager", region_name="us-east-1"), API_KEY)


@pytest.fixture
def processor(
    bucket: str, table: str, loader: FunctionLoader, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    return loader.load_with("s3_processor", PROCESSOR_ENV, monkeypatch)


@pytest.fixture
def api(
    bucket: str, secret_arn: str, loader: FunctionLoader, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    return loader.load_with("api_handler", api_environment(secret_arn), monkeypatch)
