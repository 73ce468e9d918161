"""The API handler on moto: every route, every error status, CORS, the secret cache, and no
exception text or traceback in any response. Events carry paths percent-encoded, as a REST API
delivers them (see events/README.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

from shared.api_routes import APPLICATION_ROUTES, Route
from shared.manifest import REPO_ROOT
from shared.packaging import LAMBDAS_DIR
from tests.lambdas.conftest import API_ENV, CORS_ORIGIN, MAX_BODY_BYTES
from tests.lambdas.support import (
    API_KEY,
    NAMES,
    FunctionLoader,
    InjectedAnswers,
    api_event,
    object_path,
)
from tooling.function_fixtures import api_environment
from tooling.local.functions import LambdaContext

JSON = {"Content-Type": "application/json"}
REQUEST_ID = "a1b2c3d4-0000-4000-8000-000000000001"

# What must never reach a caller: Python's error vocabulary and the secret.
LEAK_MARKERS = ("Traceback", 'File "', "Error:", "Exception", "botocore", API_KEY)


def call(api: ModuleType, context: LambdaContext, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the handler and check what every response must satisfy."""
    response: dict[str, Any] = api.lambda_handler(event, context)
    assert type(response["statusCode"]) is int
    body = response["body"]
    for marker in LEAK_MARKERS:
        assert marker not in body, f"{marker!r} leaked into a response: {body}"
    return response


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    headers = response["multiValueHeaders"]
    assert headers["Content-Type"] == ["application/json"]
    document: dict[str, Any] = json.loads(response["body"])
    return document


def header(response: dict[str, Any], name: str) -> str | None:
    values = response["multiValueHeaders"].get(name)
    return ",".join(values) if values else None


