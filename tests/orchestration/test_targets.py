"""Targets: the local target's constants, the aws target's refusals, target selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.manifest import MANIFEST
from tooling.orchestrator.targets import (
    LOCAL_PASSPHRASE,
    AwsTarget,
    ConfigEntry,
    LocalTarget,
    UnavailableError,
    make_target,
    probe_aws_credentials,
)


def test_the_local_target_points_every_layer_at_the_emulator(tmp_path: Path) -> None:
    target = LocalTarget(
        repo_root=tmp_path, emulator_url="http://127.0.0.1:4599", emulator_probe=lambda _: True
    )
    assert target.needs_confirmation is False
    assert target.backend_url() == f"file://{tmp_path}/.pulumi-state"
    env = target.environment()
    assert env["PULUMI_CONFIG_PASSPHRASE"] == LOCAL_PASSPHRASE
    # Dummy credentials and the emulator's endpoint replace whatever the shell holds.
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_ENDPOINT_URL"]) == ("local", "http://127.0.0.1:4599")
    config = target.stack_config(MANIFEST.layer("api"))
    assert config["aws:region"] == ConfigEntry("us-east-1")
    for service in ("s3", "lambda", "iam", "sts", "apigateway", "kms", "wafv2", "dynamodb"):
        assert config[f"aws:endpoints[0].{service}"] == ConfigEntry("http://127.0.0.1:4599")
    for flag in ("skipCredentialsValidation", "skipRequestingAccountId", "s3UsePathStyle"):
        assert config[f"aws:{flag}"] == ConfigEntry("true")
    assert config["aws:secretKey"].secret is True
    target.check({})  # the emulator answers; nothing else is required
    target.prepare()
    assert (tmp_path / ".pulumi-state").is_dir()


def test_the_local_target_refuses_without_an_emulator(tmp_path: Path) -> None:
    target = LocalTarget(repo_root=tmp_path, emulator_probe=lambda _: False)
    with pytest.raises(UnavailableError, match="nothing answers there") as raised:
        target.check({})
    assert "http://127.0.0.1:4566" in str(raised.value)
    assert "AWS_ENDPOINT_URL" in str(raised.value)


def test_make_target_takes_the_emulator_url(tmp_path: Path) -> None:
    target = make_target("local", tmp_path, emulator_url="http://localhost:4566")
    assert isinstance(target, LocalTarget)
    assert target.emulator_url == "http://localhost:4566"


def test_the_aws_target_refuses_without_a_passphrase_or_secrets_provider(tmp_path: Path) -> None:
    target = AwsTarget(repo_root=tmp_path, credentials_probe=lambda _: "test")
    assert target.needs_confirmation is True
    with pytest.raises(UnavailableError) as raised:
        target.check({})
    message = str(raised.value)
    assert "\n" not in message
    assert "PULUMI_CONFIG_PASSPHRASE" in message
    assert "--secrets-provider" in message


@pytest.mark.parametrize(
    "environ",
    [{"PULUMI_CONFIG_PASSPHRASE": "p"}, {"PULUMI_CONFIG_PASSPHRASE_FILE": "/run/secrets/p"}],
)
def test_an_explicit_passphrase_satisfies_the_aws_target(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    AwsTarget(repo_root=tmp_path, credentials_probe=lambda _: "test").check(environ)


def test_a_secrets_provider_satisfies_the_aws_target(tmp_path: Path) -> None:
    target = AwsTarget(
        repo_root=tmp_path, secrets_provider_url="default", credentials_probe=lambda _: "x"
    )
    target.check({})
    assert target.secrets_provider() == "default"


def test_the_aws_target_refuses_without_credentials(tmp_path: Path) -> None:
    target = AwsTarget(repo_root=tmp_path, credentials_probe=lambda _: None)
    with pytest.raises(UnavailableError) as raised:
        target.check({"PULUMI_CONFIG_PASSPHRASE": "p"})
    message = str(raised.value)
    assert "\n" not in message
    assert "AWS_ACCESS_KEY_ID" in message
    assert "AWS_PROFILE" in message


def test_credentials_in_the_environment_are_found_without_botocore() -> None:
    assert probe_aws_credentials({"AWS_ACCESS_KEY_ID": "AKIA"}) == "AWS_ACCESS_KEY_ID"
    assert probe_aws_credentials({"AWS_PROFILE": "dev"}) == "AWS_PROFILE"


def test_make_target_reads_org_and_region_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_ORG", "acme")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    target = make_target("aws", tmp_path)
    assert isinstance(target, AwsTarget)
    assert (target.org, target.region) == ("acme", "eu-central-1")
    explicit = make_target("aws", tmp_path, org="other", region="us-west-2")
    assert isinstance(explicit, AwsTarget)
    assert (explicit.org, explicit.region) == ("other", "us-west-2")
    assert isinstance(make_target("local", tmp_path), LocalTarget)
    with pytest.raises(ValueError, match="unknown target"):
        make_target("gcp", tmp_path)
