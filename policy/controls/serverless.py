"""Well-Architected Serverless Lens checks, which FSBP does not cover.

Several relate resources that different layers declare: the S3 trigger (compute) and the
bucket (storage), the functions (compute, security) and the API throttling in front of them
(api), the alarms (observability) and everything they watch. The engine runs the pack once per
stack, so under the default `stack` scope these checks judge only what the stack can show (a
pair whose two sides are both present) and leave the rest undecided; `python -m tooling.synth`
evaluates them with the `product` scope over the union of all five layers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policy.controls.apigateway import STAGE, all_methods_settings
from policy.model import SERVERLESS_LENS, Control, Finding, Scope
from policy.values import as_list, get, identifiers, number, of_types, same_reference, truthy

FUNCTION = "aws:lambda/function:Function"
EVENT_INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
BUCKET_NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
REST_API = "aws:apigateway/restApi:RestApi"
RESOURCE = "aws:apigateway/resource:Resource"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
QUEUE = "aws:sqs/queue:Queue"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

# The only route allowed to answer without authorization. Written here, not read from
# shared/api_routes.py: marking another route public there must fail this check, not pass it.
PUBLIC_ROUTES = frozenset({"GET /health"})
AUTHORIZATIONS = frozenset({"AWS_IAM", "COGNITO_USER_POOLS", "CUSTOM"})
# A browser's CORS preflight is an OPTIONS request that never carries credentials (Fetch
# standard, CORS-preflight fetch: https://fetch.spec.whatwg.org/#cors-preflight-fetch), so an
# OPTIONS method that requires authorization fails every preflight. Exempt are exactly the
# preflights of routes: an OPTIONS method on a path of the same REST API that also has another
# method. An OPTIONS method alone on a path, and every other method, are judged as before.
PREFLIGHT_METHOD = "OPTIONS"


@dataclass(frozen=True)
class Target:
    """A function invoked asynchronously: its name and the alias or version invoked."""

    function: str
    qualifier: str | None
    source: PolicyResource


def parse_function_arn(arn: str) -> tuple[str, str | None] | None:
    """`arn:aws:lambda:r:a:function:NAME[:QUALIFIER]` -> (NAME, QUALIFIER)."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
        return None
    return parts[6], (parts[7] if len(parts) > 7 and parts[7] != "$LATEST" else None)


def function_name(function: PolicyResource) -> str:
    return str(get(function.props, "name") or get(function.props, "id") or function.name)


def async_targets(args: StackValidationArgs) -> list[Target]:
    found: list[Target] = []
    arns: list[tuple[str, PolicyResource]] = []
    for notification in of_types(args, BUCKET_NOTIFICATION):
        for config in as_list(get(notification.props, "lambdaFunctions")):
            arns.append((str(get(config, "lambdaFunctionArn", default="")), notification))
    for subscription in of_types(args, TOPIC_SUBSCRIPTION):
        if get(subscription.props, "protocol") == "lambda":
            arns.append((str(get(subscription.props, "endpoint", default="")), subscription))
    for target in of_types(args, EVENT_TARGET):
        arns.append((str(get(target.props, "arn", default="")), target))
    for arn, source in arns:
        parsed = parse_function_arn(arn)
        if parsed is not None:
            found.append(Target(parsed[0], parsed[1], source))
    return found


def _invoke_config_function(config: PolicyResource) -> tuple[str, str | None]:
    name = str(get(config.props, "functionName", default=""))
    qualifier = get(config.props, "qualifier")
    parsed = parse_function_arn(name)
    if parsed is not None:
        name, qualifier = parsed[0], qualifier or parsed[1]
    return name, (None if qualifier in (None, "", "$LATEST") else str(qualifier))


def _functions_named(args: StackValidationArgs, name: str) -> list[PolicyResource]:
    return [f for f in of_types(args, FUNCTION) if function_name(f) == name]