def process_event(
    body: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    return api_event(
        "POST", "/process", body=body, headers=JSON if headers is None else headers, **kwargs
    )


def _example_path(route: Route) -> str:
    """A request path `route` serves: each path parameter filled with an encoded value."""
    return re.sub(r"\{[^}]+\}", "uploads%2Fexample.csv", route.path)


@pytest.mark.parametrize("route", APPLICATION_ROUTES, ids=lambda route: route.key)
def test_every_declared_route_reaches_its_function(
    api: ModuleType, api_context: LambdaContext, route: Route
) -> None:
    response = call(api, api_context, api_event(route.method, _example_path(route)))
    # Whatever the function answers (a GET /objects/... for no result is its own 404), the
    # resolver's answer for an unregistered route or method is not it.
    assert response["statusCode"] != 405, response["body"]
    assert json.loads(response["body"]).get("message") != "no such route"


def _lambdas_copy(tmp_path: Path, table_edit: str, handler_edit: tuple[str, str] | None) -> Path:
    """lambdas/api_handler and lambdas/common copied under tmp_path, with `table_edit` appended
    to the route table's declaration and `handler_edit` (old, new) applied to the handler."""
    for folder in ("api_handler", "common"):
        shutil.copytree(LAMBDAS_DIR / folder, tmp_path / folder)
    table = tmp_path / "common" / "api_routes.py"
    text = table.read_text(encoding="utf-8")
    marker = "\n\ndef preflight_routes("
    table.write_text(text.replace(marker, f"\n{table_edit}{marker}", 1), encoding="utf-8")
    if handler_edit is not None:
        handler = tmp_path / "api_handler" / "handler.py"
        old, new = handler_edit
        source = handler.read_text(encoding="utf-8")
        assert old in source
        handler.write_text(source.replace(old, new, 1), encoding="utf-8")
    return tmp_path


_HEALTH_FUNCTION = '    "GET /health": health,\n'
_EXTRA_ROUTE = 'APPLICATION_ROUTES += (Route("GET", "/extra/{id}", "An added route"),)'


def test_a_new_route_is_a_table_entry_and_its_function(
    api: ModuleType, api_context: LambdaContext, tmp_path: Path
) -> None:
    lambdas = _lambdas_copy(
        tmp_path,
        _EXTRA_ROUTE,
        (_HEALTH_FUNCTION, _HEALTH_FUNCTION + '    "GET /extra/{id}": health,\n'),
    )
    extended = FunctionLoader().load("api_handler", lambdas)

    assert call(extended, api_context, api_event("GET", "/extra/7"))["statusCode"] == 200
    assert call(extended, api_context, api_event("GET", "/extra/7/8"))["statusCode"] == 404
    response = call(extended, api_context, api_event("DELETE", "/extra/7"))
    assert header(response, "Allow") == "GET, OPTIONS"


@pytest.mark.parametrize(
    ("table_edit", "handler_edit", "message"),
    [
        (_EXTRA_ROUTE, None, r"no function for \['GET /extra/\{id\}'\]"),
        (
            "APPLICATION_ROUTES = APPLICATION_ROUTES[1:]",
            None,
            r"no declared route for \['GET /health'\]",
        ),
    ],
    ids=["route-without-function", "function-without-route"],
)
def test_the_table_and_the_functions_must_agree_at_cold_start(
    api: ModuleType, tmp_path: Path, table_edit: str, handler_edit: None, message: str
) -> None:
    lambdas = _lambdas_copy(tmp_path, table_edit, handler_edit)
    with pytest.raises(RuntimeError, match=message):
        FunctionLoader().load("api_handler", lambdas)


# GET /health


def test_health_reports_status_version_and_request_id_without_aws(
    api: ModuleType, api_context: LambdaContext
) -> None:
    response = call(api, api_context, api_event("GET", "/health"))

    assert response["statusCode"] == 200
    assert body_of(response) == {
        "status": "ok",
        "version": API_ENV["APP_VERSION"],
        "requestId": REQUEST_ID,
    }
    # No AWS client was even created, let alone called.
    assert api.s3_client.cache_info().currsize == 0
    assert api.secrets_provider.cache_info().currsize == 0


def test_configuration_is_read_once_at_cold_start(
    api: ModuleType, api_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_VERSION", "changed-after-cold-start")
    response = call(api, api_context, api_event("GET", "/health"))
    assert body_of(response)["version"] == API_ENV["APP_VERSION"]


def test_health_ignores_a_trailing_slash(api: ModuleType, api_context: LambdaContext) -> None:
    assert call(api, api_context, api_event("GET", "/health/"))["statusCode"] == 200


# CORS and the headers every response carries

SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
OTHER_ORIGIN = "https://evil.example"


def preflight_event(path: str, origin: str, method: str = "POST") -> dict[str, Any]:
    """What a browser sends before a cross-origin request that is not "simple"."""
    return api_event(
        "OPTIONS",
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,x-amz-date",
        },
    )


def assert_standard_headers(response: dict[str, Any], *, vary_origin: bool) -> None:
    """The security headers exactly once each, and `Vary: Origin` when the CORS answer depends
    on the request's origin."""
    headers = {name.lower(): values for name, values in response["multiValueHeaders"].items()}
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == [value], (name, response["multiValueHeaders"])
    if vary_origin:
        assert headers.get("vary") == ["Origin"], response["multiValueHeaders"]
    else:
        assert "vary" not in headers, response["multiValueHeaders"]


def test_cors_headers_only_for_a_configured_origin(
    api: ModuleType, api_context: LambdaContext
) -> None:
    allowed = call(api, api_context, api_event("GET", "/health", headers={"Origin": CORS_ORIGIN}))
    other = call(api, api_context, api_event("GET", "/health", headers={"Origin": OTHER_ORIGIN}))

    assert header(allowed, "Access-Control-Allow-Origin") == CORS_ORIGIN
    assert header(other, "Access-Control-Allow-Origin") is None


@pytest.mark.parametrize("path", ["/health", "/process", "/objects/uploads%2Fa%20b.csv"])
def test_a_preflight_from_a_configured_origin_is_allowed_with_the_standard_headers(
    api: ModuleType, api_context: LambdaContext, path: str
) -> None:
    preflight = call(api, api_context, preflight_event(path, CORS_ORIGIN))

    assert preflight["statusCode"] == 204
    assert preflight["body"] == ""
    assert header(preflight, "Access-Control-Allow-Origin") == CORS_ORIGIN
    assert "POST" in (header(preflight, "Access-Control-Allow-Methods") or "")
    assert "Authorization" in (header(preflight, "Access-Control-Allow-Headers") or "")
    assert header(preflight, "Access-Control-Max-Age") == "300"
    assert_standard_headers(preflight, vary_origin=True)


def test_a_preflight_from_another_origin_gets_no_allow_origin(
    api: ModuleType, api_context: LambdaContext
) -> None:
    preflight = call(api, api_context, preflight_event("/process", OTHER_ORIGIN))

    # Without Access-Control-Allow-Origin the browser fails the preflight and sends nothing.
    assert header(preflight, "Access-Control-Allow-Origin") is None
    assert_standard_headers(preflight, vary_origin=True)


def _explode() -> bytes:
    raise RuntimeError("internal detail")


# One request per kind of answer: each route's success, each error status, the preflight.
_RESPONSE_KINDS: dict[str, tuple[str, str, str | None, int]] = {
    "health 200": ("GET", "/health", None, 200),
    "preflight 204": ("OPTIONS", "/process", None, 204),
    "process 200": ("POST", "/process", '{"name":"n","data":{}}', 200),
    "process 400": ("POST", "/process", '{"name":"n","data":', 400),
    "process 422": ("POST", "/process", '{"name":5,"data":{}}', 422),
    "process 500": ("POST", "/process", "explode", 500),
    "objects 400": ("GET", "/objects/uploads%2F%FF", None, 400),
    "objects 404": ("GET", "/objects/uploads%2Fnone.csv", None, 404),
    "route 404": ("GET", "/nothing", None, 404),
    "method 405": ("DELETE", "/health", None, 405),
}


@pytest.mark.parametrize("origin", [CORS_ORIGIN, OTHER_ORIGIN, None], ids=["ours", "other", "none"])
@pytest.mark.parametrize("kind", sorted(_RESPONSE_KINDS))
def test_every_response_carries_the_security_headers_and_vary_origin(
    api: ModuleType,
    api_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    origin: str | None,
) -> None:
    method, path, body, status = _RESPONSE_KINDS[kind]
    if body == "explode":
        monkeypatch.setattr(api, "_api_key", _explode)
        body = '{"name":"n","data":{}}'
    headers = {**JSON, **({"Origin": origin} if origin else {})}
    response = call(api, api_context, api_event(method, path, body=body, headers=headers))

    assert response["statusCode"] == status, response["body"]
    expected_origin = CORS_ORIGIN if origin == CORS_ORIGIN else None
    assert header(response, "Access-Control-Allow-Origin") == expected_origin
    # With a list of origins the answer depends on Origin, whether it was echoed or not.
    assert_standard_headers(response, vary_origin=True)


def test_the_last_resort_500_carries_the_standard_headers(
    api: ModuleType, api_context: LambdaContext
) -> None:
    response = api.lambda_handler({"unexpected": "shape"}, api_context)
    assert response["statusCode"] == 500
    headers = {name.lower(): value for name, value in response["headers"].items()}
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["vary"] == "Origin"
    assert "multiValueHeaders" not in response  # one place per name: API Gateway merges both


def test_an_existing_vary_is_kept_and_origin_added_once(api: ModuleType) -> None:
    response = api._with_standard_headers(
        {
            "statusCode": 200,
            "body": "",
            "multiValueHeaders": {"vary": ["Accept-Encoding"], "cache-control": ["max-age=60"]},
            "headers": {"Vary": "Accept"},
        }
    )
    assert response["multiValueHeaders"] == {
        "Cache-Control": ["no-store"],
        "X-Content-Type-Options": ["nosniff"],
        "Vary": ["Accept-Encoding, Origin"],
    }
    assert response["headers"] == {}
    again = api._with_standard_headers(response)
    assert again["multiValueHeaders"]["Vary"] == ["Accept-Encoding, Origin"]


def test_no_cors_headers_and_no_preflight_when_no_origin_is_configured(
    api: ModuleType, api_context: LambdaContext, loader: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "")
    without_cors = loader.load("api_handler")
    response = call(
        without_cors, api_context, api_event("GET", "/health", headers={"Origin": CORS_ORIGIN})
    )
    preflight = call(without_cors, api_context, preflight_event("/process", CORS_ORIGIN))

    assert response["statusCode"] == 200
    assert not any(name.startswith("Access-Control-") for name in response["multiValueHeaders"])
    assert_standard_headers(response, vary_origin=False)
    # The api layer declares OPTIONS on every path; without CORS it is just another method.
    _error(preflight, 405, "method_not_allowed")
    assert header(preflight, "Allow") == "POST"
    assert header(preflight, "Access-Control-Allow-Origin") is None
    assert_standard_headers(preflight, vary_origin=False)


@pytest.mark.parametrize(
    ("origins", "vary_origin"), [("*", False), (f"{CORS_ORIGIN},*", True)], ids=["any", "mixed"]
)
def test_vary_origin_unless_every_origin_gets_the_same_answer(
    api: ModuleType,
    api_context: LambdaContext,
    loader: Any,
    monkeypatch: pytest.MonkeyPatch,
    origins: str,
    vary_origin: bool,
) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", origins)
    handler = loader.load("api_handler")
    response = call(
        handler, api_context, api_event("GET", "/health", headers={"Origin": OTHER_ORIGIN})
    )
    preflight = call(handler, api_context, preflight_event("/health", OTHER_ORIGIN, "GET"))

    for answer in (response, preflight):
        assert header(answer, "Access-Control-Allow-Origin") == "*"
        assert_standard_headers(answer, vary_origin=vary_origin)


# POST /process


def test_process_signs_the_canonical_body_with_the_secret(
    api: ModuleType, api_context: LambdaContext
) -> None:
    request = {"name": "invoice", "data": {"b": [1, 2.5, None], "a": {"z": True, "é": "ü"}}}
    response = call(api, api_context, process_event(json.dumps(request, indent=2)))

    assert response["statusCode"] == 200
    result = body_of(response)
    canonical = json.dumps(
        request, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert result == {
        "name": "invoice",
        "fieldCount": 2,
        "canonicalSha256": hashlib.sha256(canonical).hexdigest(),
        "signature": hmac.new(API_KEY.encode(), canonical, hashlib.sha256).hexdigest(),
        "signatureAlgorithm": "HMAC-SHA256",
        "requestId": REQUEST_ID,
    }


def test_process_accepts_a_base64_encoded_utf8_body(
    api: ModuleType, api_context: LambdaContext
) -> None:
    body = base64.b64encode(json.dumps({"name": "b64", "data": {}}).encode()).decode()
    response = call(api, api_context, process_event(body, is_base64_encoded=True))
    assert response["statusCode"] == 200


def test_process_accepts_a_utf8_charset_parameter(
    api: ModuleType, api_context: LambdaContext
) -> None:
    event = process_event(
        '{"name":"n","data":{}}', {"content-type": "Application/JSON; charset=UTF-8"}
    )
    assert call(api, api_context, event)["statusCode"] == 200


def test_the_secret_is_fetched_once_across_many_warm_requests(
    api: ModuleType, api_context: LambdaContext
) -> None:
    counter = InjectedAnswers(api.secrets_provider().client, "GetSecretValue")

    statuses = {
        call(api, api_context, process_event(json.dumps({"name": f"n{i}", "data": {"i": i}})))[
            "statusCode"
        ]
        for i in range(50)
    }

    assert statuses == {200}
    assert counter.sends == 1


def test_the_secret_is_fetched_again_after_the_cache_period(
    api: ModuleType, api_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = InjectedAnswers(api.secrets_provider().client, "GetSecretValue")
    event = process_event('{"name":"n","data":{}}')
    call(api, api_context, event)
    call(api, api_context, event)

    # Powertools' cache compares with datetime.now(); move "now" past SECRET_CACHE_SECONDS.
    later = datetime.now() + timedelta(seconds=int(API_ENV["SECRET_CACHE_SECONDS"]) + 1)

    class _Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return later

    monkeypatch.setattr("aws_lambda_powertools.utilities.parameters.base.datetime", _Later)
    call(api, api_context, event)
    call(api, api_context, event)

    assert counter.sends == 2


# Errors


def _error(response: dict[str, Any], status: int, error: str) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    body = body_of(response)
    assert body["error"] == error
    assert body["requestId"] == REQUEST_ID
    assert body["message"]
    return body


@pytest.mark.parametrize(
    ("body", "is_base64_encoded", "error"),
    [
        ("{not json", False, "invalid_json"),
        ('{"name": "x", "data": {}', False, "invalid_json"),
        ("", False, "invalid_json"),
        ('{"name": "x", "name": "y", "data": {}}', False, "invalid_json"),
        ('{"name": "x", "data": {"v": NaN}}', False, "invalid_json"),
        ('{"name": "x", "data": {"v": ' + "9" * 5000 + "}}", False, "invalid_json"),
        ("[" * 100_000 + "]" * 100_000, False, "invalid_json"),
        ('{"name": "\ud800", "data": {}}', False, "invalid_encoding"),
        (base64.b64encode(b'{"name": "\xff\xfe", "data": {}}').decode(), True, "invalid_encoding"),
        (base64.b64encode(b"\xc3\x28\xa0\xa1").decode(), True, "invalid_encoding"),
        ("not base64!", True, "invalid_body"),
    ],
    ids=[
        "malformed",
        "truncated",
        "empty",
        "duplicate-key",
        "nan",
        "huge-integer",
        "deep-nesting",
        "lone-surrogate",
        "non-utf8-in-string",
        "non-utf8-bytes",
        "bad-base64",
    ],
)
def test_a_body_that_is_not_utf8_json_is_a_400(
    api: ModuleType, api_context: LambdaContext, body: str, is_base64_encoded: bool, error: str
) -> None:
    response = call(api, api_context, process_event(body, is_base64_encoded=is_base64_encoded))
    _error(response, 400, error)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"name": "x", "data": {"v": 1e999}}', "too large for a double"),
        ('{"name": "x", "data": {"v": -1e999}}', "too large for a double"),
        ('{"name": "x", "data": {"a": [{"b": [1.5, 1E400]}]}}', "too large for a double"),
        ('{"name": "\\ud800", "data": {}}', "lone UTF-16 surrogate"),
        ('{"name": "x", "data": {"\\udfff": 1}}', "lone UTF-16 surrogate"),
        ('{"name": "x", "data": {"a": [["ok", "x\\ud800"]]}}', "lone UTF-16 surrogate"),
        ('{"name": "x", "data": {"v": "\\udc00\\ud800"}}', "lone UTF-16 surrogate"),
        ('{"name": "x", "data": {"\\ud800": 1e999}}', "too large for a double"),
        ('"\\ud800"', "lone UTF-16 surrogate"),
        ('[["\\udfff"]]', "lone UTF-16 surrogate"),
    ],
    ids=[
        "overflow",
        "negative-overflow",
        "nested-overflow",
        "surrogate-in-name",
        "surrogate-in-key",
        "surrogate-in-nested-list",
        "reversed-pair",
        "both",
        "top-level-string",
        "top-level-array",
    ],
)
def test_json_with_no_canonical_form_is_a_400_naming_the_problem(
    api: ModuleType, api_context: LambdaContext, body: str, problem: str
) -> None:
    # RFC 8259 sections 6 and 8.2 leave both to the parser; I-JSON (RFC 7493 sections 2.1
    # and 2.2) refuses them. Either would have no UTF-8 canonical form to sign.
    response = call(api, api_context, process_event(body, headers={**JSON, "Origin": CORS_ORIGIN}))
    assert problem in _error(response, 400, "invalid_json")["message"]
    assert_standard_headers(response, vary_origin=True)


