"""REST API handler behind API Gateway (Lambda proxy integration, payload format 1.0).

Routes (declared once, in lambdas/common/api_routes.py, which the api layer deploys; each is
registered here with the function ROUTE_FUNCTIONS names for it):

- `GET /health`: no AWS call; status, version and request id.
- `POST /process`: a JSON object `{"name": <string>, "data": <object>}`; answers with an
  HMAC-SHA256 signature of the body's canonical JSON (keys sorted, no whitespace, UTF-8), keyed
  with the application secret's `api_key`, which is read through Powertools' parameter cache: at
  most one Secrets Manager call per SECRET_CACHE_SECONDS, not one per request. JSON that has no
  canonical UTF-8 form is refused: NaN, numbers beyond a double (`1e999`), lone surrogate
  escapes (`"\\ud800"`) and duplicate keys.
- `GET /objects/{key+}`: the processing result of the uploaded object `key`, read from
  `result_keys.result_key_for(key)`; 404 when there is none. API Gateway delivers the key as the
  client sent it, percent-encoded; it is decoded as a URL path is (`%20` is a space, `+` stays a
  plus), so `uploads/a b+c.csv` is asked for as `/objects/uploads%2Fa%20b%2Bc.csv`
  (`urllib.parse.quote(key, safe="")`).
- `OPTIONS` on each of those paths: the CORS preflight, which the api layer declares public.
  With CORS_ALLOWED_ORIGINS set, Powertools answers it with 204 and, for a configured origin
  only, Access-Control-Allow-Origin echoing it; without, it is a 405 like any other method.

Every response carries `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`, and
`Vary: Origin` whenever the CORS answer depends on the request's origin.

Errors are JSON `{"error", "message", "requestId"}` (plus `field` for 422): 400 malformed JSON,
encoding or path escape, 413 body over MAX_BODY_BYTES, 415 content type other than JSON, 404
unknown route or result, 405 wrong method (with `Allow`), 422 validation, 500 anything
unexpected. A response never carries exception text or a traceback: those go to the log only.

Cold start is kept to Powertools' logger, metrics and resolver: boto3 and the parameters utility
are imported on first use by the routes that call AWS, so `GET /health` never pays for them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote_to_bytes

import api_routes  # lambdas/common, at the archive root
import result_keys  # lambdas/common
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit
from function_config import FunctionEnvironment, retrying_client_config  # lambdas/common

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Browsers send `Origin: scheme://host[:port]`, never a path or a trailing slash: a configured
# origin of another shape could never match, so it is refused at cold start.
_ORIGIN_PATTERN = re.compile(r"^https?://[^/\s]+$")

# A result document is a few hundred bytes; anything far larger is not ours to relay.
MAX_RESULT_BYTES = 256 * 1024

MAX_NAME_CHARS = 200
PROCESS_FIELDS = frozenset({"name", "data"})


@dataclass(frozen=True)
class ApiConfig:
    """Everything the compute layer configures, read once per execution environment."""

    bucket_name: str
    results_prefix: str
    secret_arn: str
    secret_cache_seconds: int
    cors_allowed_origins: tuple[str, ...]
    max_body_bytes: int
    app_version: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ApiConfig:
        """Raises function_config.ConfigError naming every missing variable, or the invalid one."""
        env = FunctionEnvironment("api_handler", environ)
        env.require(
            "BUCKET_NAME",
            "RESULTS_PREFIX",
            "SECRET_ARN",
            "SECRET_CACHE_SECONDS",
            "MAX_BODY_BYTES",
            "APP_VERSION",
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_METRICS_NAMESPACE",
        )
        # Optional: absent or empty means no CORS headers at all (same-origin callers only).
        origins = env.optional_list("CORS_ALLOWED_ORIGINS")
        for origin in origins:
            if origin != "*" and not _ORIGIN_PATTERN.match(origin):
                raise env.error(
                    "CORS_ALLOWED_ORIGINS entries must look like "
                    f"'https://app.example.com' (scheme and host, no path), got {origin!r}"
                )
        return cls(
            bucket_name=env.text("BUCKET_NAME"),
            results_prefix=env.text("RESULTS_PREFIX"),
            secret_arn=env.text("SECRET_ARN"),
            secret_cache_seconds=env.positive_int("SECRET_CACHE_SECONDS"),
            cors_allowed_origins=origins,
            max_body_bytes=env.positive_int("MAX_BODY_BYTES"),
            app_version=env.text("APP_VERSION"),
        )


CONFIG = ApiConfig.from_environment(os.environ)

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE


def _cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    if not origins:
        return None
    return CORSConfig(allow_origin=origins[0], extra_origins=list(origins[1:]), max_age=300)


# Response bodies: compact JSON, the encoder built once (json.dumps with options builds one a
# call). Given to the resolver as its documented `serializer`, which it applies to every JSON
# body a route or an error handler returns; Powertools' default encoder handles types these
# plain bodies never hold, more slowly.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

# debug=False explicitly: with POWERTOOLS_DEV set, Powertools would answer errors with
# tracebacks. Request validation (enable_validation) stays off, its default: the routes
# validate their input themselves, and it would import pydantic at cold start.
app = APIGatewayRestResolver(
    cors=_cors_config(CONFIG.cors_allowed_origins),
    debug=False,
    serializer=_COMPACT_JSON.encode,
)

# Every response carries these, whichever code built it (see _with_standard_headers).
_SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_SECURITY_NAMES = frozenset(name.lower() for name in _SECURITY_HEADERS)

# With a list of origins, Access-Control-Allow-Origin echoes the request's Origin (or is
# absent), so every response depends on that header and must say so with `Vary: Origin`, also
# when it carries no Access-Control-Allow-Origin, or a cache could serve it to another origin
# (Fetch standard, CORS protocol and HTTP caches:
# https://fetch.spec.whatwg.org/#cors-protocol-and-http-caches). Only `*` alone needs none.
_VARIES_BY_ORIGIN = any(origin != "*" for origin in CONFIG.cors_allowed_origins)


class ApiError(Exception):
    """An expected failure with the status and message the caller may see."""

    def __init__(
        self,
        status: HTTPStatus,
        error: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def _api_request_id(event: Any) -> str | None:
    """API Gateway's request id (what the caller sees in x-amzn-RequestId) in a raw event."""
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = request_context.get("requestId") if isinstance(request_context, dict) else None
    return request_id if isinstance(request_id, str) else None


