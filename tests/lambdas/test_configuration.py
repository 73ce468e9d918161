"""Each function reads its configuration at cold start (lambdas/common/function_config.py): a
missing or invalid variable fails the cold start with an error naming it."""

from __future__ import annotations

import pytest

from tests.lambdas.support import FunctionLoader

# The fixture that loads each function with the compute layer's environment, left set.
LOADED = {"api_handler": "api", "s3_processor": "processor"}


@pytest.mark.parametrize(
    ("function", "missing", "blank"),
    [
        ("api_handler", "BUCKET_NAME", True),
        ("api_handler", "RESULTS_PREFIX", True),
        ("api_handler", "SECRET_ARN", True),
        ("api_handler", "SECRET_CACHE_SECONDS", True),
        ("api_handler", "MAX_BODY_BYTES", True),
        ("api_handler", "APP_VERSION", True),
        ("api_handler", "POWERTOOLS_METRICS_NAMESPACE", True),
        ("api_handler", "BUCKET_NAME", False),
        ("s3_processor", "BUCKET_NAME", False),
        ("s3_processor", "UPLOAD_PREFIX", False),
        ("s3_processor", "RESULTS_PREFIX", False),
        ("s3_processor", "IDEMPOTENCY_TABLE_NAME", False),
        ("s3_processor", "IDEMPOTENCY_TTL_SECONDS", False),
    ],
)
def test_a_missing_variable_fails_the_cold_start_naming_it(
    request: pytest.FixtureRequest,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    missing: str,
    blank: bool,
) -> None:
    request.getfixturevalue(LOADED[function])  # the function starts with its whole environment
    if blank:
        monkeypatch.setenv(missing, "  ")  # set but blank counts as missing
    else:
        monkeypatch.delenv(missing)
    with pytest.raises(
        RuntimeError, match=rf"missing required environment variable\(s\) {missing} "
    ):
        loader.load(function)


@pytest.mark.parametrize(
    ("function", "name", "value", "message"),
    [
        ("api_handler", "MAX_BODY_BYTES", "1MB", "MAX_BODY_BYTES must be a positive whole number"),
        (
            "api_handler",
            "SECRET_CACHE_SECONDS",
            "-5",
            "SECRET_CACHE_SECONDS must be a positive whole number",
        ),
        (
            "api_handler",
            "CORS_ALLOWED_ORIGINS",
            "https://ok.example,https://bad.example/",
            "CORS_ALLOWED_ORIGINS",
        ),
        (
            "s3_processor",
            "IDEMPOTENCY_TTL_SECONDS",
            "one day",
            "IDEMPOTENCY_TTL_SECONDS must be a positive whole",
        ),
        (
            "s3_processor",
            "IDEMPOTENCY_TTL_SECONDS",
            "0",
            "IDEMPOTENCY_TTL_SECONDS must be a positive whole",
        ),
        ("s3_processor", "RESULTS_PREFIX", "uploads/results/", "must not contain each other"),
    ],
)
def test_an_invalid_variable_fails_the_cold_start_naming_it(
    request: pytest.FixtureRequest,
    loader: FunctionLoader,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    name: str,
    value: str,
    message: str,
) -> None:
    request.getfixturevalue(LOADED[function])  # the function starts with its whole environment
    monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=message):
        loader.load(function)
