"""Upstream values are read only through the manifest, and secrets stay secret."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from shared.manifest import MANIFEST, Layer, Manifest, OutputSpec
from shared.references import (
    OrganizationError,
    UndeclaredReferenceError,
    UpstreamOutputs,
    stack_name,
)
from tooling.mock_engine import (
    PLACEHOLDER_LOCATION,
    ExportedValue,
    SynthesizingMocks,
    resolve,
    run_layer,
    use_mocks,
)

PRODUCER = Layer(
    "producer",
    "@team",
    "p",
    {"token_id": OutputSpec("t", secret=True), "plain_arn": OutputSpec("p")},
)
CONSUMER = Layer("consumer", "@team", "c", {}, consumes={"producer": ("token_id", "plain_arn")})
TEST_MANIFEST = Manifest(layers=(PRODUCER, CONSUMER))


def _resolve(output: pulumi.Output[Any]) -> tuple[Any, bool]:
    resolved = resolve(output)
    return resolved.value, resolved.secret


def _mocks_with(outputs: dict[str, dict[str, ExportedValue]]) -> None:
    use_mocks(
        SynthesizingMocks(PLACEHOLDER_LOCATION, outputs), project="serverless-consumer", stack="qa"
    )


def test_fully_qualified_stack_name() -> None:
    assert stack_name("acme", MANIFEST.layer("security"), "prod") == "acme/serverless-security/prod"


def test_values_come_from_the_producers_stack_of_the_same_name() -> None:
    _mocks_with(
        {
            "organization/serverless-producer/qa": {
                "plain_arn": ExportedValue("arn:x", False),
                "token_id": ExportedValue("t0k3n", False),
            }
        }
    )
    upstream = UpstreamOutputs(CONSUMER, manifest=TEST_MANIFEST)
    assert _resolve(upstream.require("plain_arn")) == ("arn:x", False)


def test_org_and_stack_are_configurable() -> None:
    _mocks_with({"acme/serverless-producer/shared": {"plain_arn": ExportedValue("arn:y", False)}})
    upstream = UpstreamOutputs(CONSUMER, org="acme", stack="shared", manifest=TEST_MANIFEST)
    assert _resolve(upstream.require("plain_arn")) == ("arn:y", False)


def test_a_secret_output_stays_secret_even_if_exported_plain() -> None:
    _mocks_with(
        {"organization/serverless-producer/qa": {"token_id": ExportedValue("t0k3n", False)}}
    )
    upstream = UpstreamOutputs(CONSUMER, manifest=TEST_MANIFEST)
    value, secret = _resolve(upstream.require("token_id"))
    assert value == "t0k3n"
    assert secret is True


def test_a_secret_exported_as_secret_arrives_secret() -> None:
    _mocks_with(
        {"organization/serverless-producer/qa": {"plain_arn": ExportedValue("arn:z", True)}}
    )
    upstream = UpstreamOutputs(CONSUMER, manifest=TEST_MANIFEST)
    assert _resolve(upstream.require("plain_arn")) == ("arn:z", True)


def test_a_key_the_manifest_does_not_declare_is_refused_with_the_fix() -> None:
    _mocks_with({})
    upstream = UpstreamOutputs(MANIFEST.layer("api"), stack="qa")
    with pytest.raises(UndeclaredReferenceError) as raised:
        upstream.require("s3_bucket_arn")
    message = str(raised.value)
    assert "layer 'api' reads 's3_bucket_arn'" in message
    assert "security.kms_key_arn" in message
    assert "`consumes`" in message


def test_one_reference_per_upstream_layer() -> None:
    # The upstream stacks exist (with no outputs): a reference to a missing one would fail
    # in the background, after the test.
    _mocks_with({f"organization/serverless-{name}/qa": {} for name in ("security", "storage")})
    upstream = UpstreamOutputs(MANIFEST.layer("compute"), stack="qa")
    assert upstream.reference("security") is upstream.reference("security")


def test_without_org_the_upstream_stacks_are_in_this_stacks_own_organization() -> None:
    # On Pulumi Cloud the engine tells the program its organization; the references follow it.
    use_mocks(
        SynthesizingMocks(
            PLACEHOLDER_LOCATION,
            {"acme/serverless-producer/qa": {"plain_arn": ExportedValue("arn:z", False)}},
        ),
        project="serverless-consumer",
        stack="qa",
        organization="acme",
    )
    upstream = UpstreamOutputs(CONSUMER, manifest=TEST_MANIFEST)
    assert upstream.org == "acme"
    assert _resolve(upstream.require("plain_arn")) == ("arn:z", False)


def test_the_file_backends_organization_on_pulumi_cloud_stops_with_the_fix() -> None:
    use_mocks(
        SynthesizingMocks(PLACEHOLDER_LOCATION, {}),
        project="serverless-consumer",
        stack="qa",
        organization="acme",
    )
    with pytest.raises(OrganizationError) as raised:
        UpstreamOutputs(CONSUMER, org="organization", manifest=TEST_MANIFEST)
    message = str(raised.value)
    assert "serverless-consumer:org is 'organization'" in message
    assert "Pulumi Cloud organization 'acme'" in message
    assert "pulumi config rm org" in message


def test_a_real_layer_on_pulumi_cloud_stops_before_declaring_any_resource(
    chain: dict[str, Any],
) -> None:
    mocks = SynthesizingMocks(PLACEHOLDER_LOCATION, {})
    with pytest.raises(OrganizationError, match="serverless-storage:org is 'organization'"):
        run_layer(
            MANIFEST.layer("storage"),
            config={"org": "organization"},
            upstream=chain,
            org="acme",
            mocks=mocks,
        )
    assert mocks.resources == [], "nothing may be declared before the check"