def _request_id() -> str:
    """API Gateway's request id, else Lambda's."""
    return _api_request_id(app.current_event.raw_event) or str(app.lambda_context.aws_request_id)


# A JSON response; the resolver serialises its body (see _COMPACT_JSON).
JsonResponse = Response[dict[str, Any]]


def _json_response(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JsonResponse:
    return Response(
        status_code=int(status),  # a plain int: the runtime serialises the dict as JSON
        content_type="application/json",
        body=body,
        headers=dict(headers or {}),
    )


def _error_response(error: ApiError) -> JsonResponse:
    body: dict[str, Any] = {
        "error": error.error,
        "message": error.message,
        "requestId": _request_id(),
    }
    if error.field is not None:
        body["field"] = error.field
    return _json_response(error.status, body, error.headers)


def _handle_api_error(error: ApiError) -> JsonResponse:
    logger.info(
        "Request rejected",
        extra={"status": int(error.status), "error": error.error, "field": error.field},
    )
    return _error_response(error)


def _record_unhandled_error() -> None:
    # Flushed at once: most requests add no metric, and flushing an empty set warns.
    metrics.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


def _handle_unexpected(error: Exception) -> JsonResponse:
    # The traceback goes to the log; the caller gets only a generic message and the request id.
    logger.exception("Unhandled error while serving the request")
    _record_unhandled_error()
    return _error_response(
        ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal server error")
    )


# Registered without decorator syntax: Powertools' exception_handler is untyped. Lookup follows
# the exception's MRO, so ApiError wins over the catch-all.
app.exception_handler(ApiError)(_handle_api_error)
app.exception_handler(Exception)(_handle_unexpected)


# Each application route's method and path pattern, compiled once for the 405 answer.
_PATH_PATTERNS = tuple(
    (route.method, re.compile(route.path_regex(named=False)))
    for route in api_routes.APPLICATION_ROUTES
)


def _allowed_methods(path: str) -> list[str]:
    """The methods the route table declares for the request path `path`. Trailing slashes are
    ignored, as the resolver ignores them when it routes."""
    trimmed = path.rstrip("/")
    return sorted(
        {
            method
            for method, pattern in _PATH_PATTERNS
            if pattern.fullmatch(path) or pattern.fullmatch(trimmed)
        }
    )


@app.not_found
def _handle_not_found(_: NotFoundError) -> JsonResponse:
    allowed = _allowed_methods(app.current_event.path)
    if allowed and CONFIG.cors_allowed_origins:
        # Powertools answers OPTIONS itself on every path when CORS is configured.
        allowed.append("OPTIONS")
    if allowed:
        return _error_response(
            ApiError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"this path accepts {', '.join(allowed)} only",
                headers={"Allow": ", ".join(allowed)},
            )
        )
    return _error_response(ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such route"))


# AWS clients: created on first use, then reused by every warm invocation


@functools.cache
def _boto_config() -> Any:
    # API Gateway gives up after 29 s: a few quick attempts (botocore imported on first use).
    return retrying_client_config(total_max_attempts=3, connect_timeout=2, read_timeout=5)


@functools.cache
def s3_client() -> Any:
    import boto3  # type: ignore[import-untyped, unused-ignore]

    return boto3.session.Session().client("s3", config=_boto_config())


@functools.cache
def secrets_provider() -> SecretsProvider:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto_config=_boto_config())