def test_json_at_the_edges_of_its_range_is_signed(
    api: ModuleType, api_context: LambdaContext
) -> None:
    body = (
        '{"name": "\\ud83d\\ude00 ok", "data": '
        '{"max": 1.7976931348623157e308, "tiny": 1e-999, "big": -1E308}}'
    )
    response = call(api, api_context, process_event(body))
    assert response["statusCode"] == 200, response["body"]
    assert body_of(response)["name"] == "😀 ok"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/json-patch+json"},
        {"Content-Type": "application/json; charset=latin-1"},
    ],
    ids=["missing", "text", "form", "json-patch", "latin-1"],
)
def test_a_content_type_other_than_json_is_a_415(
    api: ModuleType, api_context: LambdaContext, headers: dict[str, str]
) -> None:
    response = call(api, api_context, process_event('{"name":"x","data":{}}', headers))
    _error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "is_base64_encoded"),
    [
        ('{"name":"x","data":{"pad":"' + "x" * (16 * 1024 * 1024) + '"}}', False),
        ("A" * (MAX_BODY_BYTES * 2), True),
        ('{"name":"x","data":{"pad":"' + "é" * (MAX_BODY_BYTES // 2) + '"}}', False),
    ],
    ids=["16MB-text", "2MB-base64", "multibyte-over-limit"],
)
def test_a_body_over_the_limit_is_a_413(
    api: ModuleType, api_context: LambdaContext, body: str, is_base64_encoded: bool
) -> None:
    response = call(api, api_context, process_event(body, is_base64_encoded=is_base64_encoded))
    _error(response, 413, "payload_too_large")


def test_a_body_at_the_limit_is_accepted(api: ModuleType, api_context: LambdaContext) -> None:
    prefix, suffix = '{"name":"x","data":{"pad":"', '"}}'
    body = prefix + "x" * (MAX_BODY_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(body.encode()) == MAX_BODY_BYTES
    assert call(api, api_context, process_event(body))["statusCode"] == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('["a list"]', "$"),
        ('"a string"', "$"),
        ('{"data": {}}', "name"),
        ('{"name": 5, "data": {}}', "name"),
        ('{"name": "", "data": {}}', "name"),
        ('{"name": "' + "n" * 201 + '", "data": {}}', "name"),
        ('{"name": "line\\nbreak", "data": {}}', "name"),
        ('{"name": "x"}', "data"),
        ('{"name": "x", "data": [1, 2]}', "data"),
        ('{"name": "x", "data": {}, "extra": 1}', "extra"),
    ],
    ids=[
        "array",
        "string",
        "missing-name",
        "name-not-string",
        "empty-name",
        "long-name",
        "control-char",
        "missing-data",
        "data-not-object",
        "unknown-field",
    ],
)
def test_a_body_failing_validation_is_a_422_naming_the_field(
    api: ModuleType, api_context: LambdaContext, body: str, field: str
) -> None:
    response = call(api, api_context, process_event(body))
    assert _error(response, 422, "validation_error")["field"] == field


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nothing"), ("GET", "/"), ("POST", "/objects"), ("GET", "/healthz")],
)
def test_an_unknown_route_is_a_404(
    api: ModuleType, api_context: LambdaContext, method: str, path: str
) -> None:
    _error(call(api, api_context, api_event(method, path)), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/health", "GET, OPTIONS"),
        ("POST", "/health", "GET, OPTIONS"),
        ("GET", "/process", "POST, OPTIONS"),
        ("PUT", "/process", "POST, OPTIONS"),
        ("DELETE", "/objects/uploads/a.csv", "GET, OPTIONS"),
    ],
)
def test_a_known_path_with_another_method_is_a_405_with_allow(
    api: ModuleType, api_context: LambdaContext, method: str, path: str, allow: str
) -> None:
    # With CORS origins configured (API_ENV), each path also answers OPTIONS: its preflight.
    response = call(api, api_context, api_event(method, path))
    _error(response, 405, "method_not_allowed")
    assert header(response, "Allow") == allow


