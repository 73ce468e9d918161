"""What the handler tests and the benchmark run the functions with, declared in one place.

- NAMES: the resource names shared.naming gives the `dev` stack in moto's account and region,
  so every ARN they derive is one moto creates.
- Each function's environment is what the compute layer's program declares for it: the
  security, storage and compute programs are run under the Pulumi SDK's mocks (as
  tooling.local.provision does for the local environment), and each function's variables are
  read from what the program gave the engine, nothing typed again. The compute layer runs with
  its defaults plus one CORS origin (CORS_ORIGIN), so that the CORS answers can be exercised.
  Two things no program declares are added: the secret's real ARN, which exists only once the
  secret does, replaces the one the mocks computed; and what the Lambda runtime itself sets
  (AWS_LAMBDA_FUNCTION_NAME, which Powertools' idempotency keys carry).
- The resources the handlers use, created with those names as the storage and security layers
  create them: the versioned upload bucket, the idempotency table (key and TTL attribute), the
  application secret.
- The Lambda context, and events as AWS delivers them, copied from the documented examples in
  tests/lambdas/events/ (its README cites the AWS documents); an API event's resource and path
  parameters come from the route table, as API Gateway resolves them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from shared.api_routes import route_for_path
from shared.manifest import MANIFEST, REPO_ROOT
from shared.naming import (
    IDEMPOTENCY_KEY_ATTRIBUTE,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    AwsLocation,
    ResourceNames,
)
from tooling.local.emulator import EMULATOR_ACCOUNT_ID, EMULATOR_REGION
from tooling.local.functions import LambdaContext

if TYPE_CHECKING:
    from tooling.mock_engine import LayerRun

STACK = "dev"
LOCATION = AwsLocation(partition="aws", region=EMULATOR_REGION, account_id=EMULATOR_ACCOUNT_ID)
NAMES = ResourceNames(STACK, LOCATION)

# The one origin the fixtures' compute layer allows cross-origin requests from.
CORS_ORIGIN = "https://app.example.com"
COMPUTE_LAYER = "compute"
COMPUTE_CONFIG = {"cors_allowed_origins": json.dumps([CORS_ORIGIN])}

# Each function folder under lambdas/ and the name the compute layer deploys it under.
FUNCTION_NAMES = {
    "s3_processor": NAMES.s3_processor_function,
    "api_handler": NAMES.api_handler_function,
}

EVENTS_DIR = REPO_ROOT / "tests" / "lambdas" / "events"


# The functions' environments


@dataclass(frozen=True)
class DeclaredEnvironments:
    """Each function's variables as the compute program declares them, by function folder."""

    variables: dict[str, dict[str, str]]
    # The application secret's ARN as the mocks computed it: a placeholder for the real one.
    secret_arn: str


@functools.cache
def declared_environments() -> DeclaredEnvironments:
    """Run the compute program and the layers it reads from under mocks (once per process)."""
    # Imported here: the Pulumi SDK is not needed by what only builds events or names.
    from tooling.build import ensure_built
    from tooling.mock_engine import run_layer

    # The programs deploy built archives and refuse stale ones.
    ensure_built()
    runs: dict[str, LayerRun] = {}
    for name in MANIFEST.order[: MANIFEST.order.index(COMPUTE_LAYER) + 1]:
        runs[name] = run_layer(
            MANIFEST.layer(name),
            stack=STACK,
            location=LOCATION,
            upstream=runs,
            config=COMPUTE_CONFIG if name == COMPUTE_LAYER else None,
        )
    declared = {
        function.inputs["name"]: function.inputs["environment"]["variables"]
        for function in runs[COMPUTE_LAYER].of_type("aws:lambda/function:Function")
    }
    return DeclaredEnvironments(
        variables={
            folder: {key: str(value) for key, value in declared[name].items()}
            for folder, name in FUNCTION_NAMES.items()
        },
        secret_arn=str(runs["security"].exports["secrets_manager_arn"].value),
    )