def _client_error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code", "")) or None


# GET /health


def health() -> JsonResponse:
    return _json_response(
        HTTPStatus.OK, {"status": "ok", "version": CONFIG.app_version, "requestId": _request_id()}
    )


# POST /process


def _header(name: str) -> str:
    """A request header, case-insensitively (`name` in lower case).

    Read from the raw event: Powertools' `headers` property builds a case-insensitive copy of
    every header on each access, which is most of this route's own cost.
    """
    headers = app.current_event.raw_event.get("headers") or {}
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return ""


def _require_json_content_type() -> None:
    media_type, _, parameters = _header("content-type").partition(";")
    if media_type.strip().lower() != "application/json":
        raise ApiError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise ApiError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the JSON body must be encoded as UTF-8",
            )


def _too_large() -> NoReturn:
    raise ApiError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "payload_too_large",
        f"the body exceeds {CONFIG.max_body_bytes} bytes",
    )


def _body_bytes() -> bytes:
    """The raw body, size-checked before anything proportional to its size is done."""
    event = app.current_event
    body = event.body or ""
    limit = CONFIG.max_body_bytes
    if event.is_base64_encoded:
        # Base64 is 4 characters per 3 bytes: refuse an oversized body before decoding it.
        if len(body) > 4 * ((limit + 2) // 3):
            _too_large()
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "invalid_body", "the body is not valid base64"
            ) from None
    else:
        # Every character is at least one UTF-8 byte, so this bound is safe before encoding.
        if len(body) > limit:
            _too_large()
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "invalid_encoding", "the body is not valid UTF-8"
            ) from None
    if len(data) > limit:
        _too_large()
    return data


class _RefusedJsonError(ValueError):
    """JSON that parses but that this API refuses, with a message the caller may see."""


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity, which are not JSON and cannot be signed canonically.
    raise _RefusedJsonError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # RFC 8259 section 6 lets a parser limit the range of numbers, and I-JSON (RFC 7493
    # section 2.2) keeps them within IEEE 754 doubles: 1e999 would become infinity, which
    # has no JSON form, so the body could not be signed canonically.
    value = float(text)
    if math.isinf(value):
        raise _RefusedJsonError("the body holds a number too large for a double-precision float")
    return value


