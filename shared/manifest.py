"""The layer manifest: the single source of truth for the five layers.

Each layer declares its directory, its owning team, the output keys it promises, the upstream
keys it consumes and the functions it packages (each a folder under lambdas/, with the
environment variables the layer sets for it). Everything else derives from this module: the
deployment order (dependencies are the layers a layer consumes from), the stack references, the
contract tests, which layers a change touches (`Layer.code_paths`, `SHARED_PATHS`), the function
archives, .github/CODEOWNERS and the README's diagram.

Renaming or removing a promised key is a breaking change for every consumer listed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = REPO_ROOT / "stacks"
PROJECT_PREFIX = "serverless"

# Paths every layer's program depends on: the shared package it imports, the policy pack every
# preview and update runs, and the pins of everything installed. A change there touches all.
SHARED_PATHS = ("shared/", "policy/", "pyproject.toml", "constraints.txt")
# lambdas/common/*.py goes into every function's archive (shared/packaging.py).
COMMON_FUNCTION_CODE = "lambdas/common/"
# Who owns what every layer shares (the layers' own paths belong to their owners).
PLATFORM_OWNER = "@serverless-platform/platform"

# snake_case with a suffix that says what kind of value the key holds.
OUTPUT_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*_(arn|name|url|id)$")


class ManifestError(ValueError):
    """The manifest contradicts itself; raised at import so no layer runs against it."""


@dataclass(frozen=True)
class OutputSpec:
    """One value a layer promises to its consumers."""

    description: str
    secret: bool = False


@dataclass(frozen=True)
class Function:
    """One Lambda function a layer packages and deploys."""

    # The folder lambdas/<name>/: the archive's root, holding `handler.py`.
    name: str
    # The environment variables the layer sets for it, all of which its handler may read.
    environment: tuple[str, ...] = ()

    @property
    def code_path(self) -> str:
        return f"lambdas/{self.name}/"


@dataclass(frozen=True)
class Layer:
    """One separately deployed Pulumi project under stacks/."""

    name: str
    owner: str
    description: str
    outputs: Mapping[str, OutputSpec]
    consumes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    functions: tuple[Function, ...] = ()

    @property
    def code_paths(self) -> tuple[str, ...]:
        """Every path (a folder ends in /) whose change changes what the layer deploys, besides
        SHARED_PATHS: its program and the code of the functions it packages."""
        functions = tuple(function.code_path for function in self.functions)
        common = (COMMON_FUNCTION_CODE,) if self.functions else ()
        return (f"stacks/{self.name}/", *functions, *common)

    def function(self, name: str) -> Function:
        for function in self.functions:
            if function.name == name:
                return function
        raise ManifestError(
            f"layer {self.name!r} packages no function {name!r}; declare it in the layer's "
            "`functions` in shared/manifest.py"
        )

    @property
    def project(self) -> str:
        """The Pulumi project name, as written in the layer's Pulumi.yaml."""
        return f"{PROJECT_PREFIX}-{self.name}"

    @property
    def directory(self) -> Path:
        return STACKS_DIR / self.name

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The layers this one reads from, in manifest order."""
        return tuple(self.consumes)

    def consumed_keys(self) -> Iterable[tuple[str, str]]:
        """(upstream layer, key) for every value this layer reads."""
        for upstream, keys in self.consumes.items():
            for key in keys:
                yield upstream, key


@dataclass(frozen=True)
class Manifest:
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        _validate(self.layers)

    @cached_property
    def by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}

    def layer(self, name: str) -> Layer:
        try:
            return self.by_name[name]
        except KeyError:
            known = ", ".join(self.by_name)
            raise ManifestError(f"unknown layer {name!r}; the layers are: {known}") from None

    @property
    def functions(self) -> tuple[Function, ...]:
        """Every function any layer packages, in manifest order."""
        return tuple(function for layer in self.layers for function in layer.functions)

    @property
    def order(self) -> tuple[str, ...]:
        """Deployment order: every layer after the layers it consumes from."""
        return tuple(layer.name for layer in self.layers)

    def producer_of(self, key: str) -> Layer:
        for layer in self.layers:
            if key in layer.outputs:
                return layer
        raise ManifestError(f"no layer promises the output {key!r}")

    def consumers_of(self, layer_name: str) -> dict[str, tuple[str, ...]]:
        """Downstream layer -> the keys it reads from `layer_name`."""
        return {
            layer.name: layer.consumes[layer_name]
            for layer in self.layers
            if layer_name in layer.consumes
        }

    def downstream_of(self, layer_name: str) -> tuple[str, ...]:
        """Every layer that depends on `layer_name`, directly or not, in deployment order."""
        affected = {layer_name}
        for layer in self.layers:
            if affected.intersection(layer.depends_on):
                affected.add(layer.name)
        return tuple(name for name in self.order if name in affected and name != layer_name)


def _validate(layers: tuple[Layer, ...]) -> None:
    seen: dict[str, Layer] = {}
    promised_by: dict[str, str] = {}
    packaged_by: dict[str, str] = {}
    for layer in layers:
        if layer.name in seen:
            raise ManifestError(f"layer {layer.name!r} is declared twice")
        for function in layer.functions:
            if function.name in packaged_by or function.name == "common":
                raise ManifestError(
                    f"function {function.name!r} of layer {layer.name!r} is also packaged by "
                    f"{packaged_by.get(function.name, 'every layer (it is the common code)')!r}"
                )
            packaged_by[function.name] = layer.name
        for key in layer.outputs:
            if not OUTPUT_KEY_PATTERN.match(key):
                raise ManifestError(
                    f"layer {layer.name!r} promises {key!r}: output keys must be snake_case "
                    "ending in _arn, _name, _url or _id"
                )
            if key in promised_by:
                raise ManifestError(
                    f"output {key!r} is promised by both {promised_by[key]!r} and {layer.name!r}"
                )
            promised_by[key] = layer.name
        for upstream, key in layer.consumed_keys():
            if upstream not in seen:
                raise ManifestError(
                    f"layer {layer.name!r} consumes from {upstream!r}, which is not declared "
                    "before it; list layers in dependency order"
                )
            if key not in seen[upstream].outputs:
                raise ManifestError(
                    f"layer {layer.name!r} consumes {upstream}.{key}, which {upstream!r} "
                    "does not promise"
                )
        seen[layer.name] = layer


MANIFEST = Manifest(
    layers=(
        Layer(
            name="security",
            owner="@serverless-platform/security",
            description="KMS key, application secret and its rotation, one IAM role per "
            "function, API Gateway logging role",
            outputs={
                "kms_key_arn": OutputSpec("Customer-managed KMS key that encrypts every store"),
                "kms_alias_name": OutputSpec("Alias of the KMS key"),
                "secrets_manager_arn": OutputSpec("ARN of the application secret"),
                "secret_name": OutputSpec("Name of the application secret"),
                "s3_processor_role_arn": OutputSpec("Execution role of the S3 processor function"),
                "api_handler_role_arn": OutputSpec("Execution role of the API handler function"),
                "api_gateway_cloudwatch_role_arn": OutputSpec(
                    "Role API Gateway assumes to write execution and access logs, named in the "
                    "account-wide API Gateway setting"
                ),
                "secret_rotation_function_name": OutputSpec(
                    "Function that rotates the generated application secret"
                ),
            },
            functions=(Function("secret_rotation"),),
        ),
        Layer(
            name="storage",
            owner="@serverless-platform/data",
            description="Upload bucket, idempotency table, dead-letter queue",
            outputs={
                "s3_bucket_name": OutputSpec("Upload bucket name"),
                "s3_bucket_arn": OutputSpec("Upload bucket ARN"),
                "idempotency_table_name": OutputSpec("DynamoDB table holding idempotency records"),
                "idempotency_table_arn": OutputSpec("ARN of the idempotency table"),
                "dead_letter_queue_arn": OutputSpec("SQS queue receiving events that failed"),
                "dead_letter_queue_name": OutputSpec("Name of the dead-letter queue"),
                "dead_letter_queue_url": OutputSpec("URL of the dead-letter queue"),
            },
            consumes={"security": ("kms_key_arn",)},
        ),
        Layer(
            name="compute",
            owner="@serverless-platform/application",
            description="S3 processor and API handler functions, their log groups, the S3 trigger",
            outputs={
                "s3_processor_lambda_arn": OutputSpec("ARN of the S3 processor function"),
                "s3_processor_function_name": OutputSpec("Name of the S3 processor function"),
                "s3_processor_alias_arn": OutputSpec("ARN of the processor's live alias"),
                "s3_processor_log_group_name": OutputSpec("Log group of the S3 processor"),
                "api_handler_lambda_arn": OutputSpec("ARN of the API handler function"),
                "api_handler_function_name": OutputSpec("Name of the API handler function"),
                "api_handler_alias_arn": OutputSpec("ARN of the API handler's live alias"),
                "api_handler_alias_invoke_arn": OutputSpec(
                    "Invoke ARN of the API handler's live alias, for API Gateway integrations"
                ),
                "api_handler_log_group_name": OutputSpec("Log group of the API handler"),
            },
            consumes={
                "security": (
                    "kms_key_arn",
                    "secrets_manager_arn",
                    "s3_processor_role_arn",
                    "api_handler_role_arn",
                ),
                "storage": (
                    "s3_bucket_name",
                    "s3_bucket_arn",
                    "idempotency_table_name",
                    "dead_letter_queue_arn",
                ),
            },
            functions=(
                Function(
                    "s3_processor",
                    environment=(
                        "BUCKET_NAME",
                        "UPLOAD_PREFIX",
                        "RESULTS_PREFIX",
                        "IDEMPOTENCY_TABLE_NAME",
                        "IDEMPOTENCY_TTL_SECONDS",
                        "POWERTOOLS_SERVICE_NAME",
                        "POWERTOOLS_METRICS_NAMESPACE",
                    ),
                ),
                Function(
                    "api_handler",
                    environment=(
                        "BUCKET_NAME",
                        "RESULTS_PREFIX",
                        "SECRET_ARN",
                        "SECRET_CACHE_SECONDS",
                        "CORS_ALLOWED_ORIGINS",
                        "MAX_BODY_BYTES",
                        "APP_VERSION",
                        "POWERTOOLS_SERVICE_NAME",
                        "POWERTOOLS_METRICS_NAMESPACE",
                    ),
                ),
            ),
        ),
        Layer(
            name="api",
            owner="@serverless-platform/api",
            description="Regional REST API, prod stage, access logging, throttling",
            outputs={
                "rest_api_id": OutputSpec("ID of the REST API"),
                "rest_api_name": OutputSpec("Name of the REST API"),
                "api_stage_name": OutputSpec("Name of the deployed stage"),
                "api_access_log_group_name": OutputSpec("Log group receiving JSON access logs"),
                "api_gateway_url": OutputSpec("Invoke URL of the stage"),
                "health_check_url": OutputSpec("GET endpoint reporting health"),
                "process_endpoint_url": OutputSpec("POST endpoint that processes a JSON body"),
                "objects_endpoint_url": OutputSpec(
                    "Base of GET /objects/{key}, which returns a processing result"
                ),
            },
            consumes={
                "security": ("kms_key_arn", "api_gateway_cloudwatch_role_arn"),
                "compute": ("api_handler_function_name", "api_handler_alias_invoke_arn"),
            },
        ),
        Layer(
            name="observability",
            owner="@serverless-platform/sre",
            description="SNS alarm topic, CloudWatch alarms, dashboard",
            outputs={
                "sns_topic_arn": OutputSpec("SNS topic receiving alarm and OK notifications"),
                "dashboard_name": OutputSpec("CloudWatch dashboard name"),
                "dashboard_url": OutputSpec("Console URL of the dashboard"),
            },
            consumes={
                "security": (
                    "kms_key_arn",
                    "secret_rotation_function_name",
                ),
                "storage": ("dead_letter_queue_name",),
                "compute": ("s3_processor_function_name", "api_handler_function_name"),
                "api": ("rest_api_name", "api_stage_name"),
            },
        ),
    )
)