def test_an_unexpected_error_is_a_generic_500_with_the_request_id(
    api: ModuleType,
    api_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def explode() -> bytes:
        raise RuntimeError("internal detail that must stay in the logs")

    monkeypatch.setattr(api, "_api_key", explode)
    response = call(api, api_context, process_event('{"name":"x","data":{}}'))

    body = _error(response, 500, "internal_error")
    assert body == {
        "error": "internal_error",
        "message": "internal server error",
        "requestId": REQUEST_ID,
    }
    assert "internal detail" not in response["body"]
    # The detail is in the log, with the same request id as correlation id.
    logged = capsys.readouterr().out
    assert "internal detail that must stay in the logs" in logged
    assert f'"correlation_id":"{REQUEST_ID}"' in logged


def test_a_secret_without_api_key_is_a_generic_500(
    api: ModuleType, api_context: LambdaContext, secret_arn: str
) -> None:
    client = api.secrets_provider().client
    client.put_secret_value(SecretId=secret_arn, SecretString='{"not_the_key": "value"}')
    response = call(api, api_context, process_event('{"name":"x","data":{}}'))
    _error(response, 500, "internal_error")


def test_an_event_that_is_not_an_api_request_is_a_generic_500(
    api: ModuleType, api_context: LambdaContext
) -> None:
    response = call(api, api_context, {"unexpected": "shape"})

    assert response["statusCode"] == 500
    body = json.loads(response["body"])
    assert body == {
        "error": "internal_error",
        "message": "internal server error",
        "requestId": api_context.aws_request_id,
    }


def test_neither_request_bodies_nor_the_secret_reach_the_logs(
    api: ModuleType, api_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = "private-request-content-51c2"
    call(api, api_context, process_event(json.dumps({"name": "x", "data": {"k": marker}})))
    call(api, api_context, process_event('{"name": 5, "data": {"k": "' + marker + '"}}'))

    output = capsys.readouterr().out
    assert API_KEY not in output
    assert marker not in output  # no event logging (Powertools' debug mode would print it)


# Runs in a new interpreter: Powertools keeps whether the environment is cold in its own
# module, which a test process imports once, and offers no public way to start cold again; a
# new process is what a new execution environment is. The requests are rejected before any
# AWS call, and the endpoint is a closed port, so nothing leaves the machine.
FRESH_ENVIRONMENT = """
import json, sys
from tooling.function_fixtures import lambda_context
from tooling.local.functions import load_handler
request = json.load(sys.stdin)
api = load_handler("api_handler", request["environment"])
context = lambda_context(request["function_name"])
for event in request["events"]:
    api.lambda_handler(event, context)
print(json.dumps({"request_id": context.aws_request_id}))
"""
NO_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}


def test_log_lines_carry_the_lambda_context_and_the_request_id_as_correlation_id(
    secret_arn: str,
) -> None:
    request = {
        "environment": api_environment(secret_arn),
        "function_name": NAMES.api_handler_function,
        "events": [
            process_event('{"name": 5, "data": {}}', request_id="first-request"),
            process_event('{"data": {}}', request_id="second-request"),
        ],
    }
    result = subprocess.run(  # noqa: S603 (this interpreter, the script above)
        [sys.executable, "-c", FRESH_ENVIRONMENT],
        input=json.dumps(request),
        env={**os.environ, **NO_AWS},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=60,
    )

    printed = result.stdout.splitlines()
    request_id = json.loads(printed[-1])["request_id"]
    lines = [json.loads(line) for line in printed if "Request rejected" in line]
    assert [line["correlation_id"] for line in lines] == ["first-request", "second-request"]
    assert [line["cold_start"] for line in lines] == [True, False]
    assert [line["field"] for line in lines] == ["name", "name"]
    for line in lines:
        assert line["function_request_id"] == request_id
        assert line["function_name"] == NAMES.api_handler_function
        assert line["service"] == "api-handler"


# GET /objects/{key+}

# Keys that need escaping in a URL path, each sent as a client must send it (object_path:
# quote(key, safe="")) and as a REST API delivers it: still percent-encoded.
HOSTILE_KEYS = {
    "space": "uploads/x y.csv",
    "plus": "uploads/a+b.csv",
    "percent": "uploads/100%.csv",
    "escape-lookalike": "uploads/a%20b.csv",
    "hash": "uploads/issue#9.csv",
    "question-mark": "uploads/why?.csv",
    "nested-slashes": "uploads/a/b//c/",
    "nul": "uploads/nul\x00.csv",
    "newline": "uploads/line\nbreak.csv",
    "carriage-return-tab": "uploads/cr\r\ttab.csv",
    "accents": "uploads/café/résumé.csv",
    "cjk": "uploads/日本/データ.csv",
    "emoji": "uploads/😀 🚀.csv",
}


def _store_result(s3: Any, key: str, document: dict[str, Any]) -> None:
    s3.put_object(Bucket=NAMES.upload_bucket, Key=f"results/{key}.json", Body=json.dumps(document))


def test_a_missing_result_is_a_404(api: ModuleType, api_context: LambdaContext) -> None:
    event = api_event("GET", object_path("uploads/none.csv"))
    _error(call(api, api_context, event), 404, "not_found")


@pytest.mark.parametrize("key", HOSTILE_KEYS.values(), ids=HOSTILE_KEYS.keys())
def test_a_stored_result_is_returned_for_a_percent_encoded_key(
    api: ModuleType, api_context: LambdaContext, s3: Any, key: str
) -> None:
    document = {"key": key, "size": 3, "sha256": "abc"}
    _store_result(s3, key, document)
    event = api_event("GET", object_path(key))
    assert "%" in event["pathParameters"]["key"]  # delivered encoded, as AWS delivers it

    response = call(api, api_context, event)

    assert response["statusCode"] == 200, response["body"]
    assert body_of(response) == {"key": key, "result": document, "requestId": REQUEST_ID}


def test_slashes_may_be_sent_raw_or_encoded(
    api: ModuleType, api_context: LambdaContext, s3: Any
) -> None:
    key = "uploads/dir/x y.csv"
    _store_result(s3, key, {"n": 1})
    for path in (object_path(key), "/objects/" + quote(key, safe="/")):
        assert body_of(call(api, api_context, api_event("GET", path)))["key"] == key


def test_a_plus_in_the_path_is_a_plus_not_a_space(
    api: ModuleType, api_context: LambdaContext, s3: Any
) -> None:
    _store_result(s3, "uploads/a+b.csv", {"which": "plus"})
    _store_result(s3, "uploads/a b.csv", {"which": "space"})
    for path in ("/objects/uploads/a+b.csv", "/objects/uploads%2Fa%2Bb.csv"):
        response = call(api, api_context, api_event("GET", path))
        assert body_of(response)["result"] == {"which": "plus"}, path
    spaced = call(api, api_context, api_event("GET", "/objects/uploads/a%20b.csv"))
    assert body_of(spaced)["result"] == {"which": "space"}


def test_the_key_falls_back_to_the_encoded_path_without_path_parameters(
    api: ModuleType, api_context: LambdaContext, s3: Any
) -> None:
    key = "uploads/p q+é.csv"
    _store_result(s3, key, {})
    event = api_event("GET", object_path(key))
    event["pathParameters"] = None
    assert body_of(call(api, api_context, event))["key"] == key


@pytest.mark.parametrize(
    ("encoded", "problem"),
    [
        ("uploads%2F100%.csv", "hexadecimal"),
        ("uploads%2Fa%2", "hexadecimal"),
        ("uploads%2F%zz.csv", "hexadecimal"),
        ("uploads%2F%%41.csv", "hexadecimal"),
        ("uploads%2F%FF.csv", "UTF-8"),
        ("uploads%2F%C3%28.csv", "UTF-8"),
        ("uploads%2F%C0%AF.csv", "UTF-8"),  # overlong "/"
        ("uploads%2F%ED%A0%80.csv", "UTF-8"),  # an encoded UTF-16 surrogate
    ],
    ids=[
        "bare-percent",
        "truncated-escape",
        "non-hex-escape",
        "double-percent",
        "invalid-byte",
        "invalid-sequence",
        "overlong",
        "surrogate",
    ],
)
@pytest.mark.parametrize("source", ["path-parameter", "path"])
def test_a_malformed_or_non_utf8_escape_is_a_400_naming_it(
    api: ModuleType, api_context: LambdaContext, encoded: str, problem: str, source: str
) -> None:
    event = api_event("GET", f"/objects/{encoded}")
    if source == "path":
        event["pathParameters"] = None
    body = _error(call(api, api_context, event), 400, "invalid_path")
    assert problem in body["message"]


def test_a_lone_surrogate_in_the_event_is_a_400(
    api: ModuleType, api_context: LambdaContext
) -> None:
    # Lambda's event is JSON, so it can carry "\ud800", which is no text at all.
    event = api_event("GET", "/objects/uploads%2Fx.csv", path_parameters={"key": "uploads/\ud800"})
    _error(call(api, api_context, event), 400, "invalid_path")


def test_a_key_too_long_for_a_result_is_a_422(api: ModuleType, api_context: LambdaContext) -> None:
    event = api_event("GET", object_path("uploads/" + "k" * 1020))
    assert _error(call(api, api_context, event), 422, "validation_error")["field"] == "key"
