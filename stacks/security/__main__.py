"""Security layer: the keys to everything the other layers build.

Deploys the customer-managed KMS key (rotated, aliased) whose key policy lets only this
product's services use it; the application secret in Secrets Manager, encrypted with that key,
its value from secret config or generated and then rotated automatically by a four-step rotation
function; one least-privilege execution role per function; and the roles API Gateway and SNS use
to write logs. Reads no other layer: it names the resources of later layers through
shared.naming, so its policies are exact before those resources exist.
"""

import json

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from shared.aws_context import current_location
from shared.components.serverless_function import ServerlessFunction, ServerlessFunctionArgs
from shared.components.service_role import ServiceRole, ServiceRoleArgs
from shared.config import LayerConfig
from shared.exports import export_outputs
from shared.manifest import MANIFEST
from shared.naming import ResourceNames
from shared.packaging import SUPPORTED_RUNTIMES, build_archive
from shared.policies import (
    api_gateway_logging_policy,
    api_handler_policy,
    kms_key_policy,
    s3_processor_policy,
    secret_rotation_policy,
    sns_delivery_status_policy,
)
from shared.tags import apply_standard_tags

layer = MANIFEST.layer("security")
config = LayerConfig(layer)
location = current_location()
names = ResourceNames(pulumi.get_stack(), location)
apply_standard_tags(layer, names.environment)

# The customer-managed key every store of the product is encrypted with
key = aws.kms.Key(
    "app-key",
    description=f"{names.prefix}: encrypts the bucket, table, queue, topic, logs and secret",
    enable_key_rotation=True,
    deletion_window_in_days=config.integer("kms_deletion_window_days", minimum=7, maximum=30),
    policy=json.dumps(kms_key_policy(names)),
)
aws.kms.Alias("app-key-alias", name=names.kms_alias, target_key_id=key.key_id)

# The application secret: never a literal, generated unless supplied as secret config
supplied_api_key = config.optional_secret("api_key")
api_key = (
    supplied_api_key or random.RandomPassword("generated-api-key", length=40, special=False).result
)
secret = aws.secretsmanager.Secret(
    "app-secret",
    name=names.secret,
    description="Application secret read by the API handler",
    kms_key_id=key.arn,
    recovery_window_in_days=config.integer("secret_recovery_window_days", minimum=7, maximum=30),
)
initial_secret_value = aws.secretsmanager.SecretVersion(
    "app-secret-value",
    secret_id=secret.id,
    # Marked secret explicitly, whatever the source: the value is encrypted in Pulumi state.
    secret_string=pulumi.Output.json_dumps({"api_key": api_key}).apply(pulumi.Output.secret),
    # Rotation moves AWSCURRENT to newer versions; that is not drift to undo.
    opts=pulumi.ResourceOptions(ignore_changes=["versionStages"]),
)

# One execution role per function, each allowed exactly what its function does
s3_processor_role = ServiceRole(
    "s3-processor-role",
    ServiceRoleArgs(
        role_name=names.s3_processor_role,
        service="lambda.amazonaws.com",
        account_id=location.account_id,
        description="Execution role of the S3 processor function",
        policy=key.arn.apply(lambda key_arn: s3_processor_policy(names, key_arn)),
    ),
)
api_handler_role = ServiceRole(
    "api-handler-role",
    ServiceRoleArgs(
        role_name=names.api_handler_role,
        service="lambda.amazonaws.com",
        account_id=location.account_id,
        description="Execution role of the API handler function",
        policy=pulumi.Output.all(key.arn, secret.arn).apply(
            lambda arns: api_handler_policy(names, arns[0], arns[1])
        ),
    ),
)
secret_rotation_role = ServiceRole(
    "secret-rotation-role",
    ServiceRoleArgs(
        role_name=names.secret_rotation_role,
        service="lambda.amazonaws.com",
        account_id=location.account_id,
        description="Execution role of the secret rotation function",
        policy=pulumi.Output.all(key.arn, secret.arn).apply(
            lambda arns: secret_rotation_policy(names, arns[0], arns[1])
        ),
    ),
)

# The standard four-step rotation function; deployed always, scheduled for generated values
rotation_runtime = SUPPORTED_RUNTIMES[0]
secret_rotation = ServerlessFunction(
    "secret-rotation",
    ServerlessFunctionArgs(
        function_name=names.secret_rotation_function,
        description="Rotates the application secret (createSecret/setSecret/testSecret/finish)",
        archive=build_archive(
            "secret_rotation", python_version=rotation_runtime.removeprefix("python")
        ),
        handler="handler.lambda_handler",
        runtime=rotation_runtime,
        role_arn=secret_rotation_role.role.arn,
        memory_mb=128,
        timeout_seconds=30,
        log_retention_days=config.log_retention_days("log_retention_days"),
        log_level="INFO",
        kms_key_arn=key.arn,
        environment={},
        # Secrets Manager rotates a secret one step at a time: one execution is enough.
        reserved_concurrency=1,
    ),
)
rotation_invoke_permission = aws.lambda_.Permission(
    "secretsmanager-invoke-rotation",
    action="lambda:InvokeFunction",
    function=secret_rotation.function.name,
    principal="secretsmanager.amazonaws.com",
    source_arn=secret.arn,
    source_account=location.account_id,
)
if supplied_api_key is None:
    aws.secretsmanager.SecretRotation(
        "app-secret-rotation",
        secret_id=secret.id,
        rotation_lambda_arn=secret_rotation.function.arn,
        rotation_rules={
            "automatically_after_days": config.integer(
                "secret_rotation_days", minimum=1, maximum=365
            )
        },
        opts=pulumi.ResourceOptions(depends_on=[rotation_invoke_permission, initial_secret_value]),
    )

# The account-wide role API Gateway assumes to write execution and access logs
api_gateway_logging_role = ServiceRole(
    "api-gateway-cloudwatch-role",
    ServiceRoleArgs(
        role_name=names.api_gateway_cloudwatch_role,
        service="apigateway.amazonaws.com",
        account_id=None,
        description="Lets API Gateway write this product's execution and access logs",
        policy=api_gateway_logging_policy(names),
    ),
)

# The role SNS assumes to log whether each alarm notification was delivered
sns_delivery_status_role = ServiceRole(
    "sns-delivery-status-role",
    ServiceRoleArgs(
        role_name=names.sns_delivery_status_role,
        service="sns.amazonaws.com",
        account_id=None,
        description="Lets SNS log the alarm topic's delivery successes and failures",
        policy=sns_delivery_status_policy(names),
    ),
)

export_outputs(
    layer,
    {
        "kms_key_arn": key.arn,
        "kms_alias_name": names.kms_alias,
        "secrets_manager_arn": secret.arn,
        "secret_name": secret.name,
        "s3_processor_role_arn": s3_processor_role.role.arn,
        "api_handler_role_arn": api_handler_role.role.arn,
        "api_gateway_cloudwatch_role_arn": api_gateway_logging_role.role.arn,
        "sns_delivery_status_role_arn": sns_delivery_status_role.role.arn,
        "secret_rotation_function_name": secret_rotation.function.name,
    },
)
