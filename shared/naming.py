"""Deterministic physical names and ARNs for every named resource of the product.

The security layer writes IAM policies for resources that later layers create (the bucket,
the table, the queue, the functions' log groups). Both sides take the names from here, so a
policy can name a resource exactly before it exists. A test checks that the names the
policies use are the names the later layers create.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

APP_NAME = "serverless"

# The processor is triggered by uploads under UPLOAD_PREFIX and writes its results under
# RESULTS_PREFIX; the prefixes differ so that a result can never trigger the processor again.
UPLOAD_PREFIX = "uploads/"
RESULTS_PREFIX = "results/"
# Where, in the access-log bucket, S3 writes the upload bucket's server access logs.
S3_ACCESS_LOG_PREFIX = "upload-bucket/"

# Attribute names Powertools' DynamoDB idempotency layer uses by default.
IDEMPOTENCY_KEY_ATTRIBUTE = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"

# The API and the S3 trigger call this alias, so a rollback moves only the alias.
LIVE_ALIAS = "live"
API_STAGE_NAME = "prod"

# Log groups API Gateway names itself: each stage's execution logs (Set up CloudWatch logging
# for REST APIs, https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html),
# and the group UpdateAccount test-writes to through a role before accepting it (AWS answers "API
# Gateway could not successfully write to CloudWatch Logs using the ARN specified" otherwise;
# terraform-provider-aws internal/service/apigateway/account.go retries exactly that error).
API_EXECUTION_LOG_GROUP_PREFIX = "API-Gateway-Execution-Logs_"
API_GATEWAY_WELCOME_LOG_GROUP = "/aws/apigateway/welcome"

# Short enough that the longest derived name (the bucket) stays within S3's 63 characters
# with a 12-digit account id and the longest region name.
ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


class NamingError(ValueError):
    """An environment name that cannot produce valid AWS resource names."""


@dataclass(frozen=True)
class AwsLocation:
    """Where a stack deploys: the values every ARN is built from."""

    partition: str
    region: str
    account_id: str


@dataclass(frozen=True)
class ResourceNames:
    """Every physical name of one environment (one stack name across all layers)."""

    environment: str
    location: AwsLocation

    def __post_init__(self) -> None:
        if not ENVIRONMENT_PATTERN.match(self.environment):
            raise NamingError(
                f"stack name {self.environment!r} cannot name AWS resources: use 1-12 lowercase "
                "letters, digits or hyphens, starting with a letter (for example 'dev' or "
                "'prod'), and create the stack with `pulumi stack init <name>`"
            )

    @property
    def prefix(self) -> str:
        return f"{APP_NAME}-{self.environment}"

    # Security layer
    @property
    def kms_alias(self) -> str:
        return f"alias/{self.prefix}"

    @property
    def secret_name_prefix(self) -> str:
        """Secrets Manager completes it with a unique suffix (the provider's `name_prefix`):
        a deleted secret's name stays reserved for its recovery window, so a fixed name would
        keep a destroyed environment from being deployed again for up to 30 days. Everything
        that uses the secret takes its ARN or name from the resource."""
        return f"{self.prefix}/app-secret-"

    @property
    def s3_processor_role(self) -> str:
        return f"{self.prefix}-s3-processor"

    @property
    def api_handler_role(self) -> str:
        return f"{self.prefix}-api-handler"

    @property
    def api_gateway_cloudwatch_role_prefix(self) -> str:
        """IAM completes it with a unique suffix: the role outlives its stack (see README)."""
        return f"{self.prefix}-apigw-logs-"

    @property
    def secret_rotation_role(self) -> str:
        return f"{self.prefix}-secret-rotation"

    @property
    def secret_rotation_function(self) -> str:
        return f"{self.prefix}-secret-rotation"

    # Storage layer
    @property
    def upload_bucket(self) -> str:
        loc = self.location
        return f"{self.prefix}-uploads-{loc.account_id}-{loc.region}"

    @property
    def access_log_bucket(self) -> str:
        """Receives the upload bucket's server access logs."""
        loc = self.location
        return f"{self.prefix}-access-logs-{loc.account_id}-{loc.region}"

    @property
    def idempotency_table(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}-processor-dlq"

    # Compute layer
    @property
    def s3_processor_function(self) -> str:
        return f"{self.prefix}-s3-processor"

    @property
    def api_handler_function(self) -> str:
        return f"{self.prefix}-api-handler"

    @staticmethod
    def function_log_group(function_name: str) -> str:
        return f"/aws/lambda/{function_name}"

    # API layer
    @property
    def rest_api(self) -> str:
        return f"{self.prefix}-api"

    @property
    def api_access_log_group(self) -> str:
        return f"/aws/apigateway/{self.rest_api}/{API_STAGE_NAME}/access"

    @staticmethod
    def api_execution_log_group(rest_api_id: str) -> str:
        """The group API Gateway writes a stage's execution logs to; it names it itself."""
        return f"{API_EXECUTION_LOG_GROUP_PREFIX}{rest_api_id}/{API_STAGE_NAME}"

    # Observability layer
    @property
    def alarm_topic(self) -> str:
        return f"{self.prefix}-alarms"

    @property
    def dashboard(self) -> str:
        return self.prefix

    @property
    def web_acl(self) -> str:
        return f"{self.prefix}-api"

    @property
    def api_key(self) -> str:
        return f"{self.prefix}-api-key"

    @property
    def usage_plan(self) -> str:
        return f"{self.prefix}-api"

    def alarm(self, subject: str, metric: str) -> str:
        return f"{self.prefix}-{subject}-{metric}"

    def log_group_arns_for_kms(self) -> list[str]:
        """Every log group of this environment that CloudWatch Logs encrypts with its key.

        The stage's execution log group is named after the REST API's id, which exists only
        once the api layer runs, after the key: its ARN is a pattern with the id as `*`.
        """
        functions = (
            self.s3_processor_function,
            self.api_handler_function,
            self.secret_rotation_function,
        )
        groups = [
            *(self.function_log_group(function) for function in functions),
            self.api_access_log_group,
            self.api_execution_log_group("*"),
        ]
        return [self.log_group_arn(group) for group in groups]

    # ARNs of resources whose names are fixed above
    def _arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        loc = self.location
        region = loc.region if regional else ""
        account = loc.account_id if regional else ""
        return f"arn:{loc.partition}:{service}:{region}:{account}:{resource}"

    def bucket_arn(self) -> str:
        return self._arn("s3", self.upload_bucket, regional=False)

    def bucket_objects_arn(self, prefix: str) -> str:
        return f"{self.bucket_arn()}/{prefix}*"

    def table_arn(self) -> str:
        return self._arn("dynamodb", f"table/{self.idempotency_table}")

    def queue_arn(self) -> str:
        return self._arn("sqs", self.dead_letter_queue)

    def log_group_arn(self, log_group: str) -> str:
        return self._arn("logs", f"log-group:{log_group}")

    def log_streams_arn(self, log_group: str) -> str:
        """The ARN that logs:CreateLogStream and logs:PutLogEvents are authorised on."""
        return f"{self.log_group_arn(log_group)}:*"

    def alarm_arn(self, alarm_name_suffix: str) -> str:
        return self._arn("cloudwatch", f"alarm:{self.prefix}-{alarm_name_suffix}")

    def function_arn(self, function_name: str) -> str:
        return self._arn("lambda", f"function:{function_name}")
