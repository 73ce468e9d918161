"""Compute layer: functions with logs, tracing and a live alias; the S3 trigger and its DLQ."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.components.serverless_function import EnvironmentMismatchError
from shared.manifest import MANIFEST, Layer, Manifest
from shared.naming import LIVE_ALIAS, RESULTS_PREFIX, UPLOAD_PREFIX
from tooling.local.functions import load_handler
from tooling.mock_engine import LayerRun, run_layer

FUNCTIONS = ("s3-processor", "api-handler")


def test_functions_use_a_current_runtime_on_arm64_with_seed_defaults(
    chain: dict[str, LayerRun],
) -> None:
    compute = chain["compute"]
    for name in FUNCTIONS:
        function = compute.named(name).inputs
        assert function["runtime"] == "python3.13"
        assert function["architectures"] == ["arm64"]
        assert function["memorySize"] == 128
        assert function["publish"] is True
        assert function["tracingConfig"] == {"mode": "Active"}
        assert function["kmsKeyArn"] == chain["security"].exports["kms_key_arn"].value


def test_memory_and_timeout_come_from_config(chain: dict[str, LayerRun]) -> None:
    run = run_layer(
        MANIFEST.layer("compute"),
        config={"processor_memory_mb": "512", "processor_timeout_seconds": "120"},
        upstream=chain,
    )
    assert run.named("s3-processor").inputs["memorySize"] == 512
    assert run.named("s3-processor").inputs["timeout"] == 120


def test_each_function_logs_json_to_its_own_encrypted_log_group(chain: dict[str, LayerRun]) -> None:
    compute = chain["compute"]
    for name in FUNCTIONS:
        function = compute.named(name)
        log_group = compute.named(f"{name}-logs").inputs
        assert log_group["name"] == f"/aws/lambda/{function.inputs['name']}"
        assert log_group["retentionInDays"] == 14
        assert log_group["kmsKeyId"] == chain["security"].exports["kms_key_arn"].value
        logging = function.inputs["loggingConfig"]
        assert logging["logFormat"] == "JSON"
        assert logging["logGroup"] == log_group["name"]


def test_roles_are_the_per_function_roles_of_the_security_layer(chain: dict[str, LayerRun]) -> None:
    security = chain["security"].export_values()
    compute = chain["compute"]
    assert compute.named("s3-processor").inputs["role"] == security["s3_processor_role_arn"]
    assert compute.named("api-handler").inputs["role"] == security["api_handler_role_arn"]


def test_environment_comes_from_upstream_outputs(chain: dict[str, LayerRun]) -> None:
    storage, security = chain["storage"].export_values(), chain["security"].export_values()
    processor_env = chain["compute"].named("s3-processor").inputs["environment"]["variables"]
    assert processor_env["BUCKET_NAME"] == storage["s3_bucket_name"]
    assert processor_env["IDEMPOTENCY_TABLE_NAME"] == storage["idempotency_table_name"]
    assert processor_env["UPLOAD_PREFIX"] == UPLOAD_PREFIX
    assert processor_env["RESULTS_PREFIX"] == RESULTS_PREFIX
    api_env = chain["compute"].named("api-handler").inputs["environment"]["variables"]
    assert api_env["SECRET_ARN"] == security["secrets_manager_arn"]
    assert api_env["CORS_ALLOWED_ORIGINS"] == "", "no CORS origin unless configured"


def test_cors_origins_are_configuration(chain: dict[str, LayerRun]) -> None:
    run = run_layer(
        MANIFEST.layer("compute"),
        config={"cors_allowed_origins": '["https://app.example.com", "https://admin.example.com"]'},
        upstream=chain,
    )
    env = run.named("api-handler").inputs["environment"]["variables"]
    assert env["CORS_ALLOWED_ORIGINS"] == "https://app.example.com,https://admin.example.com"


def test_live_alias_points_at_the_published_version(chain: dict[str, LayerRun]) -> None:
    compute = chain["compute"]
    for name in FUNCTIONS:
        alias = compute.named(f"{name}-{LIVE_ALIAS}").inputs
        function = compute.named(name)
        assert alias["name"] == LIVE_ALIAS
        assert alias["functionName"] == function.outputs["name"]
        assert alias["functionVersion"] == function.outputs["version"]


def test_failed_async_events_retry_then_go_to_the_dead_letter_queue(
    chain: dict[str, LayerRun],
) -> None:
    invoke_config = chain["compute"].named("s3-processor-async-invoke").inputs
    assert invoke_config["qualifier"] == LIVE_ALIAS
    assert invoke_config["maximumRetryAttempts"] == 2
    assert invoke_config["destinationConfig"] == {
        "onFailure": {"destination": chain["storage"].exports["dead_letter_queue_arn"].value}
    }


def test_s3_may_invoke_only_the_processor_alias_for_this_bucket_and_account(
    chain: dict[str, LayerRun],
) -> None:
    permission = chain["compute"].named("s3-invoke-processor").inputs
    assert permission["principal"] == "s3.amazonaws.com"
    assert permission["qualifier"] == LIVE_ALIAS
    assert permission["sourceArn"] == chain["storage"].exports["s3_bucket_arn"].value
    assert permission["sourceAccount"] == "123456789012"


def test_notification_fires_on_uploads_only_and_invokes_the_alias(
    chain: dict[str, LayerRun],
) -> None:
    compute = chain["compute"]
    notification = compute.named("upload-notification").inputs
    assert notification["bucket"] == chain["storage"].exports["s3_bucket_name"].value
    (target,) = notification["lambdaFunctions"]
    assert target["lambdaFunctionArn"] == compute.named(f"s3-processor-{LIVE_ALIAS}").outputs["arn"]
    assert target["events"] == ["s3:ObjectCreated:*"]
    assert target["filterPrefix"] == UPLOAD_PREFIX


def test_code_is_the_reproducible_archive_of_lambdas(chain: dict[str, LayerRun]) -> None:
    first = chain["compute"].named("s3-processor").inputs["sourceCodeHash"]
    again = run_layer(MANIFEST.layer("compute"), upstream=chain)
    assert again.named("s3-processor").inputs["sourceCodeHash"] == first
    assert chain["compute"].named("api-handler").inputs["handler"] == "handler.lambda_handler"


def test_processor_concurrency_is_bounded_and_the_api_handler_is_bounded_by_the_api(
    chain: dict[str, LayerRun],
) -> None:
    compute = chain["compute"]
    assert compute.named("s3-processor").inputs["reservedConcurrentExecutions"] == 10
    assert "reservedConcurrentExecutions" not in compute.named("api-handler").inputs
    assert chain["api"].named("all-methods").inputs["settings"]["throttlingRateLimit"] == 100


def _deployed_variables(run: LayerRun, function: str) -> dict[str, object]:
    """The environment variables of the one function the layer deploys from function.zip."""
    (deployed,) = [
        resource
        for resource in run.of_type("aws:lambda/function:Function")
        if resource.inputs["code"].path.endswith(f"{function}.zip")
    ]
    variables: dict[str, object] = (deployed.inputs.get("environment") or {}).get("variables") or {}
    return variables


def test_each_function_gets_exactly_the_environment_the_manifest_declares(
    chain: dict[str, LayerRun],
) -> None:
    for layer in MANIFEST.layers:
        for function in layer.functions:
            variables = _deployed_variables(chain[layer.name], function.name)
            assert set(variables) == set(function.environment), function.name


def test_a_function_given_an_undeclared_variable_stops_the_program(
    chain: dict[str, LayerRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    compute = MANIFEST.layer("compute")
    api = compute.function("api_handler")
    narrowed = replace(api, environment=api.environment[1:])
    shrunk = replace(compute, functions=(compute.function("s3_processor"), narrowed))
    original = Manifest.layer

    def layer(manifest: Manifest, name: str) -> Layer:
        return shrunk if name == "compute" else original(manifest, name)

    monkeypatch.setattr(Manifest, "layer", layer)
    with pytest.raises(EnvironmentMismatchError, match=r"undeclared: \['BUCKET_NAME'\]"):
        run_layer(compute, upstream=chain)


def test_every_variable_a_handler_requires_is_declared(
    chain: dict[str, LayerRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each handler reads its configuration at import and fails naming a missing variable:
    # importing it with exactly what its layer sets (and what Lambda itself sets) must work.
    for variable in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.setenv(variable, "us-east-1")
    for layer in MANIFEST.layers:
        for function in layer.functions:
            variables = _deployed_variables(chain[layer.name], function.name)
            environment = {key: str(value) for key, value in variables.items()}
            assert load_handler(function.name, environment).lambda_handler, function.name
