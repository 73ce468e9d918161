"""Observability layer: alarms and the dashboard.

Deploys the KMS-encrypted SNS topic the alarms notify (with optional e-mail subscriptions),
alarms with alarm and OK actions on each function's errors, throttles
and p99 duration (the secret rotation function's included), on the
dead-letter queue's visible messages and on the API's 5XX errors and p99 latency, and a
CloudWatch dashboard showing all of them. Reads names from every other layer.
"""

import json

import pulumi
import pulumi_aws as aws

from shared.aws_context import current_location
from shared.components.alarm_group import AlarmGroup, AlarmGroupArgs, AlarmSpec, lambda_alarm_specs
from shared.config import ConfigError, LayerConfig, email_problem
from shared.exports import export_outputs
from shared.manifest import MANIFEST
from shared.naming import ResourceNames
from shared.policies import alarm_topic_policy
from shared.references import UpstreamOutputs
from shared.tags import apply_standard_tags

layer = MANIFEST.layer("observability")
config = LayerConfig(layer)
names = ResourceNames(pulumi.get_stack(), current_location())
apply_standard_tags(layer, names.environment)
upstream = UpstreamOutputs(layer, org=config.optional_string("org"))

error_threshold = config.integer("error_threshold", minimum=0, maximum=10_000)
duration_p99_ms = config.integer("duration_p99_threshold_ms", minimum=1, maximum=900_000)
alarm_emails = config.string_list("alarm_emails")
for address in alarm_emails:
    if problem := email_problem(address):
        raise ConfigError(
            f"{layer.project}:alarm_emails holds {problem}; "
            "fix the list with: pulumi config set --path 'alarm_emails[0]' you@example.com"
        )

# Where every alarm and recovery is announced, encrypted with the product key. Its subscribers
# are e-mail addresses, for which SNS logs no delivery status (it logs Lambda, SQS, HTTP(S),
# Firehose and application endpoints only), so the topic sets no delivery-status logging.
alarm_topic = aws.sns.Topic(
    "alarm-topic",
    name=names.alarm_topic,
    kms_master_key_id=upstream.require("kms_key_arn"),
)
aws.sns.TopicPolicy(
    "alarm-topic-policy",
    arn=alarm_topic.arn,
    policy=alarm_topic.arn.apply(lambda arn: json.dumps(alarm_topic_policy(names, arn))),
)
for index, address in enumerate(alarm_emails):
    aws.sns.TopicSubscription(
        f"alarm-email-{index}", topic=alarm_topic.arn, protocol="email", endpoint=address
    )

rest_api_dimensions = {
    "ApiName": upstream.require("rest_api_name"),
    "Stage": upstream.require("api_stage_name"),
}
alarms = AlarmGroup(
    "alarms",
    AlarmGroupArgs(
        names=names,
        topic_arn=alarm_topic.arn,
        specs=[
            *lambda_alarm_specs(
                "s3-processor",
                upstream.require("s3_processor_function_name"),
                error_threshold=error_threshold,
                duration_p99_ms=duration_p99_ms,
            ),
            *lambda_alarm_specs(
                "api-handler",
                upstream.require("api_handler_function_name"),
                error_threshold=error_threshold,
                duration_p99_ms=duration_p99_ms,
            ),
            # A failed rotation leaves the secret pending; the next one would fail the same way.
            *lambda_alarm_specs(
                "secret-rotation",
                upstream.require("secret_rotation_function_name"),
                error_threshold=0,
                duration_p99_ms=30_000,
            ),
            # Any message here is an upload that was never processed.
            AlarmSpec(
                "dead-letter-queue",
                "visible-messages",
                "Failed S3 events are waiting in the dead-letter queue",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": upstream.require("dead_letter_queue_name")},
                0,
                statistic="Maximum",
            ),
            AlarmSpec(
                "api",
                "5xx",
                "The API is answering with server errors",
                "AWS/ApiGateway",
                "5XXError",
                rest_api_dimensions,
                config.integer("api_5xx_threshold", minimum=0, maximum=100_000),
            ),
            AlarmSpec(
                "api",
                "latency-p99",
                "The API's p99 latency is above its threshold",
                "AWS/ApiGateway",
                "Latency",
                rest_api_dimensions,
                config.integer("api_latency_p99_threshold_ms", minimum=1, maximum=29_000),
                statistic=None,
                extended_statistic="p99",
                evaluation_periods=2,
            ),
        ],
    ),
)

export_outputs(
    layer,
    {
        "sns_topic_arn": alarm_topic.arn,
        "dashboard_name": alarms.dashboard.dashboard_name,
        "dashboard_url": alarms.dashboard.dashboard_name.apply(
            lambda dashboard: (
                f"https://{names.location.region}.console.aws.amazon.com/"
                f"cloudwatch/home?region={names.location.region}#dashboards:name={dashboard}"
            )
        ),
    },
)
