"""The manifest is consistent, and refuses the mistakes that would break a deployment."""

from __future__ import annotations

import pytest

from shared.manifest import MANIFEST, Layer, Manifest, ManifestError, OutputSpec


def _layer(
    name: str, outputs: dict[str, OutputSpec], consumes: dict[str, tuple[str, ...]] | None = None
) -> Layer:
    return Layer(
        name=name, owner="@team", description=name, outputs=outputs, consumes=consumes or {}
    )


def test_deployment_order_is_security_storage_compute_api_observability() -> None:
    assert MANIFEST.order == ("security", "storage", "compute", "api", "observability")


def test_every_layer_comes_after_the_layers_it_consumes_from() -> None:
    for position, name in enumerate(MANIFEST.order):
        for upstream in MANIFEST.layer(name).depends_on:
            assert MANIFEST.order.index(upstream) < position, f"{name} before {upstream}"


def test_dependencies_derive_from_consumed_keys() -> None:
    assert MANIFEST.layer("compute").depends_on == ("security", "storage")
    assert MANIFEST.layer("security").depends_on == ()


def test_consumers_and_downstream_layers() -> None:
    assert MANIFEST.consumers_of("compute") == {
        "api": ("api_handler_function_name", "api_handler_alias_invoke_arn"),
        "observability": ("s3_processor_function_name", "api_handler_function_name"),
    }
    assert MANIFEST.downstream_of("storage") == ("compute", "api", "observability")
    assert MANIFEST.downstream_of("observability") == ()


def test_each_key_has_one_producer() -> None:
    assert MANIFEST.producer_of("kms_key_arn").name == "security"
    with pytest.raises(ManifestError, match="no layer promises"):
        MANIFEST.producer_of("nothing_arn")


def test_seed_outputs_are_all_promised_by_their_owning_layer() -> None:
    owners = {
        "s3_bucket_name": "storage",
        "s3_bucket_arn": "storage",
        "api_gateway_url": "api",
        "s3_processor_lambda_arn": "compute",
        "api_handler_lambda_arn": "compute",
        "secrets_manager_arn": "security",
        "sns_topic_arn": "observability",
        "health_check_url": "api",
        "process_endpoint_url": "api",
        # One role per function replaces the seed's single lambda_role_arn.
        "s3_processor_role_arn": "security",
        "api_handler_role_arn": "security",
    }
    for key, layer in owners.items():
        assert MANIFEST.producer_of(key).name == layer


def test_unknown_layer_names_the_known_ones() -> None:
    with pytest.raises(ManifestError, match="security, storage, compute, api, observability"):
        MANIFEST.layer("network")


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            (_layer("a", {"BadKey": OutputSpec("x")}),),
            "must be snake_case ending in _arn, _name, _url or _id",
        ),
        ((_layer("a", {"thing_size": OutputSpec("x")}),), "ending in _arn"),
        (
            (_layer("a", {"x_arn": OutputSpec("x")}), _layer("b", {"x_arn": OutputSpec("x")})),
            "promised by both 'a' and 'b'",
        ),
        (
            (
                _layer("a", {"x_arn": OutputSpec("x")}, {"b": ("y_arn",)}),
                _layer("b", {"y_arn": OutputSpec("y")}),
            ),
            "not declared before it",
        ),
        (
            (_layer("a", {"x_arn": OutputSpec("x")}), _layer("b", {}, {"a": ("z_arn",)})),
            "consumes a.z_arn, which 'a' does not promise",
        ),
        ((_layer("a", {}), _layer("a", {})), "declared twice"),
    ],
)
def test_inconsistent_manifests_are_refused(layers: tuple[Layer, ...], message: str) -> None:
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Manifest(layers=layers)
