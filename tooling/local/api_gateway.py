"""An HTTP server on 127.0.0.1 that does what API Gateway does in front of the API handler.

For each request it finds the route (shared.api_routes, the same table the api layer deploys,
the derived public OPTIONS routes for CORS preflights included), applies what the deployed API
applies before the function runs (the route must exist for the method, a non-public route
needs a SigV4 `Authorization` header, the POST /process body must be a JSON object, payloads
over 10 MB are refused) and builds the REST API proxy event (payload format 1.0) the function
receives: path parameters, query strings, single- and multi-value headers, base64 bodies,
request context with a fresh request id. The function's response becomes the HTTP response.

The path is passed on undecoded. A REST API puts the path exactly as the client sent it,
still percent-encoded, into `path`, `requestContext.path` and `pathParameters` (HTTP APIs
decode them; this is a REST API): serverless/serverless#5037 shows `/posts/%40` arriving as
`%40` in `pathParameters`, and dherault/serverless-offline#638 is an emulator that decoded
them where AWS does not, hiding the bug this adapter must expose. So routes are matched on the
raw request target (http.server's `self.path`, minus the stage) and the matched text is passed
as it is: `%2F` inside `{key+}` is part of the key, not a separator. Whether API Gateway itself
refuses a malformed escape such as `%zz` in a path is not documented (it answers 400 for one
in a query string, adamchainz/apig-wsgi#102); here it reaches the function, which answers 400.

Signatures are not verified: the emulator accepts any credentials, so the check is only that a
caller signs at all, as the deployed API requires. One request runs at a time, as in one Lambda
execution environment, so the in-process handler never sees two events at once.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jsonschema import Draft4Validator

from shared.api_routes import PROCESS_BODY_SCHEMA, ROUTES, Route
from shared.naming import API_STAGE_NAME
from tooling.local.emulator import EMULATOR_ACCOUNT_ID, LOOPBACK, ensure_port_free

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

DEFAULT_API_PORT = 3000
LOCAL_API_ID = "local"
# API Gateway refuses larger payloads before invoking anything.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
SIGV4_PREFIX = "AWS4-HMAC-SHA256 "
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class MatchedRoute:
    route: Route
    path_parameters: dict[str, str]


def match_route(method: str, path: str) -> MatchedRoute | None:
    """The declared route for `method` and the still-encoded `path`, with its path parameters
    as encoded as they came (see the module docstring), or None."""
    for route in ROUTES:
        parameters = route.match(path)
        if parameters is not None and route.method == method:
            return MatchedRoute(route, parameters)
    return None


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    return values


def build_event(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    matched: MatchedRoute,
    source_ip: str,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    """The REST API proxy event (payload 1.0) API Gateway would send for this request."""
    query_pairs = parse_qsl(query, keep_blank_values=True)
    multi_headers = _multi(headers)
    multi_query = _multi(query_pairs)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    header_map = {key: values[-1] for key, values in multi_headers.items()}
    authorization = header_map.get("Authorization", header_map.get("authorization", ""))
    access_key = _CREDENTIAL.search(authorization)
    return {
        "resource": matched.route.path,
        "path": raw_path,
        "httpMethod": method,
        "headers": header_map or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": matched.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": EMULATOR_ACCOUNT_ID,
            "apiId": LOCAL_API_ID,
            "domainName": header_map.get("Host", f"{LOOPBACK}"),
            "domainPrefix": LOCAL_API_ID,
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "accessKey": access_key.group(1) if access_key else None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": header_map.get("User-Agent"),
                "userArn": None,
            },
            "path": f"/{API_STAGE_NAME}{raw_path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": matched.route.slug,
            "resourcePath": matched.route.path,
            "stage": API_STAGE_NAME,
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def _gateway_error(status: int, message: str, request_id: str) -> GatewayResponse:
    # The shape API Gateway itself answers with when it refuses a request.
    return GatewayResponse(
        status,
        {"Content-Type": "application/json", "x-amzn-RequestId": request_id},
        json.dumps({"message": message}).encode(),
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# API Gateway validates a request body against the method's model, a JSON Schema draft-04
# document, and answers 400 {"message": "Invalid request body"} before invoking anything when it
# does not match or is not JSON (Use request validation in API Gateway,
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html).
# The same model (shared.api_routes) is checked here with a draft-04 validator.
_PROCESS_BODY_VALIDATOR = Draft4Validator(PROCESS_BODY_SCHEMA)


def matches_body_model(body: bytes, validator: Draft4Validator = _PROCESS_BODY_VALIDATOR) -> bool:
    """Whether API Gateway's body validation lets `body` through to the function."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except ValueError:  # JSONDecodeError, non-UTF-8 bytes, NaN and Infinity
        return False
    return bool(validator.is_valid(value))


