"""A Lambda function as this product deploys every function: its own encrypted log group,
JSON logs, active tracing, arm64, a published version and a `live` alias that callers use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from shared.manifest import Function
from shared.naming import LIVE_ALIAS, ResourceNames
from shared.packaging import FunctionArchive


class EnvironmentMismatchError(pulumi.RunError):
    """A function's environment differs from what the manifest declares for it."""


@dataclass
class ServerlessFunctionArgs:
    # The function as the manifest declares it: its code folder and its environment's keys.
    function: Function
    function_name: str
    description: str
    archive: FunctionArchive
    handler: str
    runtime: str
    role_arn: pulumi.Input[str]
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    log_level: str
    kms_key_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    # A ceiling on concurrent executions; None leaves the function to the account's pool
    # (for a function already bounded upstream, such as by API Gateway throttling).
    reserved_concurrency: int | None = None


class ServerlessFunction(pulumi.ComponentResource):
    """Log group, function and live alias; the alias is what triggers and the API invoke."""

    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function
    alias: aws.lambda_.Alias

    def __init__(
        self, name: str, args: ServerlessFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless:compute:ServerlessFunction", name, None, opts)
        declared, given = set(args.function.environment), set(args.environment)
        if declared != given:
            missing = sorted(declared - given) or "none"
            undeclared = sorted(given - declared) or "none"
            raise EnvironmentMismatchError(
                f"function {args.function.name!r} is given the environment variables "
                f"{sorted(given)}, but shared/manifest.py declares {sorted(declared)}: set "
                "exactly the declared ones, or change the declaration (missing: "
                f"{missing}; undeclared: {undeclared})"
            )
        if args.archive.function != args.function.name:
            raise EnvironmentMismatchError(
                f"function {args.function.name!r} is given the archive of {args.archive.function!r}"
            )
        child = pulumi.ResourceOptions(parent=self)

        # Created before the function, so Lambda never creates an unencrypted, unexpiring one.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=ResourceNames.function_log_group(args.function_name),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        self.function = aws.lambda_.Function(
            name,
            name=args.function_name,
            description=args.description,
            role=args.role_arn,
            runtime=args.runtime,
            architectures=["arm64"],
            handler=args.handler,
            code=pulumi.FileArchive(str(args.archive.path)),
            source_code_hash=args.archive.sha256_base64,
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            # A new version per code or configuration change, so the alias can be moved back.
            publish=True,
            # Environment variables are encrypted with the product key, not an AWS-managed one.
            kms_key_arn=args.kms_key_arn,
            environment={"variables": dict(args.environment)},
            logging_config={
                "log_format": "JSON",
                "log_group": self.log_group.name,
                "application_log_level": args.log_level,
                "system_log_level": "WARN",
            },
            tracing_config={"mode": "Active"},
            reserved_concurrent_executions=args.reserved_concurrency,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group]),
        )
        self.alias = aws.lambda_.Alias(
            f"{name}-{LIVE_ALIAS}",
            name=LIVE_ALIAS,
            description="The version callers invoke; a rollback moves only this alias",
            function_name=self.function.name,
            function_version=self.function.version,
            opts=child,
        )
        self.register_outputs(
            {
                "function_arn": self.function.arn,
                "alias_arn": self.alias.arn,
                "log_group_name": self.log_group.name,
            }
        )
