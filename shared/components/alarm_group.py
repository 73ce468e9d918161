"""CloudWatch alarms that notify one SNS topic on alarm and on recovery, and the dashboard
that shows each alarmed metric beside the alarms' states."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.naming import ResourceNames

FIVE_MINUTES = 300


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: `subject` and `metric` make its name, e.g. s3-processor + errors."""

    subject: str
    metric: str
    description: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    threshold: float
    statistic: str | None = "Sum"
    extended_statistic: str | None = None
    evaluation_periods: int = 1
    period_seconds: int = FIVE_MINUTES

    @property
    def key(self) -> str:
        return f"{self.subject}-{self.metric}"


def lambda_alarm_specs(
    subject: str, function_name: pulumi.Input[str], *, error_threshold: int, duration_p99_ms: int
) -> list[AlarmSpec]:
    """Errors, throttles and p99 duration of one function."""
    dimensions = {"FunctionName": function_name}
    return [
        AlarmSpec(
            subject,
            "errors",
            f"{subject}: more than {error_threshold} errors in 5 minutes",
            "AWS/Lambda",
            "Errors",
            dimensions,
            error_threshold,
        ),
        AlarmSpec(
            subject,
            "throttles",
            f"{subject}: invocations throttled",
            "AWS/Lambda",
            "Throttles",
            dimensions,
            0,
        ),
        # p99 rather than the average: a slow tail is what users notice and averages hide.
        AlarmSpec(
            subject,
            "duration-p99",
            f"{subject}: p99 duration above {duration_p99_ms} ms",
            "AWS/Lambda",
            "Duration",
            dimensions,
            duration_p99_ms,
            statistic=None,
            extended_statistic="p99",
            evaluation_periods=2,
        ),
    ]


@dataclass
class AlarmGroupArgs:
    names: ResourceNames
    topic_arn: pulumi.Input[str]
    specs: Sequence[AlarmSpec]


class AlarmGroup(pulumi.ComponentResource):
    """One MetricAlarm per spec, all notifying the topic, and a dashboard showing them."""

    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard

    def __init__(
        self, name: str, args: AlarmGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless:observability:AlarmGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.alarms = {
            spec.key: aws.cloudwatch.MetricAlarm(
                f"{spec.key}-alarm",
                name=args.names.alarm(spec.subject, spec.metric),
                alarm_description=spec.description,
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions=dict(spec.dimensions),
                statistic=spec.statistic,
                extended_statistic=spec.extended_statistic,
                period=spec.period_seconds,
                evaluation_periods=spec.evaluation_periods,
                threshold=spec.threshold,
                comparison_operator="GreaterThanThreshold",
                # No traffic is not a failure: an idle function must not page anyone.
                treat_missing_data="notBreaching",
                actions_enabled=True,
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                opts=child,
            )
            for spec in args.specs
        }
        region = args.names.location.region
        self.dashboard = aws.cloudwatch.Dashboard(
            "dashboard",
            dashboard_name=args.names.dashboard,
            dashboard_body=pulumi.Output.all(
                [alarm.arn for alarm in self.alarms.values()],
                [dict(spec.dimensions) for spec in args.specs],
            ).apply(
                lambda resolved: json.dumps(
                    dashboard_body(args.specs, resolved[0], resolved[1], region)
                )
            ),
            opts=child,
        )
        self.register_outputs({"dashboard_name": self.dashboard.dashboard_name})


def dashboard_body(
    specs: Sequence[AlarmSpec],
    alarm_arns: Sequence[str],
    dimensions: Sequence[Mapping[str, str]],
    region: str,
) -> dict[str, Any]:
    """An alarm-status strip on top, then one graph per alarmed metric with its threshold."""
    widgets: list[dict[str, Any]] = [
        {
            "type": "alarm",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 3,
            "properties": {"title": "Alarms", "alarms": list(alarm_arns)},
        }
    ]
    for index, (spec, dims) in enumerate(zip(specs, dimensions, strict=True)):
        dimension_pairs = [item for pair in sorted(dims.items()) for item in pair]
        stat = spec.extended_statistic or spec.statistic or "Sum"
        widgets.append(
            {
                "type": "metric",
                "x": (index % 3) * 8,
                "y": 3 + (index // 3) * 6,
                "width": 8,
                "height": 6,
                "properties": {
                    "title": spec.description,
                    "region": region,
                    "stat": stat,
                    "period": spec.period_seconds,
                    "metrics": [[spec.namespace, spec.metric_name, *dimension_pairs]],
                    "annotations": {
                        "horizontal": [{"label": "alarm threshold", "value": spec.threshold}]
                    },
                },
            }
        )
    return {"widgets": widgets}
