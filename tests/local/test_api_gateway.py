"""The HTTP adapter builds the event API Gateway sends and refuses what API Gateway refuses."""

from __future__ import annotations

import base64
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from jsonschema import Draft4Validator

from tooling.function_fixtures import CORS_ORIGIN, api_environment
from tooling.local.api_gateway import LocalApiGateway, match_route, matches_body_model, serve
from tooling.local.functions import LambdaContext, load_handler

DOCUMENTED_EVENT = Path(__file__).parents[1] / "lambdas" / "events" / "apigw_rest_proxy.json"
CONFIGURED_ORIGIN = CORS_ORIGIN
SIGNED = (
    "Authorization",
    "AWS4-HMAC-SHA256 Credential=local/20261127/us-east-1/execute-api/aws4_request, "
    "SignedHeaders=host, Signature=00",
)


class Recorder:
    """A handler that records its events and answers like the API handler would."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\xff\xfe").decode(),
            "isBase64Encoded": True,
        }


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> LocalApiGateway:
    return LocalApiGateway(recorder, context_factory=lambda request_id: request_id)


def _shape(value: Any) -> Any:
    """Keys all the way down; leaves become their JSON type (null stands for any)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__ if value is not None else None


def _same_shape(ours: Any, documented: Any, path: str = "event") -> None:
    if isinstance(documented, dict) and documented:
        assert isinstance(ours, dict), f"{path} is not an object"
        assert set(ours) == set(documented), f"{path}: {set(ours) ^ set(documented)}"
        for key in documented:
            _same_shape(ours[key], documented[key], f"{path}.{key}")
    elif documented is not None and ours is not None:
        assert type(ours) is type(documented), f"{path}: {type(ours)} != {type(documented)}"


def test_the_event_has_the_shape_of_the_documented_example(
    gateway: LocalApiGateway, recorder: Recorder
) -> None:
    documented = json.loads(DOCUMENTED_EVENT.read_text(encoding="utf-8"))
    headers = [
        ("Accept", "application/json"),
        ("Host", "127.0.0.1:3000"),
        ("User-Agent", "curl/8.5.0"),
    ]
    assert gateway.handle("GET", "/prod/health", headers, b"").status == 200
    (event,) = recorder.events
    _same_shape(event, documented)
    assert event["resource"] == "/health"
    assert event["path"] == "/health"
    assert event["requestContext"]["path"] == "/prod/health"
    assert event["requestContext"]["stage"] == "prod"
    assert re.fullmatch(
        r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000",
        event["requestContext"]["requestTime"],
    )
    assert event["multiValueHeaders"]["Accept"] == ["application/json"]


def test_greedy_path_parameters_query_strings_and_signed_caller(
    gateway: LocalApiGateway, recorder: Recorder
) -> None:
    gateway.handle("GET", "/prod/objects/uploads/a%20b%2Bc/%C3%A9.csv?x=1&x=2&y=", [SIGNED], b"")
    (event,) = recorder.events
    assert event["resource"] == "/objects/{key+}"
    # Still percent-encoded, as a REST API passes it (see the adapter's module docstring).
    assert event["pathParameters"] == {"key": "uploads/a%20b%2Bc/%C3%A9.csv"}
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["requestContext"]["identity"]["accessKey"] == "local"


def test_bodies_are_text_or_base64(gateway: LocalApiGateway, recorder: Recorder) -> None:
    json_type = ("Content-Type", "application/json")
    gateway.handle("POST", "/prod/process", [SIGNED, json_type], '{"name": "é"}'.encode())
    # A body that is not UTF-8 travels base64-encoded (POST /process would refuse it first).
    gateway.handle("GET", "/prod/objects/k", [SIGNED], b"\xff\xfe binary")
    text, binary = recorder.events
    assert (text["body"], text["isBase64Encoded"]) == ('{"name": "é"}', False)
    assert base64.b64decode(binary["body"]) == b"\xff\xfe binary"
    assert binary["isBase64Encoded"] is True


def test_the_response_is_the_handlers(gateway: LocalApiGateway) -> None:
    response = gateway.handle("GET", "/prod/health", [], b"")
    assert response.status == 200
    assert response.body == b"\xff\xfe"
    assert response.headers["Set-Cookie"] == "a=1, b=2"
    assert response.headers["x-amzn-RequestId"]


@pytest.mark.parametrize(
    ("method", "target", "headers", "body", "status", "message"),
    [
        ("GET", "/prod/nowhere", [SIGNED], b"", 403, "Missing Authentication Token"),
        ("DELETE", "/prod/health", [SIGNED], b"", 403, "Missing Authentication Token"),
        ("GET", "/health", [], b"", 403, "Forbidden"),
        ("POST", "/prod/process", [], b"{}", 403, "Missing Authentication Token"),
        ("POST", "/prod/process", [SIGNED], b"[1, 2]", 400, "Invalid request body"),
        ("POST", "/prod/process", [SIGNED], b"{oops", 400, "Invalid request body"),
        ("POST", "/prod/process", [SIGNED], b"x" * (10 * 1024 * 1024 + 1), 413, "Request Too Long"),
    ],
)
def test_what_api_gateway_refuses_never_reaches_the_function(
    gateway: LocalApiGateway,
    recorder: Recorder,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    status: int,
    message: str,
) -> None:
    response = gateway.handle(method, target, headers, body)
    assert response.status == status
    assert json.loads(response.body) == {"message": message}
    assert recorder.events == []


