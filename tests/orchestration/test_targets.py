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


def test_the_local_target_needs_no_confirmation_and_sets_a_region(tmp_path: Path) -> None:
    target = LocalTarget(repo_root=tmp_path)
    assert target.needs_confirmation is False
    assert target.backend_url() == f"file://{tmp_path}/.pulumi-state"
    assert target.environment()["PULUMI_CONFIG_PASSPHRASE"] == LOCAL_PASSPHRASE
    assert target.stack_config(MANIFEST.layer("api")) == {"aws:region": ConfigEntry("us-east-1")}
    target.check({})  # nothing is required from the environment
    target.prepare()
    assert (tmp_path / ".pulumi-state").is_dir()


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