class LocalApiGateway:
    """Turns HTTP requests into handler invocations, one at a time."""

    def __init__(self, handler: LambdaHandler, context_factory: Callable[[str], Any]) -> None:
        self.handler = handler
        self.context_factory = context_factory
        self._one_at_a_time = threading.Lock()

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str = LOOPBACK,
        server_port: int = DEFAULT_API_PORT,
    ) -> GatewayResponse:
        request_id = str(uuid.uuid4())
        split = urlsplit(target)
        if len(body) > MAX_PAYLOAD_BYTES:
            return _gateway_error(413, "Request Too Long", request_id)
        # The stage is the first path segment of the invoke URL; the function never sees it.
        stage_prefix = f"/{API_STAGE_NAME}"
        if not split.path.startswith(f"{stage_prefix}/"):
            return _gateway_error(403, "Forbidden", request_id)
        path = split.path.removeprefix(stage_prefix)
        matched = match_route(method, path)
        if matched is None:
            # What a REST API answers for any method or path it does not define.
            return _gateway_error(403, "Missing Authentication Token", request_id)
        header_names = {name.lower(): value for name, value in headers}
        if not matched.route.public and not header_names.get("authorization", "").startswith(
            SIGV4_PREFIX
        ):
            return _gateway_error(403, "Missing Authentication Token", request_id)
        if matched.route.validate_body and not matches_body_model(body):
            return _gateway_error(400, "Invalid request body", request_id)
        event = build_event(
            method=method,
            raw_path=path,
            query=split.query,
            headers=[*headers, *_forwarding_headers(headers, source_ip, server_port)],
            body=body,
            matched=matched,
            source_ip=source_ip,
            request_id=request_id,
            now=time.time(),
        )
        with self._one_at_a_time:
            result = self.handler(event, self.context_factory(request_id))
        return _to_gateway_response(result, request_id)


def _forwarding_headers(
    headers: list[tuple[str, str]], source_ip: str, server_port: int
) -> list[tuple[str, str]]:
    """The headers API Gateway adds to every request it forwards (served here over HTTP)."""
    present = {name.lower() for name, _ in headers}
    trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    added = [
        ("X-Forwarded-For", source_ip),
        ("X-Forwarded-Port", str(server_port)),
        ("X-Forwarded-Proto", "http"),
        ("X-Amzn-Trace-Id", trace),
    ]
    return [(name, value) for name, value in added if name.lower() not in present]


def _to_gateway_response(result: Mapping[str, Any], request_id: str) -> GatewayResponse:
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(key)] = ", ".join(str(value) for value in values)
    headers.setdefault("x-amzn-RequestId", request_id)
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return GatewayResponse(int(result.get("statusCode", 502)), headers, body)


def _request_handler(gateway: LocalApiGateway, server_port: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "local-api-gateway"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            response = gateway.handle(
                self.command,
                self.path,
                list(self.headers.items()),
                body,
                source_ip=self.client_address[0],
                server_port=server_port,
            )
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            # Access lines would interleave with the handlers' JSON logs; the handlers log.
            return

    return Handler


@contextmanager
def serve(gateway: LocalApiGateway, port: int = DEFAULT_API_PORT) -> Iterator[str]:
    """Serve `gateway` on 127.0.0.1:`port` (0 picks one) for the `with` block; yields the URL."""
    ensure_port_free(port, "local API", "--api-port")
    server = ThreadingHTTPServer((LOOPBACK, port), BaseHTTPRequestHandler)
    # The handler class is made after binding, so that port 0 reports the port it got.
    server.RequestHandlerClass = _request_handler(gateway, server.server_address[1])
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="local-api-gateway", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/{API_STAGE_NAME}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