def test_routes_come_from_the_shared_route_table() -> None:
    matched = match_route("GET", "/objects/a/b/c.txt")
    assert matched is not None and matched.route.path == "/objects/{key+}"
    assert match_route("POST", "/health") is None
    assert match_route("GET", "/objects/") is None


# Keys that need percent-encoding in a path, sent as a client must send them.
ENCODED_KEYS = {
    "space": "uploads/a b.csv",
    "plus": "uploads/a+b.csv",
    "percent": "uploads/100%.csv",
    "hash": "uploads/issue#9.csv",
    "question-mark": "uploads/why?.csv",
    "slash": "uploads/dir/file.csv",
    "nul": "uploads/nul\x00.csv",
    "newline": "uploads/line\nbreak.csv",
    "accents": "uploads/café.csv",
    "cjk": "uploads/日本.csv",
    "emoji": "uploads/😀.csv",
}


@pytest.fixture
def served(recorder: Recorder) -> Iterator[str]:
    """The recording gateway on a real HTTP port; yields the stage URL."""
    gateway = LocalApiGateway(recorder, context_factory=lambda request_id: request_id)
    with serve(gateway, port=0) as url:
        yield url


def _raw_request(
    url: str, method: str, target: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """Send `target` byte for byte (urllib would not be asked to re-encode anything)."""
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=10)
    connection.request(method, f"{parsed.path}{target}", headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.parametrize("key", ENCODED_KEYS.values(), ids=ENCODED_KEYS.keys())
def test_the_path_reaches_the_function_as_the_client_encoded_it(
    served: str, recorder: Recorder, key: str
) -> None:
    encoded = quote(key, safe="")
    response = _raw_request(served, "GET", f"/objects/{encoded}", dict([SIGNED]))

    assert response.status == 200
    (event,) = recorder.events
    assert event["path"] == f"/objects/{encoded}"
    assert event["pathParameters"] == {"key": encoded}
    assert event["requestContext"]["path"] == f"/prod/objects/{encoded}"
    assert event["resource"] == "/objects/{key+}"


def test_a_preflight_needs_no_signature_on_any_declared_path(
    served: str, recorder: Recorder
) -> None:
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
    for target in ("/health", "/process", "/objects/uploads%2Fa.csv"):
        assert _raw_request(served, "OPTIONS", target, preflight).status == 200, target
    assert [event["httpMethod"] for event in recorder.events] == ["OPTIONS"] * 3
    # Undeclared paths are still refused before the function, OPTIONS or not.
    assert _raw_request(served, "OPTIONS", "/nowhere", preflight).status == 403
    assert len(recorder.events) == 3


@pytest.fixture(scope="module")
def handler_behind_gateway() -> Iterator[str]:
    """The real API handler, with CORS origins configured, behind the adapter on a real port.
    A preflight calls no AWS service, so no emulator is needed."""
    api = load_handler("api_handler", api_environment())
    gateway = LocalApiGateway(api.lambda_handler, context_factory=_context)
    with serve(gateway, port=0) as url:
        yield url


def _context(request_id: str) -> LambdaContext:
    return LambdaContext(
        function_name="api-handler",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:api-handler:live",
        log_group_name="/aws/lambda/api-handler",
        aws_request_id=request_id,
    )


@pytest.mark.parametrize("target", ["/health", "/process", "/objects/uploads%2Fa%20b.csv"])
def test_a_browser_preflight_from_a_configured_origin_is_allowed(
    handler_behind_gateway: str, target: str
) -> None:
    response = _raw_request(
        handler_behind_gateway,
        "OPTIONS",
        target,
        {
            "Origin": CONFIGURED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-amz-date",
        },
    )

    assert 200 <= response.status < 300
    assert response.getheader("Access-Control-Allow-Origin") == CONFIGURED_ORIGIN
    assert "POST" in (response.getheader("Access-Control-Allow-Methods") or "")
    assert response.getheader("Vary") == "Origin"
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_a_browser_preflight_from_another_origin_gets_no_allow_origin(
    handler_behind_gateway: str,
) -> None:
    response = _raw_request(
        handler_behind_gateway,
        "OPTIONS",
        "/process",
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert response.getheader("Access-Control-Allow-Origin") is None
    assert response.getheader("Vary") == "Origin"
    assert response.getheader("Cache-Control") == "no-store"


def test_bodies_are_validated_against_the_apis_draft_04_model() -> None:
    # The model API Gateway applies to POST /process: a JSON object, nothing more.
    assert matches_body_model(b'{"name": "x", "data": {}}')
    assert matches_body_model(b"{}")
    for body in (b"[1]", b'"text"', b"42", b"null", b"{oops", b"\xff", b'{"a": NaN}'):
        assert not matches_body_model(body), body
    # A stricter model is enforced as API Gateway's draft-04 validator would.
    stricter = Draft4Validator(
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 3}},
        }
    )
    assert matches_body_model(b'{"name": "abc"}', stricter)
    assert not matches_body_model(b'{"name": "abcd"}', stricter)
    assert not matches_body_model(b"{}", stricter)
