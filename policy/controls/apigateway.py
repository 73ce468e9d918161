"""FSBP API Gateway controls for REST API stages.

Execution logging, caching and throttling live on `apigateway.MethodSettings`, the web ACL on
`wafv2.WebAclAssociation` and the logging role on `apigateway.Account`: those controls are
stack validations relating each stage to its settings resources.
"""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policy.model import Control, Finding, Scope
from policy.values import get, of_types, points_to, same_reference, truthy

STAGE = "aws:apigateway/stage:Stage"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
ACCOUNT = "aws:apigateway/account:Account"
WEB_ACL_ASSOCIATIONS = (
    "aws:wafv2/webAclAssociation:WebAclAssociation",
    "aws:wafregional/webAclAssociation:WebAclAssociation",
)
EXECUTION_LOG_LEVELS = ("ERROR", "INFO")
ALL_METHODS = "*/*"


def stage_label(stage: PolicyResource) -> str:
    return f"stage {get(stage.props, 'stageName', default=stage.name)} ({stage.name})"


def settings_of(args: StackValidationArgs, stage: PolicyResource) -> list[PolicyResource]:
    """The MethodSettings of `stage`: same REST API, and its stage name (or the stage itself)."""
    return [
        settings
        for settings in of_types(args, METHOD_SETTINGS)
        if same_reference(settings, "restApi", stage, "restApi")
        and (
            points_to(settings, "stageName", stage, "stageName")
            or get(settings.props, "stageName") == get(stage.props, "stageName")
        )
    ]


def all_methods_settings(args: StackValidationArgs, stage: PolicyResource) -> list[object]:
    return [
        get(settings.props, "settings")
        for settings in settings_of(args, stage)
        if get(settings.props, "methodPath") == ALL_METHODS
    ]


def check_execution_logging(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    stages = of_types(args, STAGE)
    if not stages:
        return
    for stage in stages:
        levels = [get(s, "loggingLevel") for s in all_methods_settings(args, stage)]
        if not any(level in EXECUTION_LOG_LEVELS for level in levels):
            yield Finding(
                stage.urn,
                f"{stage_label(stage)} has no MethodSettings for {ALL_METHODS} with "
                f"logging_level {' or '.join(EXECUTION_LOG_LEVELS)}",
            )
    if not any(get(a.props, "cloudwatchRoleArn") for a in of_types(args, ACCOUNT)):
        yield Finding(
            stages[0].urn,
            "no apigateway.Account sets the account's CloudWatch role, so API Gateway cannot "
            "write execution logs",
        )


def check_tracing(args: ResourceValidationArgs) -> Iterator[Finding]:
    if not truthy(get(args.props, "xrayTracingEnabled")):
        yield Finding(args.urn, f"stage {args.name} does not have X-Ray tracing enabled")


def check_web_acl(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    associations = of_types(args, *WEB_ACL_ASSOCIATIONS)
    for stage in of_types(args, STAGE):
        if not any(points_to(a, "resourceArn", stage) for a in associations):
            yield Finding(stage.urn, f"{stage_label(stage)} has no WAF web ACL associated")


def check_cache_encryption(args: ResourceValidationArgs) -> Iterator[Finding]:
    settings = get(args.props, "settings")
    if truthy(get(settings, "cachingEnabled")) and not truthy(get(settings, "cacheDataEncrypted")):
        yield Finding(
            args.urn,
            f"method settings {args.name} cache responses without encrypting the cache",
        )


CONTROLS = (
    Control(
        "APIGateway.1",
        "apigateway-1-execution-logging",
        "API Gateway REST and WebSocket API execution logging should be enabled",
        "Each stage has MethodSettings for */* with logging_level ERROR or INFO, and an "
        "apigateway.Account sets the account's CloudWatch role.",
        severity=Severity.MEDIUM,
        subjects=frozenset({STAGE}),
        stack_check=check_execution_logging,
    ),
    Control(
        "APIGateway.3",
        "apigateway-3-xray-tracing",
        "API Gateway REST API stages should have AWS X-Ray tracing enabled",
        "Each stage sets xray_tracing_enabled.",
        severity=Severity.LOW,
        resource_types=frozenset({STAGE}),
        resource_check=check_tracing,
    ),
    Control(
        "APIGateway.4",
        "apigateway-4-waf-web-acl",
        "API Gateway should be associated with a WAF Web ACL",
        "Each stage is the resource of a wafv2.WebAclAssociation.",
        severity=Severity.MEDIUM,
        subjects=frozenset({STAGE}),
        stack_check=check_web_acl,
    ),
    Control(
        "APIGateway.5",
        "apigateway-5-cache-encrypted",
        "API Gateway REST API cache data should be encrypted at rest",
        "MethodSettings that enable caching also set cache_data_encrypted.",
        severity=Severity.MEDIUM,
        resource_types=frozenset({METHOD_SETTINGS}),
        resource_check=check_cache_encryption,
    ),
)