# A UTF-16 surrogate left in a decoded string: json joins every valid \uD8xx\uDCxx pair into
# one code point, so whatever surrogate remains was a lone escape such as "\ud800".
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _refuse_lone_surrogates(values: list[Any]) -> None:
    """Refuse a string in `values`, or in lists within them, holding a lone surrogate.

    RFC 8259 section 8.2 leaves such strings' behaviour unpredictable and I-JSON (RFC 7493
    section 2.1) forbids them: they are no Unicode text, so they cannot be encoded as UTF-8
    and signed. Objects are skipped: the object hook checked each one when it was built.
    """
    pending = list(values)
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):
                raise _RefusedJsonError(
                    "the body holds a string with a lone UTF-16 surrogate escape"
                )
        elif isinstance(value, list):
            pending.extend(value)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # With duplicate keys, what was signed would depend on the parser: refuse them.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _RefusedJsonError("the body holds an object with a duplicate key")
    return result


def _checked_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = _unique_keys(pairs)
    _refuse_lone_surrogates([*result, *result.values()])
    return result


# Built once, like _COMPACT_JSON.
_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_STRICT_JSON = json.JSONDecoder(
    parse_float=_finite_float, parse_constant=_reject_constant, object_pairs_hook=_checked_object
)
# For text with no `\u` escape, which cannot hold a lone surrogate: UTF-8 cannot encode one, so
# only an escape can make one. The surrogate checks are then skipped, a third of the parse.
_ESCAPE_FREE_JSON = json.JSONDecoder(
    parse_float=_finite_float, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
)


def _parse_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "invalid_encoding", "the body is not valid UTF-8"
        ) from None
    try:
        if "\\u" not in text:
            return _ESCAPE_FREE_JSON.decode(text)
        document = _STRICT_JSON.decode(text)
        if not isinstance(document, dict):
            _refuse_lone_surrogates([document])  # a top-level string or array
    except _RefusedJsonError as refused:
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_json", str(refused)) from None
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and integers too long to convert.
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "invalid_json", "the body is not a well-formed JSON document"
        ) from None
    return document


def _invalid(field: str, message: str) -> NoReturn:
    raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", message, field=field)


def _validate_process_request(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        _invalid("$", "the body must be a JSON object")
    unknown = sorted(set(value) - PROCESS_FIELDS)
    if unknown:
        _invalid(unknown[0], "unknown field; allowed fields are name and data")
    if "name" not in value:
        _invalid("name", "required")
    name = value["name"]
    if not isinstance(name, str):
        _invalid("name", "must be a string")
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        _invalid("name", f"must be 1 to {MAX_NAME_CHARS} characters")
    if not name.isprintable():
        _invalid("name", "must not contain control characters")
    if "data" not in value:
        _invalid("data", "required")
    if not isinstance(value["data"], dict):
        _invalid("data", "must be a JSON object")
    return value


def _api_key() -> bytes:
    secret = secrets_provider().get(
        CONFIG.secret_arn, transform="json", max_age=CONFIG.secret_cache_seconds
    )
    api_key = secret.get("api_key") if isinstance(secret, dict) else None
    if not isinstance(api_key, str) or not api_key:
        # Never include the secret (or any part of it) in the error.
        raise RuntimeError("the application secret has no non-empty string 'api_key'")
    return api_key.encode("utf-8")


def process() -> JsonResponse:
    _require_json_content_type()
    request = _validate_process_request(_parse_json(_body_bytes()))
    canonical = _CANONICAL_JSON.encode(request).encode("utf-8")
    signature = hmac.digest(_api_key(), canonical, "sha256").hex()
    return _json_response(
        HTTPStatus.OK,
        {
            "name": request["name"],
            "fieldCount": len(request["data"]),
            "canonicalSha256": hashlib.sha256(canonical).hexdigest(),
            "signature": signature,
            "signatureAlgorithm": "HMAC-SHA256",
            "requestId": _request_id(),
        },
    )


# GET /objects/{key+}


# A `%` that does not start a %XX escape: RFC 3986 section 2.1 allows no other use of it.
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _decode_path_text(encoded: str) -> str:
    """Percent-decode text from a URL path into the UTF-8 it encodes, strictly.

    Path decoding, not form decoding: `+` stays a plus (in a path it is an ordinary
    sub-delimiter, RFC 3986 section 2.2; only application/x-www-form-urlencoded, as in S3's
    event keys, makes it a space). A malformed escape, bytes that are not UTF-8 (overlong forms
    and encoded surrogates included) or text that cannot even be encoded are refused with 400
    rather than guessed at.
    """
    if _MALFORMED_ESCAPE.search(encoded):
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "invalid_path",
            "the object key in the path has a '%' that is not followed by two hexadecimal digits",
        )
    try:
        return unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeError:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "invalid_path",
            "the object key in the path is not percent-encoded UTF-8",
        ) from None


