"""Observability layer: encrypted topic, alarms with alarm and OK actions, the dashboard."""

from __future__ import annotations

import json

from shared.manifest import MANIFEST
from tests.conftest import policy_of
from tooling.mock_engine import LayerRun, run_layer

EXPECTED_ALARMS = {
    "serverless-dev-s3-processor-errors",
    "serverless-dev-s3-processor-throttles",
    "serverless-dev-s3-processor-duration-p99",
    "serverless-dev-api-handler-errors",
    "serverless-dev-api-handler-throttles",
    "serverless-dev-api-handler-duration-p99",
    "serverless-dev-secret-rotation-errors",
    "serverless-dev-secret-rotation-throttles",
    "serverless-dev-secret-rotation-duration-p99",
    "serverless-dev-dead-letter-queue-visible-messages",
    "serverless-dev-api-5xx",
    "serverless-dev-api-latency-p99",
}


def _alarms(run: LayerRun) -> dict[str, dict[str, object]]:
    return {
        a.inputs["name"]: a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }


def test_topic_is_encrypted_and_only_this_products_alarms_publish(
    chain: dict[str, LayerRun],
) -> None:
    run = chain["observability"]
    topic = run.named("alarm-topic")
    assert topic.inputs["kmsMasterKeyId"] == chain["security"].exports["kms_key_arn"].value
    statements = {s["Sid"]: s for s in policy_of(run.named("alarm-topic-policy"))["Statement"]}
    publish = statements["AccountAlarmsPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Resource"] == topic.outputs["arn"]
    assert publish["Condition"]["ArnLike"]["aws:SourceArn"] == (
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:serverless-dev-*"
    )
    assert statements["DenyInsecureTransport"]["Effect"] == "Deny"


def test_every_alarm_exists_and_notifies_on_alarm_and_recovery(chain: dict[str, LayerRun]) -> None:
    run = chain["observability"]
    alarms = _alarms(run)
    assert set(alarms) == EXPECTED_ALARMS
    topic_arn = run.exports["sns_topic_arn"].value
    for name, alarm in alarms.items():
        assert alarm["alarmActions"] == [topic_arn], name
        assert alarm["okActions"] == [topic_arn], name
        assert alarm["actionsEnabled"] is True, name


def test_error_alarm_matches_the_seed_and_duration_alarms_on_p99(
    chain: dict[str, LayerRun],
) -> None:
    alarms = _alarms(chain["observability"])
    errors = alarms["serverless-dev-s3-processor-errors"]
    assert (errors["metricName"], errors["statistic"], errors["period"], errors["threshold"]) == (
        "Errors",
        "Sum",
        300,
        1,
    )
    assert errors["comparisonOperator"] == "GreaterThanThreshold"
    assert errors["dimensions"] == {
        "FunctionName": chain["compute"].exports["s3_processor_function_name"].value
    }
    duration = alarms["serverless-dev-api-handler-duration-p99"]
    assert duration["extendedStatistic"] == "p99"
    assert "statistic" not in duration
    assert duration["threshold"] == 300
    assert duration["evaluationPeriods"] == 2


def test_queue_and_api_alarms_watch_the_right_resources(chain: dict[str, LayerRun]) -> None:
    alarms = _alarms(chain["observability"])
    dlq = alarms["serverless-dev-dead-letter-queue-visible-messages"]
    assert dlq["dimensions"] == {
        "QueueName": chain["storage"].exports["dead_letter_queue_name"].value
    }
    assert dlq["threshold"] == 0
    api = chain["api"].export_values()
    for name in ("serverless-dev-api-5xx", "serverless-dev-api-latency-p99"):
        assert alarms[name]["dimensions"] == {"ApiName": api["rest_api_name"], "Stage": "prod"}
    assert alarms["serverless-dev-api-latency-p99"]["extendedStatistic"] == "p99"


def test_thresholds_and_emails_come_from_config(chain: dict[str, LayerRun]) -> None:
    run = run_layer(
        MANIFEST.layer("observability"),
        config={
            "duration_p99_threshold_ms": "750",
            "alarm_emails": '["a@example.com", "b@example.com"]',
        },
        upstream=chain,
    )
    assert _alarms(run)["serverless-dev-s3-processor-duration-p99"]["threshold"] == 750
    subscriptions = run.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == ["a@example.com", "b@example.com"]
    assert all(s.inputs["protocol"] == "email" for s in subscriptions)
    assert not chain["observability"].of_type("aws:sns/topicSubscription:TopicSubscription")


def test_dashboard_shows_every_alarm_and_its_metric(chain: dict[str, LayerRun]) -> None:
    run = chain["observability"]
    body = json.loads(run.named("dashboard").inputs["dashboardBody"])
    alarm_widget, *metric_widgets = body["widgets"]
    alarm_arns = {a.outputs["arn"] for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarm_widget["properties"]["alarms"]) == alarm_arns
    graphed = {tuple(w["properties"]["metrics"][0][:2]) for w in metric_widgets}
    assert graphed == {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "Duration"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "Latency"),
    }
    assert len(metric_widgets) == len(alarm_arns)


def test_topic_sets_no_delivery_status_logging_its_e_mail_subscribers_cannot_have(
    chain: dict[str, LayerRun],
) -> None:
    # SNS logs delivery status for Lambda, SQS, HTTP(S), Firehose and application endpoints;
    # e-mail, the only protocol the product subscribes, is never logged.
    topic = chain["observability"].named("alarm-topic").inputs
    assert not [key for key in topic if "Feedback" in key]
    assert "sns_delivery_status_role_arn" not in chain["security"].exports


def test_rotation_function_alarms_on_any_error(chain: dict[str, LayerRun]) -> None:
    alarm = _alarms(chain["observability"])["serverless-dev-secret-rotation-errors"]
    assert alarm["threshold"] == 0
    assert alarm["dimensions"] == {
        "FunctionName": chain["security"].exports["secret_rotation_function_name"].value
    }
