"""API layer: the public REST API in front of the API handler function.

Deploys a regional REST API whose routes (shared.api_routes) proxy to the API handler's live
alias, with body validation on POST /process; a deployment replaced whenever the routes change;
the prod stage with JSON access logs to a KMS-encrypted log group, X-Ray tracing, throttling and
per-method metrics; and the account's CloudWatch logging role. Reads the key and the logging
role from the security layer, the handler's name and alias from compute.
"""

import json

import pulumi
import pulumi_aws as aws

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
upstream = UpstreamOutputs(layer, org=config.string("org"))

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

# API Gateway writes logs through one role per account and region
account_settings = aws.apigateway.Account(
    "account-logging-role",
    cloudwatch_role_arn=upstream.require("api_gateway_cloudwatch_role_arn"),
)

access_logs = aws.cloudwatch.LogGroup(
    "access-logs",
    name=names.api_access_log_group,
    retention_in_days=config.log_retention_days("log_retention_days"),
    kms_key_id=upstream.require("kms_key_arn"),
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
    opts=pulumi.ResourceOptions(depends_on=[account_settings]),
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
        "throttling_rate_limit": config.integer("throttling_rate_limit", minimum=1, maximum=10_000),
        "throttling_burst_limit": config.integer(
            "throttling_burst_limit", minimum=1, maximum=5_000
        ),
    },
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