def _object_key() -> str:
    # A REST API passes `pathParameters` (and `path`) exactly as the client sent them, still
    # percent-encoded; only HTTP APIs decode them (serverless/serverless#5037,
    # dherault/serverless-offline#638). Without the parameter (an event built by hand), the
    # key is the rest of the matched path, encoded the same way.
    key = app.current_event.path_parameters.get("key")
    if key is None:
        key = app.current_event.path[len("/objects/") :]
    return _decode_path_text(str(key))


def _result_exists(result_key: str) -> bool:
    """Whether a result exists, asked through the listing the role may do under results/."""
    listing = s3_client().list_objects_v2(Bucket=CONFIG.bucket_name, Prefix=result_key, MaxKeys=1)
    return any(item.get("Key") == result_key for item in listing.get("Contents", []))


def _read_result(result_key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]

    try:
        response = s3_client().get_object(Bucket=CONFIG.bucket_name, Key=result_key)
    except ClientError as error:
        code = _client_error_code(error)
        if code in ("NoSuchKey", "404"):
            return None
        # S3 answers a missing key with 403 when it does not see s3:ListBucket for the request;
        # the listing (allowed under results/) tells a missing result from a real denial.
        if code in ("AccessDenied", "403") and not _result_exists(result_key):
            return None
        raise
    body = response["Body"]
    try:
        data = body.read(MAX_RESULT_BYTES + 1)
    finally:
        body.close()
    if len(data) > MAX_RESULT_BYTES:
        raise RuntimeError("result document larger than MAX_RESULT_BYTES")
    document = json.loads(data)
    if not isinstance(document, dict):
        raise RuntimeError("result document is not a JSON object")
    return document


def get_object_result() -> JsonResponse:
    key = _object_key()
    try:
        result_key = result_keys.result_key_for(key, CONFIG.results_prefix)
    except result_keys.ResultKeyError:
        _invalid("key", "must be a non-empty S3 key short enough to have a result")
    document = _read_result(result_key)
    if document is None:
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "no processing result for this key")
    return _json_response(
        HTTPStatus.OK, {"key": key, "result": document, "requestId": _request_id()}
    )


# The routes: every application route of the table, served by its function


# A new route is an entry in lambdas/common/api_routes.py and its function here. Functions
# take no arguments: path parameters are read as API Gateway resolved them
# (app.current_event.path_parameters).
ROUTE_FUNCTIONS: dict[str, Callable[[], JsonResponse]] = {
    "GET /health": health,
    "POST /process": process,
    "GET /objects/{key+}": get_object_result,
}