def runtime_environment(function: str) -> dict[str, str]:
    """What the Lambda runtime sets in `function`'s environment that the handlers read."""
    return {"AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAMES[function]}


def function_environment(function: str, *, secret_arn: str | None = None) -> dict[str, str]:
    """`function`'s whole environment; with `secret_arn`, the secret's ARN in place of the
    placeholder the mocks computed for it."""
    declared = declared_environments()
    variables = dict(declared.variables[function])
    if secret_arn is not None:
        variables = {
            key: secret_arn if value == declared.secret_arn else value
            for key, value in variables.items()
        }
    return {**variables, **runtime_environment(function)}


def processor_environment() -> dict[str, str]:
    return function_environment("s3_processor")


def api_environment(secret_arn: str | None = None) -> dict[str, str]:
    return function_environment("api_handler", secret_arn=secret_arn)


# The resources the handlers use


def create_upload_bucket(s3: Any) -> str:
    """The upload bucket, versioned as the storage layer creates it; returns its name."""
    s3.create_bucket(Bucket=NAMES.upload_bucket)
    s3.put_bucket_versioning(
        Bucket=NAMES.upload_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    return NAMES.upload_bucket


def create_idempotency_table(dynamodb: Any) -> str:
    """The idempotency table with the storage layer's key and TTL attributes; returns its name."""
    dynamodb.create_table(
        TableName=NAMES.idempotency_table,
        KeySchema=[{"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=NAMES.idempotency_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": IDEMPOTENCY_TTL_ATTRIBUTE},
    )
    return NAMES.idempotency_table


def create_secret(secretsmanager: Any, api_key: str) -> str:
    """The application secret holding `api_key`, as the rotation function stores it; its ARN."""
    created = secretsmanager.create_secret(
        Name=f"{NAMES.secret_name_prefix}fixture", SecretString=json.dumps({"api_key": api_key})
    )
    arn: str = created["ARN"]
    return arn


# Calling the functions as Lambda does


def lambda_context(function_name: str) -> LambdaContext:
    """The context Lambda passes `function_name`, invoked through its `live` alias."""
    return LambdaContext(
        function_name=function_name,
        invoked_function_arn=f"{NAMES.function_arn(function_name)}:live",
        log_group_name=NAMES.function_log_group(function_name),
        function_version="1",
        memory_limit_in_mb=256,
        log_stream_name="2026/11/27/[1]0123456789abcdef0123456789abcdef",
    )


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of tests/lambdas/events/<name>.json."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def s3_record(
    key: str,
    *,
    bucket: str = NAMES.upload_bucket,
    version_id: str | None = None,
    sequencer: str | None = "0055AED6DCD90281E5",
    event_name: str = "ObjectCreated:Put",
    size: int = 0,
) -> dict[str, Any]:
    """One ObjectCreated record for `key`, URL-encoded the way S3 encodes notification keys."""
    record: dict[str, Any] = copy.deepcopy(load_event("s3_object_created")["Records"][0])
    record["eventName"] = event_name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    obj = record["s3"]["object"]
    obj["key"] = quote_plus(key, safe="/")
    obj["size"] = size
    if sequencer is None:
        obj.pop("sequencer", None)
    else:
        obj["sequencer"] = sequencer
    if version_id is None:
        obj.pop("versionId", None)
    else:
        obj["versionId"] = version_id
    return record


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


# What a request target's path may hold unescaped (RFC 3986 section 3.3: pchar and "/"); a
# client percent-encodes everything else, and API Gateway passes the path on as it came.
_REQUEST_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
OBJECTS_PREFIX = "/objects/"


def object_path(key: str) -> str:
    """The path a client asks GET /objects/{key+} for `key` with: every reserved character,
    `/` included, percent-encoded, as `urllib.parse.quote(key, safe="")` does."""
    return OBJECTS_PREFIX + quote(key, safe="")


def api_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
    path_parameters: Mapping[str, str] | None = None,
    is_base64_encoded: bool = False,
    request_id: str = "a1b2c3d4-0000-4000-8000-000000000001",
) -> dict[str, Any]:
    """A REST API proxy event (payload 1.0), from the documented example, for `method path`.

    `path` is the path as the client sent it, still percent-encoded: a REST API delivers `path`
    and `pathParameters` that way (see tests/lambdas/events/README.md), so a path no client
    could send (a raw space, non-ASCII, a control character) is refused here. The resource and,
    unless `path_parameters` says otherwise, the path parameters are those of the route the
    table resolves the path to (still encoded), whatever the method, as API Gateway resolves a
    resource; a path no route serves is its own resource.
    """
    if not _REQUEST_PATH.fullmatch(path):
        raise ValueError(f"{path!r} is not a percent-encoded request path: see object_path()")
    route = route_for_path(path)
    if path_parameters is None and route is not None:
        path_parameters = route.match(path) or None
    event = load_event("apigw_rest_proxy")
    all_headers = {**event["headers"], **(headers or {})}
    event["httpMethod"] = method
    event["path"] = path
    event["headers"] = all_headers
    event["multiValueHeaders"] = {name: [value] for name, value in all_headers.items()}
    event["pathParameters"] = dict(path_parameters) if path_parameters is not None else None
    event["body"] = body
    event["isBase64Encoded"] = is_base64_encoded
    context = event["requestContext"]
    context["httpMethod"] = method
    context["path"] = f"/prod{path}"
    context["requestId"] = request_id
    event["resource"] = context["resourcePath"] = route.path if route is not None else path
    return event
