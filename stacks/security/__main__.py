"""Security layer: the keys to everything the other layers build.

Deploys the customer-managed KMS key (rotated, aliased) whose key policy lets only this
product's services use it; the application secret in Secrets Manager, encrypted with that key,
its value either supplied as secret config or created by the four-step rotation function, which
Secrets Manager runs at once and then on schedule (so a generated value never passes through
Pulumi or its state); one least-privilege execution role per function; and the role API Gateway
writes logs through, which the account-wide API Gateway setting may name. Reads no other layer:
it names the resources of later layers through shared.naming, so its policies are exact before
those resources exist.
"""

import json

import pulumi
import pulumi_aws as aws

from shared.aws_context import current_location
from shared.components.serverless_function import ServerlessFunction, ServerlessFunctionArgs
from shared.components.service_role import ServiceRole, ServiceRoleArgs
from shared.config import LayerConfig
from shared.exports import export_outputs
from shared.manifest import MANIFEST
from shared.naming import ResourceNames
from shared.packaging import SUPPORTED_RUNTIMES, built_archive
from shared.policies import (
    api_gateway_account_logging_policy,
    api_handler_policy,
    kms_key_policy,
    s3_processor_policy,
    secret_rotation_policy,
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

# The application secret; unless a value is supplied, the rotation function creates it. Its
# name is unique per creation (a prefix): a destroyed environment's secret keeps its name
# reserved for the recovery window, and the environment can be deployed again meanwhile.
supplied_api_key = config.optional_secret("api_key")
secret = aws.secretsmanager.Secret(
    "app-secret",
    name_prefix=names.secret_name_prefix,
    description="Application secret read by the API handler",
    kms_key_id=key.arn,
    recovery_window_in_days=config.integer("secret_recovery_window_days", minimum=7, maximum=30),
)
if supplied_api_key is not None:
    aws.secretsmanager.SecretVersion(
        "app-secret-value",
        secret_id=secret.id,
        # The user chose to supply it, so it is in state: marked secret, hence encrypted there.
        secret_string=pulumi.Output.json_dumps({"api_key": supplied_api_key}).apply(
            pulumi.Output.secret
        ),
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
rotation = layer.function("secret_rotation")
secret_rotation = ServerlessFunction(
    "secret-rotation",
    ServerlessFunctionArgs(
        function=rotation,
        function_name=names.secret_rotation_function,
        description="Rotates the application secret (createSecret/setSecret/testSecret/finish)",
        archive=built_archive(rotation.name),
        handler="handler.lambda_handler",
        runtime=SUPPORTED_RUNTIMES[0],
        role_arn=secret_rotation_role.role.arn,
        memory_mb=128,
        timeout_seconds=30,
        log_retention_days=config.log_retention_days("log_retention_days"),
        log_level="INFO",
        kms_key_arn=key.arn,
        environment={},
        # Secrets Manager runs one rotation step at a time; a reservation keeps rotation
        # running even when other functions use up the account's concurrency.
        reserved_concurrency=config.reserved_concurrency("rotation_reserved_concurrency"),
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
    # Rotating immediately makes Secrets Manager run the four steps now: createSecret generates
    # the first value inside AWS, so the only copies of the key live in Secrets Manager.
    aws.secretsmanager.SecretRotation(
        "app-secret-rotation",
        secret_id=secret.id,
        rotation_lambda_arn=secret_rotation.function.arn,
        rotate_immediately=True,
        rotation_rules={
            "automatically_after_days": config.integer(
                "secret_rotation_days", minimum=1, maximum=365
            )
        },
        opts=pulumi.ResourceOptions(depends_on=[rotation_invoke_permission]),
    )

# The role the account-wide API Gateway logging setting names. Left in place on destroy: the
# setting may still name it for another environment's stage (README, "API Gateway's
# account-wide logging role"), and it can write nothing but API Gateway's log groups.
api_gateway_logging_role = ServiceRole(
    "api-gateway-cloudwatch-role",
    ServiceRoleArgs(
        role_name=names.api_gateway_cloudwatch_role_prefix,
        service="apigateway.amazonaws.com",
        account_id=None,
        description="Lets API Gateway write execution and access logs (account-wide setting)",
        policy=api_gateway_account_logging_policy(names),
        outlives_stack=True,
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
        "secret_rotation_function_name": secret_rotation.function.name,
    },
)