def _register_routes() -> None:
    """Register each application route with its function; a route without a function, or a
    function for no declared route, fails the cold start naming it."""
    declared = {route.key for route in api_routes.APPLICATION_ROUTES}
    unserved = sorted(declared - ROUTE_FUNCTIONS.keys())
    undeclared = sorted(ROUTE_FUNCTIONS.keys() - declared)
    if unserved or undeclared:
        raise RuntimeError(
            "the API handler's ROUTE_FUNCTIONS and lambdas/common/api_routes.py disagree: "
            f"no function for {unserved}, no declared route for {undeclared}"
        )
    for route in api_routes.APPLICATION_ROUTES:
        # A plain regular expression is a rule Powertools documents (catch-all routes); it
        # has no groups, so the resolver passes the function no arguments.
        app.route(route.path_regex(named=False), route.method)(ROUTE_FUNCTIONS[route.key])


_register_routes()


# Entry point


def _last_resort_response(event: Any, context: LambdaContext) -> dict[str, Any]:
    """A 500 for failures outside any route (an event that is not an API Gateway request)."""
    request_id = _api_request_id(event) or context.aws_request_id
    body = {"error": "internal_error", "message": "internal server error", "requestId": request_id}
    return {
        "statusCode": HTTPStatus.INTERNAL_SERVER_ERROR.value,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def _with_standard_headers(response: dict[str, Any]) -> dict[str, Any]:
    """`response` with the security headers and, where CORS depends on the origin, `Vary: Origin`.

    Done here, once, for every response: the routes' and the error handlers', the preflight
    answers Powertools builds itself, and the last resort. Only the proxy response's public
    shape is used: Powertools' REST resolver returns `multiValueHeaders`; the last resort uses
    `headers`. API Gateway merges the two into one list per name (Output format of a Lambda
    function for proxy integration:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format),
    so each name set here is removed from both first; names compare case-insensitively.
    """
    multi = response.get("multiValueHeaders")
    single = response.get("headers")
    # One pass over each: the security headers' names (any case) are dropped, and Vary and
    # Access-Control-Allow-Origin are read, multiValueHeaders' values replacing headers'.
    read: dict[str, list[str]] = {}
    vary_names: list[tuple[dict[str, Any], str]] = []
    for headers, multi_valued in ((single, False), (multi, True)):
        if not isinstance(headers, dict):
            continue
        for name in list(headers):
            lowered = name.lower()
            if lowered in _SECURITY_NAMES:
                del headers[name]
            elif lowered in ("vary", "access-control-allow-origin"):
                value = headers[name]
                if multi_valued:
                    read[lowered] = [str(item) for item in value]
                else:
                    read.setdefault(lowered, []).append(str(value))
                if lowered == "vary":
                    vary_names.append((headers, name))

    added: dict[str, str] = dict(_SECURITY_HEADERS)
    allow_origin = read.get("access-control-allow-origin", [])
    if _VARIES_BY_ORIGIN or any(origin != "*" for origin in allow_origin):
        vary = [part.strip() for value in read.get("vary", []) for part in value.split(",")]
        if "origin" not in {part.lower() for part in vary}:
            added["Vary"] = ", ".join([*filter(None, vary), "Origin"])
            for headers, name in vary_names:
                del headers[name]

    if isinstance(multi, dict) or not isinstance(single, dict):
        response["multiValueHeaders"] = {
            **(multi or {}),
            **{name: [value] for name, value in added.items()},
        }
    else:
        single.update(added)
    return response


# Every log line carries the Lambda context and cold start (the decorator) and API Gateway's
# request id, what a caller sees in x-amzn-RequestId, as correlation id. The id is set from the
# event directly: the decorator's correlation_id_path=API_GATEWAY_REST would find the same
# value with a JMESPath query on every request, a sixth of a warm GET /health.
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(_api_request_id(event))
    try:
        response = app.resolve(event, context)
    except Exception:
        logger.exception("Request could not be resolved")
        _record_unhandled_error()
        response = _last_resort_response(event, context)
    return _with_standard_headers(response)
