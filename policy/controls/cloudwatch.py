"""CloudWatch: alarms that act (FSBP CloudWatch.15/17) and log groups that expire."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from policy.model import PRODUCT, Control, Finding
from policy.values import as_list, get, number, truthy

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def check_alarm_actions(args: ResourceValidationArgs) -> Iterator[Finding]:
    if not as_list(get(args.props, "alarmActions")):
        yield Finding(args.urn, f"alarm {args.name} has no alarm action")


def check_actions_enabled(args: ResourceValidationArgs) -> Iterator[Finding]:
    enabled = get(args.props, "actionsEnabled")
    # The provider's default is true: only an explicit false deactivates the actions.
    if enabled is not None and not truthy(enabled):
        yield Finding(args.urn, f"alarm {args.name} has its actions deactivated")


def check_log_retention(args: ResourceValidationArgs) -> Iterator[Finding]:
    days = number(get(args.props, "retentionInDays"))
    if days is None or days <= 0:
        yield Finding(args.urn, f"log group {args.name} keeps its logs forever: set a retention")


ALARM_TYPES = frozenset({METRIC_ALARM, COMPOSITE_ALARM})

CONTROLS = (
    Control(
        "CloudWatch.15",
        "cloudwatch-15-alarm-actions",
        "CloudWatch alarms should have specified actions configured",
        "Each alarm has at least one alarm action.",
        resource_types=ALARM_TYPES,
        resource_check=check_alarm_actions,
    ),
    Control(
        "CloudWatch.17",
        "cloudwatch-17-alarm-actions-enabled",
        "CloudWatch alarm actions should be activated",
        "No alarm sets actions_enabled to false.",
        severity=Severity.MEDIUM,
        resource_types=ALARM_TYPES,
        resource_check=check_actions_enabled,
    ),
    Control(
        "Logs.retention",
        "logs-retention-set",
        "CloudWatch log groups should have a retention period",
        "Each log group sets retention_in_days (a product rule: FSBP has none; CloudWatch.16 "
        "of NIST 800-53 asks for a year, which this product's log data does not need).",
        framework=PRODUCT,
        severity=Severity.MEDIUM,
        resource_types=frozenset({LOG_GROUP}),
        resource_check=check_log_retention,
    ),
)