def check_async_on_failure(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    configs = of_types(args, EVENT_INVOKE_CONFIG)
    for target in async_targets(args):
        for_function = [c for c in configs if _invoke_config_function(c)[0] == target.function]
        functions = _functions_named(args, target.function)
        if scope is Scope.STACK and not for_function and not functions:
            continue  # the function is another layer's: synth judges the pair
        if any(get(f.props, "deadLetterConfig", "targetArn") for f in functions):
            continue
        matching = [c for c in for_function if _invoke_config_function(c)[1] == target.qualifier]
        if not any(get(c.props, "destinationConfig", "onFailure", "destination") for c in matching):
            invoked = target.function + (f":{target.qualifier}" if target.qualifier else "")
            yield Finding(
                target.source.urn,
                f"{target.source.name} invokes {invoked} asynchronously, and no "
                "FunctionEventInvokeConfig for that qualifier (nor a dead-letter config) sends "
                "failed events to an on-failure destination",
            )


def _integrations_of(args: StackValidationArgs, name: str) -> list[PolicyResource]:
    marks = (f":function:{name}/", f":function:{name}:")
    return [
        integration
        for integration in of_types(args, INTEGRATION)
        if any(mark in str(get(integration.props, "uri", default="")) for mark in marks)
    ]


def _throttled(settings: object, rate_key: str, burst_key: str) -> bool:
    """Both limits set and positive."""
    rate, burst = number(get(settings, rate_key)), number(get(settings, burst_key))
    return rate is not None and rate > 0 and burst is not None and burst > 0


def _usage_plan_throttles(args: StackValidationArgs, stage: PolicyResource) -> bool:
    api_id = get(stage.props, "restApi")
    stage_name = get(stage.props, "stageName")
    for plan in of_types(args, USAGE_PLAN):
        if not _throttled(get(plan.props, "throttleSettings"), "rateLimit", "burstLimit"):
            continue
        for api_stage in as_list(get(plan.props, "apiStages")):
            if (
                api_id
                and get(api_stage, "apiId") == str(api_id)
                and get(api_stage, "stage") == stage_name
            ):
                return True
    return False


def _stage_throttled(args: StackValidationArgs, stage: PolicyResource) -> bool:
    return any(
        _throttled(s, "throttlingRateLimit", "throttlingBurstLimit")
        for s in all_methods_settings(args, stage)
    ) or _usage_plan_throttles(args, stage)


def check_bounded_concurrency(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    asynchronously_invoked = {target.function for target in async_targets(args)}
    has_api = bool(of_types(args, REST_API))
    stages = of_types(args, STAGE)
    for function in of_types(args, FUNCTION):
        name = function_name(function)
        reserved = number(get(function.props, "reservedConcurrentExecutions"))
        if reserved is not None and reserved >= 0:
            continue
        integrations = _integrations_of(args, name)
        if name in asynchronously_invoked or (not integrations and has_api):
            yield Finding(
                function.urn,
                f"function {name} has no reserved concurrency and no throttled API in front of it",
            )
            continue
        if not integrations:
            if scope is Scope.PRODUCT:
                yield Finding(
                    function.urn,
                    f"function {name} has no reserved concurrency and no API invokes it",
                )
            continue  # per stack: the API in front may be another layer's
        for integration in integrations:
            for stage in stages:
                if same_reference(stage, "restApi", integration, "restApi") and not (
                    _stage_throttled(args, stage)
                ):
                    yield Finding(
                        function.urn,
                        f"function {name} has no reserved concurrency and stage "
                        f"{get(stage.props, 'stageName', default=stage.name)} in front of it "
                        "sets no throttling rate and burst limit for */*",
                    )


def check_tracing_and_json_logs(args: ResourceValidationArgs) -> Iterator[Finding]:
    if get(args.props, "tracingConfig", "mode") != "Active":
        yield Finding(args.urn, f"function {args.name} does not have active X-Ray tracing")
    if get(args.props, "loggingConfig", "logFormat") != "JSON":
        yield Finding(args.urn, f"function {args.name} does not log in JSON")


def _alarmed_metrics(args: StackValidationArgs) -> set[tuple[str, str, str, str]]:
    """(namespace, metric, dimension, value) for every dimension of every alarmed metric."""
    metrics: set[tuple[str, str, str, str]] = set()
    for alarm in of_types(args, METRIC_ALARM):
        specs = [alarm.props]
        specs.extend(get(q, "metric") for q in as_list(get(alarm.props, "metricQueries")))
        for spec in specs:
            dimensions = get(spec, "dimensions") or {}
            for key in dimensions:
                metrics.add(
                    (
                        str(get(spec, "namespace")),
                        str(get(spec, "metricName")),
                        str(key),
                        str(dimensions[key]),
                    )
                )
    return metrics


def dead_letter_queues(args: StackValidationArgs) -> list[PolicyResource]:
    destinations: set[str] = set()
    for config in of_types(args, EVENT_INVOKE_CONFIG):
        destinations.add(str(get(config.props, "destinationConfig", "onFailure", "destination")))
    for function in of_types(args, FUNCTION):
        destinations.add(str(get(function.props, "deadLetterConfig", "targetArn")))
    for queue in of_types(args, QUEUE):
        redrive = get(queue.props, "redrivePolicy")
        if isinstance(redrive, str) and redrive:
            try:
                destinations.add(str(json.loads(redrive).get("deadLetterTargetArn")))
            except (json.JSONDecodeError, AttributeError):
                continue
    return [q for q in of_types(args, QUEUE) if identifiers(q, "url") & destinations]


def check_alarms(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    alarmed = _alarmed_metrics(args)
    if scope is Scope.STACK and not of_types(args, METRIC_ALARM):
        return  # the alarms are another layer's: synth judges the whole product
    wanted: list[tuple[PolicyResource, str, str, str, str]] = []
    for function in of_types(args, FUNCTION):
        name = function_name(function)
        wanted.append((function, "AWS/Lambda", "Errors", "FunctionName", name))
        wanted.append((function, "AWS/Lambda", "Throttles", "FunctionName", name))
    for api in of_types(args, REST_API):
        api_name = str(get(api.props, "name", default=api.name))
        wanted.append((api, "AWS/ApiGateway", "5XXError", "ApiName", api_name))
    for queue in dead_letter_queues(args):
        queue_name = str(get(queue.props, "name", default=queue.name))
        metric = "ApproximateNumberOfMessagesVisible"
        wanted.append((queue, "AWS/SQS", metric, "QueueName", queue_name))
    for resource, namespace, metric, dimension, value in wanted:
        if (namespace, metric, dimension, value) not in alarmed:
            yield Finding(
                resource.urn,
                f"no alarm on {namespace} {metric} for {dimension}={value}",
            )


def _path_of(
    resource_id: object, by_id: Mapping[str, PolicyResource], roots: set[str]
) -> str | None:
    """The path of an API resource, walking `parentId` up to a REST API's root resource."""
    segments: list[str] = []
    current = resource_id
    for _ in range(64):
        if current in roots:
            return "/" + "/".join(reversed(segments))
        resource = by_id.get(str(current))
        if resource is None:
            return None
        if get(resource.props, "path"):
            return str(get(resource.props, "path")).rstrip("/") + (
                "/" + "/".join(reversed(segments)) if segments else ""
            )
        segments.append(str(get(resource.props, "pathPart", default="?")))
        current = get(resource.props, "parentId")
    return None


def check_api_authorization(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    by_id = {
        value: resource for resource in of_types(args, RESOURCE) for value in identifiers(resource)
    }
    roots = {str(get(api.props, "rootResourceId")) for api in of_types(args, REST_API)}
    routes: list[tuple[PolicyResource, str, str | None]] = []
    methods_on: dict[tuple[str, str], set[str]] = {}
    for method in of_types(args, METHOD):
        http_method = str(get(method.props, "httpMethod", default="?")).upper()
        path = _path_of(get(method.props, "resourceId"), by_id, roots)
        routes.append((method, http_method, path))
        if path is not None:
            api_path = (str(get(method.props, "restApi")), path)
            methods_on.setdefault(api_path, set()).add(http_method)
    for method, http_method, path in routes:
        route = f"{http_method} {path or '(path unknown)'}"
        if route in PUBLIC_ROUTES:
            continue
        if http_method == PREFLIGHT_METHOD and path is not None:
            others = methods_on[(str(get(method.props, "restApi")), path)] - {PREFLIGHT_METHOD}
            if others:
                continue  # the preflight of a route (see PREFLIGHT_METHOD)
        authorization = get(method.props, "authorization")
        if authorization in AUTHORIZATIONS or truthy(get(method.props, "apiKeyRequired")):
            continue
        yield Finding(
            method.urn,
            f"{route} ({method.name}) requires no authorization (authorization="
            f"{authorization!r}, no API key): use AWS_IAM, COGNITO_USER_POOLS, CUSTOM or "
            "api_key_required",
        )


CONTROLS = (
    Control(
        "SLS.async-failure-destination",
        "serverless-async-on-failure-destination",
        "Asynchronous Lambda triggers have an on-failure destination",
        "Every function invoked asynchronously (S3 notification, SNS subscription, EventBridge "
        "target) has a FunctionEventInvokeConfig for the invoked qualifier with an on_failure "
        "destination, or a dead-letter config.",
        framework=SERVERLESS_LENS,
        subjects=frozenset({BUCKET_NOTIFICATION, TOPIC_SUBSCRIPTION, EVENT_TARGET}),
        stack_check=check_async_on_failure,
        cross_layer=True,
    ),
    Control(
        "SLS.bounded-concurrency",
        "serverless-bounded-concurrency",
        "Reserved concurrency or API throttling bounds every function",
        "A function without reserved concurrency is invoked only through API Gateway stages "
        "that throttle */* (MethodSettings or a usage plan).",
        framework=SERVERLESS_LENS,
        severity=Severity.MEDIUM,
        subjects=frozenset({FUNCTION}),
        stack_check=check_bounded_concurrency,
        cross_layer=True,
    ),
    Control(
        "SLS.tracing-json-logs",
        "serverless-tracing-and-json-logs",
        "Functions are traced and log structured JSON",
        "Each function has tracing_config mode Active and logging_config log_format JSON.",
        framework=SERVERLESS_LENS,
        severity=Severity.LOW,
        resource_types=frozenset({FUNCTION}),
        resource_check=check_tracing_and_json_logs,
    ),
    Control(
        "SLS.alarms",
        "serverless-alarms-errors-throttles-5xx-dlq",
        "Alarms watch errors, throttles, 5XX and dead-letter depth",
        "Each function has alarms on AWS/Lambda Errors and Throttles, each REST API on "
        "AWS/ApiGateway 5XXError, and each dead-letter queue on "
        "ApproximateNumberOfMessagesVisible.",
        framework=SERVERLESS_LENS,
        severity=Severity.MEDIUM,
        subjects=frozenset({FUNCTION, REST_API, QUEUE}),
        stack_check=check_alarms,
        cross_layer=True,
    ),
    Control(
        "SLS.api-authorization",
        "serverless-api-methods-authorized",
        f"Every API method except {', '.join(sorted(PUBLIC_ROUTES))} and CORS preflights "
        "requires authorization",
        "Methods use AWS_IAM, COGNITO_USER_POOLS or CUSTOM authorization or require an API "
        "key; no FSBP control covers this for REST APIs. An OPTIONS method on a path that has "
        "another method is its CORS preflight, which never carries credentials, and is exempt.",
        framework=SERVERLESS_LENS,
        severity=Severity.HIGH,
        subjects=frozenset({METHOD}),
        stack_check=check_api_authorization,
    ),
)
