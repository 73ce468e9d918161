"""The preflight's world for a test: a fake Pulumi CLI, moto for AWS, Lambda on a Stubber.

moto serves STS, IAM, S3, Secrets Manager and API Gateway's account settings; it does not serve
Lambda's GetAccountSettings ("Not yet implemented"), so Lambda is a real client on botocore's
Stubber answering with the Lambda API reference's response shapes (tests/preflight/
test_concurrency.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from shared.manifest import MANIFEST, REPO_ROOT, Layer
from tooling.orchestrator.automation import sdk_version
from tooling.orchestrator.targets import AwsTarget, Target
from tooling.preflight.checks import PreflightContext
from tooling.preflight.cli import CliError, Identity

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class FakeCli:
    """Answers as `pulumi version`, `plugin ls --json` and `whoami --json --verbose` do."""

    found_version: str | None = field(default_factory=sdk_version)
    installed: list[Mapping[str, Any]] = field(
        default_factory=lambda: [
            {"name": "aws", "kind": "resource", "version": metadata.version("pulumi-aws")}
        ]
    )
    # Logged in to Pulumi Cloud, a member of the organization the world's target names.
    identity: Identity | CliError = field(
        default_factory=lambda: Identity("me", "https://api.pulumi.com", ("me", "acme"))
    )
    # What `pulumi org get-default` prints (org/org.go's text when none is set).
    default_organization: str = "No Default Org Specified"

    def version(self) -> str | None:
        return self.found_version

    def plugins(self) -> list[Mapping[str, Any]]:
        return self.installed

    def whoami(self) -> Identity:
        if isinstance(self.identity, CliError):
            raise self.identity
        return self.identity

    def default_org(self) -> str:
        return self.default_organization


@dataclass
class World:
    """What one test's preflight sees; change it, then call `context()`."""

    target: Target
    cli: FakeCli = field(default_factory=FakeCli)
    # layer name -> its Pulumi.<stack>.yaml `config:` block
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    lambda_client: Any = None
    lambda_stub: Stubber | None = None
    failing_service: tuple[str, Exception] | None = None

    def client(self, service: str) -> Any:
        if self.failing_service and self.failing_service[0] == service:
            raise self.failing_service[1]
        if service == "lambda":
            return self.lambda_client
        return boto3.client(service, region_name=REGION)

    def context(self, stack: str = "dev", layers: list[Layer] | None = None) -> PreflightContext:
        def settings_of(layer: Layer, _: str) -> Mapping[str, Any]:
            return self.settings.get(layer.name, {})

        return PreflightContext(
            target=self.target,
            stack=stack,
            cli=self.cli,
            aws=self.client,
            layers=layers if layers is not None else list(MANIFEST.layers),
            settings_of=settings_of,
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("lambda", region_name=REGION)
        stubber = Stubber(client)
        with stubber:
            yield World(
                target=AwsTarget(repo_root=REPO_ROOT, region=REGION, org="acme"),
                lambda_client=client,
                lambda_stub=stubber,
            )


def lambda_account(world: World, quota: int, unreserved: int) -> None:
    """Lambda answers GetAccountSettings (and lists no function of this environment)."""
    from tests.preflight.test_concurrency import account_settings

    assert world.lambda_stub is not None
    world.lambda_stub.add_response("get_account_settings", account_settings(quota, unreserved))
    world.lambda_stub.add_response("list_functions", {"Functions": []}, {})


Answer = Callable[[PreflightContext], Any]
