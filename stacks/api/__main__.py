"""API layer: the public REST API in front of the API handler function.

Deploys a regional REST API whose routes (shared.api_routes) proxy to the API handler's live
alias, with body validation on POST /process and authorization (AWS_IAM, or API keys with a
usage plan) on every route but GET /health and the derived OPTIONS routes (CORS preflights,
which browsers send without credentials); a deployment replaced whenever the routes change;
the prod stage with JSON access logs to a KMS-encrypted log group, X-Ray tracing, throttling and
per-method metrics; the stage's execution log group, created before API Gateway would create it
without retention or encryption; a WAF web ACL (AWS common rule set, per-IP rate limit) on the
stage; and, unless the account's administrators own it, the account-wide API Gateway setting
naming the logging role. Reads the key and the logging role from the security layer, the
handler's name and alias from compute.
"""

import json

import pulumi
import pulumi_aws as aws

from shared.api_routes import AUTHORIZATION_MODES
from shared.aws_context import current_location
from shared.components.lambda_proxy_api import LambdaProxyApi, LambdaProxyApiArgs
from shared.config import LayerConfig
from shared.exports import export_outputs
from shared.manifest import MANIFEST
from shared.naming import API_STAGE_NAME, ResourceNames
from shared.references import UpstreamOutputs
from shared.tags import apply_standard_tags

# The access-log fields of the original program, one JSON object per request.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
}

layer = MANIFEST.layer("api")
config = LayerConfig(layer)
names = ResourceNames(pulumi.get_stack(), current_location())
apply_standard_tags(layer, names.environment)
upstream = UpstreamOutputs(layer, org=config.optional_string("org"))
authorization = config.string("authorization", choices=AUTHORIZATION_MODES)
throttling_rate_limit = config.integer("throttling_rate_limit", minimum=1, maximum=10_000)
throttling_burst_limit = config.integer("throttling_burst_limit", minimum=1, maximum=5_000)

rest_api = aws.apigateway.RestApi(
    "rest-api",
    name=names.rest_api,
    description="Serverless REST API: health, processing and processing results",
    endpoint_configuration={"types": "REGIONAL"},
)

# Every route proxied to the API handler's live alias, each with its own invoke permission
routes = LambdaProxyApi(
    "routes",
    LambdaProxyApiArgs(
        rest_api=rest_api,
        function_name=upstream.require("api_handler_function_name"),
        function_invoke_arn=upstream.require("api_handler_alias_invoke_arn"),
        authorization=authorization,
    ),
)

# A new deployment exactly when the routes change; the stage then moves to it
deployment = aws.apigateway.Deployment(
    "deployment",
    rest_api=rest_api.id,
    description="Routes " + routes.fingerprint[:12],
    triggers={"routes": routes.fingerprint},
    opts=pulumi.ResourceOptions(depends_on=[*routes.methods, *routes.integrations]),
)

# API Gateway writes every REST API's logs in this account and region through one role named
# in an account-wide setting. Kept when this stack is destroyed (destroying the resource would
# reset the setting: terraform-provider-aws#42226), so another environment's stage that logs
# through it keeps logging; see README, "API Gateway's account-wide logging role".
account_logging_setting = (
    aws.apigateway.Account(
        "account-logging-role",
        cloudwatch_role_arn=upstream.require("api_gateway_cloudwatch_role_arn"),
        opts=pulumi.ResourceOptions(retain_on_delete=True),
    )
    if config.boolean("manage_account_logging_role")
    else None
)

log_retention_days = config.log_retention_days("log_retention_days")
kms_key_arn = upstream.require("kms_key_arn")
access_logs = aws.cloudwatch.LogGroup(
    "access-logs",
    name=names.api_access_log_group,
    retention_in_days=log_retention_days,
    kms_key_id=kms_key_arn,
)
# Created here, before execution logging is turned on: API Gateway would otherwise create it on
# its first write, with no retention and no encryption.
execution_logs = aws.cloudwatch.LogGroup(
    "execution-logs",
    name=rest_api.id.apply(names.api_execution_log_group),
    retention_in_days=log_retention_days,
    kms_key_id=kms_key_arn,
)

