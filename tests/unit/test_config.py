"""Bad configuration fails before any resource is declared, naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from shared.config import ConfigError, LayerConfig
from shared.manifest import MANIFEST
from tooling.mock_engine import (
    PLACEHOLDER_LOCATION,
    LayerRun,
    SynthesizingMocks,
    run_layer,
    use_mocks,
)

PROJECT = "serverless-compute"


def _config_with(
    values: dict[str, str], secret_keys: tuple[str, ...] = (), project_file: Path | None = None
) -> LayerConfig:
    use_mocks(SynthesizingMocks(PLACEHOLDER_LOCATION, {}), project=PROJECT, stack="dev")
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{key}": value for key, value in values.items()},
        [f"{PROJECT}:{key}" for key in secret_keys],
    )
    return LayerConfig(MANIFEST.layer("compute"), project_file=project_file)


def test_defaults_come_from_the_layers_pulumi_yaml() -> None:
    config = _config_with({})
    assert config.integer("processor_memory_mb", minimum=128, maximum=10240) == 128
    assert config.log_retention_days("log_retention_days") == 14
    assert config.string_list("cors_allowed_origins") == []


def test_set_values_override_defaults() -> None:
    config = _config_with(
        {"processor_memory_mb": "256", "cors_allowed_origins": '["https://a.example"]'}
    )
    assert config.integer("processor_memory_mb", minimum=128, maximum=10240) == 256
    assert config.string_list("cors_allowed_origins") == ["https://a.example"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "processor_memory_mb",
            "lots",
            "serverless-compute:processor_memory_mb must be a whole number, got 'lots'",
        ),
        (
            "processor_memory_mb",
            "64",
            "serverless-compute:processor_memory_mb must be between 128 and 10240, got 64",
        ),
        (
            "log_retention_days",
            "15",
            "serverless-compute:log_retention_days must be one of 1, 3, 5",
        ),
        (
            "runtime",
            "python2.7",
            "serverless-compute:runtime must be one of python3.13, python3.12",
        ),
        (
            "cors_allowed_origins",
            "https://a.example",
            "serverless-compute:cors_allowed_origins must be a list of strings",
        ),
    ],
)
def test_invalid_values_name_the_key_and_the_fix(
    key: str, value: str, message: str, chain: dict[str, LayerRun]
) -> None:
    with pytest.raises(ConfigError) as raised:
        run_layer(MANIFEST.layer("compute"), config={key: value}, upstream=chain)
    text = str(raised.value)
    assert message in text
    assert f"pulumi config set {key}" in text


def test_a_missing_required_key_names_it(tmp_path: Path) -> None:
    project_file = tmp_path / "Pulumi.yaml"
    project_file.write_text(
        "name: serverless-compute\nruntime: python\nconfig:\n"
        "  owner_email:\n    type: string\n    description: who is paged\n",
        encoding="utf-8",
    )
    config = _config_with({}, project_file=project_file)
    with pytest.raises(ConfigError, match="serverless-compute:owner_email is required but not set"):
        config.string("owner_email")


def test_reading_an_undeclared_key_is_a_programming_error() -> None:
    config = _config_with({})
    with pytest.raises(ConfigError, match="does not declare; declare it there"):
        config.integer("undeclared_limit", minimum=0, maximum=1)


def test_a_key_read_with_the_wrong_type_is_refused() -> None:
    config = _config_with({})
    with pytest.raises(ConfigError, match=r"declared as integer in \S+ but read as boolean"):
        config.boolean("max_body_bytes")


def test_bad_boolean_in_a_real_layer(chain: dict[str, LayerRun]) -> None:
    with pytest.raises(
        ConfigError, match="serverless-storage:force_destroy must be true or false, got 'yes'"
    ):
        run_layer(MANIFEST.layer("storage"), config={"force_destroy": "yes"}, upstream=chain)


def test_bad_alarm_email_in_a_real_layer(chain: dict[str, LayerRun]) -> None:
    with pytest.raises(
        ConfigError, match="alarm_emails holds 'oncall', which is not an e-mail address"
    ):
        run_layer(
            MANIFEST.layer("observability"), config={"alarm_emails": '["oncall"]'}, upstream=chain
        )


def test_a_plaintext_value_for_a_secret_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="serverless-security:api_key must be set as a secret"):
        run_layer(MANIFEST.layer("security"), config={"api_key": "visible"})


def test_reserved_concurrency_defaults_and_the_no_reservation_value() -> None:
    assert _config_with({}).reserved_concurrency("processor_reserved_concurrency") == 10
    config = _config_with({"processor_reserved_concurrency": "-1"})
    assert config.reserved_concurrency("processor_reserved_concurrency") is None
    # 0 is Lambda's own "never run" setting: valid, an emergency stop.
    config = _config_with({"processor_reserved_concurrency": "0"})
    assert config.reserved_concurrency("processor_reserved_concurrency") == 0
    # No fixed upper bound: Lambda's depends on the account, checked before a deploy.
    config = _config_with({"processor_reserved_concurrency": "5000"})
    assert config.reserved_concurrency("processor_reserved_concurrency") == 5000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-2", "must be -1 (no reservation) or a reservation of 0 or more, got -2"),
        ("ten", "must be a whole number, got 'ten'"),
    ],
)
def test_a_bad_reservation_names_the_key(value: str, message: str) -> None:
    config = _config_with({"processor_reserved_concurrency": value})
    with pytest.raises(ConfigError) as raised:
        config.reserved_concurrency("processor_reserved_concurrency")
    assert f"serverless-compute:processor_reserved_concurrency {message}" in str(raised.value)
    assert "pulumi config set processor_reserved_concurrency -1" in str(raised.value)


def test_a_reservation_key_must_say_so_in_its_name() -> None:
    with pytest.raises(ConfigError, match="must end in '_reserved_concurrency'"):
        _config_with({}).reserved_concurrency("processor_memory_mb")


def test_no_reservation_leaves_the_function_in_the_shared_pool(chain: dict[str, LayerRun]) -> None:
    run = run_layer(
        MANIFEST.layer("compute"),
        config={"processor_reserved_concurrency": "-1"},
        upstream=chain,
    )
    assert "reservedConcurrentExecutions" not in run.named("s3-processor").inputs
    security = run_layer(MANIFEST.layer("security"), config={"rotation_reserved_concurrency": "-1"})
    assert "reservedConcurrentExecutions" not in security.named("secret-rotation").inputs