stage = aws.apigateway.Stage(
    "prod-stage",
    rest_api=rest_api.id,
    deployment=deployment.id,
    stage_name=API_STAGE_NAME,
    access_log_settings={
        "destination_arn": access_logs.arn,
        "format": json.dumps(ACCESS_LOG_FORMAT),
    },
    xray_tracing_enabled=True,
    # API Gateway refuses logging settings until the account setting names a role.
    opts=pulumi.ResourceOptions(
        depends_on=[account_logging_setting] if account_logging_setting else []
    ),
)

# Throttling, metrics and execution logging for every method of the stage
aws.apigateway.MethodSettings(
    "all-methods",
    rest_api=rest_api.id,
    stage_name=stage.stage_name,
    method_path="*/*",
    settings={
        "metrics_enabled": config.boolean("metrics_enabled"),
        "logging_level": config.string("execution_logging_level", choices=["INFO", "ERROR"]),
        # Full request and response logging would write bodies (and any secret in them).
        "data_trace_enabled": False,
        "throttling_rate_limit": throttling_rate_limit,
        "throttling_burst_limit": throttling_burst_limit,
    },
    opts=pulumi.ResourceOptions(depends_on=[execution_logs]),
)


def _visibility(metric_name: str) -> aws.wafv2.WebAclVisibilityConfigArgsDict:
    return {
        "cloudwatch_metrics_enabled": True,
        "metric_name": metric_name,
        "sampled_requests_enabled": True,
    }


# A web application firewall in front of the stage: common exploits and per-IP floods
web_acl = aws.wafv2.WebAcl(
    "web-acl",
    name=names.web_acl,
    description="AWS common rule set and a per-IP rate limit for the serverless API",
    scope="REGIONAL",
    default_action={"allow": {}},
    rules=[
        {
            "name": "aws-common-rule-set",
            "priority": 0,
            "override_action": {"none": {}},
            "statement": {
                "managed_rule_group_statement": {
                    "vendor_name": "AWS",
                    "name": "AWSManagedRulesCommonRuleSet",
                    # The rule set blocks bodies over 8 KB; POST /process accepts up to the
                    # handler's configured limit and answers 413 itself, so only count them.
                    "rule_action_overrides": [
                        {"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}
                    ],
                }
            },
            "visibility_config": _visibility("aws-common-rule-set"),
        },
        {
            "name": "rate-limit-per-ip",
            "priority": 1,
            "action": {"block": {}},
            "statement": {
                "rate_based_statement": {
                    "limit": config.integer(
                        "waf_rate_limit_per_5_minutes", minimum=100, maximum=2_000_000
                    ),
                    "aggregate_key_type": "IP",
                }
            },
            "visibility_config": _visibility("rate-limit-per-ip"),
        },
    ],
    visibility_config=_visibility(names.web_acl),
)
aws.wafv2.WebAclAssociation("web-acl-association", resource_arn=stage.arn, web_acl_arn=web_acl.arn)

# With API keys, callers hold a key bound to a usage plan with its own throttle and quota
if authorization == "API_KEY":
    api_key = aws.apigateway.ApiKey(
        "api-key", name=names.api_key, description="Key for the serverless API's callers"
    )
    usage_plan = aws.apigateway.UsagePlan(
        "usage-plan",
        name=names.usage_plan,
        api_stages=[{"api_id": rest_api.id, "stage": stage.stage_name}],
        throttle_settings={
            "rate_limit": throttling_rate_limit,
            "burst_limit": throttling_burst_limit,
        },
        quota_settings={
            "limit": config.integer("api_key_daily_quota", minimum=1, maximum=100_000_000),
            "period": "DAY",
        },
    )
    aws.apigateway.UsagePlanKey(
        "usage-plan-key", key_id=api_key.id, key_type="API_KEY", usage_plan_id=usage_plan.id
    )

export_outputs(
    layer,
    {
        "rest_api_id": rest_api.id,
        "rest_api_name": rest_api.name,
        "api_stage_name": stage.stage_name,
        "api_access_log_group_name": access_logs.name,
        "api_gateway_url": stage.invoke_url,
        "health_check_url": pulumi.Output.concat(stage.invoke_url, "/health"),
        "process_endpoint_url": pulumi.Output.concat(stage.invoke_url, "/process"),
        "objects_endpoint_url": pulumi.Output.concat(stage.invoke_url, "/objects/"),
    },
)
