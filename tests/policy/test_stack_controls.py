"""Every stack-level control: a compliant stack passes, one broken setting is reported.

The compliant stacks mirror the product's shape (a bucket with its settings resources, an
API with its stage, throttling and web ACL, functions with their alarms) in small dicts; each
violating case changes one thing. Cross-layer controls are also checked for their tolerance:
per stack they judge only pairs whose two sides are present.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import StackValidationPolicy

from policy.controls import CONTROLS, control
from policy.model import Scope, to_policy
from policy.suppressions import load_suppressions
from tests.policy.helpers import Res, collector, stack_args, violations

ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234"
BUCKET = "data-bucket"
LOGS = "log-bucket"
S3 = "aws:s3/"
HANDLER_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:handler:live"
INVOKE_URI = (
    f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{HANDLER_ARN}/invocations"
)


def tls_policy(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def bucket_resources(bucket: str, *, kms: bool = True) -> list[Res]:
    """A bucket with every setting the S3 controls ask for (as EncryptedBucket declares it)."""
    default = (
        {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}
        if kms
        else {"sseAlgorithm": "AES256"}
    )
    on = {"bucket": [bucket]}
    return [
        Res(
            f"{S3}bucket:Bucket",
            bucket,
            {"bucket": bucket, "id": bucket, "arn": f"arn:aws:s3:::{bucket}"},
        ),
        Res(
            f"{S3}bucketVersioning:BucketVersioning",
            f"{bucket}-versioning",
            {"bucket": bucket, "versioningConfiguration": {"status": "Enabled"}},
            deps=on,
        ),
        Res(
            f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{bucket}-encryption",
            {"bucket": bucket, "rules": [{"applyServerSideEncryptionByDefault": default}]},
            deps=on,
        ),
        Res(
            f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{bucket}-public-access",
            {
                "bucket": bucket,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            deps=on,
        ),
        Res(
            f"{S3}bucketOwnershipControls:BucketOwnershipControls",
            f"{bucket}-ownership",
            {"bucket": bucket, "rule": {"objectOwnership": "BucketOwnerEnforced"}},
            deps=on,
        ),
        Res(
            f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            f"{bucket}-lifecycle",
            {"bucket": bucket, "rules": [{"id": "expire", "status": "Enabled"}]},
            deps=on,
        ),
        Res(
            f"{S3}bucketPolicy:BucketPolicy",
            f"{bucket}-policy",
            {"bucket": bucket, "policy": tls_policy(bucket)},
            deps=on,
        ),
    ]


def storage() -> list[Res]:
    """The data bucket logging to a log bucket (SSE-S3), and the data bucket's notification."""
    return [
        *bucket_resources(BUCKET),
        *bucket_resources(LOGS, kms=False),
        Res(
            f"{S3}bucketLogging:BucketLogging",
            f"{BUCKET}-logging",
            {"bucket": BUCKET, "targetBucket": LOGS, "targetPrefix": "data/"},
            deps={"bucket": [BUCKET], "targetBucket": [LOGS]},
        ),
        Res(
            f"{S3}bucketNotification:BucketNotification",
            "notification",
            {"bucket": BUCKET, "queues": [{"queueArn": "arn:aws:sqs:us-east-1:1:q"}]},
            layer="compute",
        ),
        Res("aws:kms/key:Key", "key", {"arn": KEY_ARN, "id": "1234"}, layer="security"),
    ]


def without(resources: list[Res], name: str) -> list[Res]:
    return [r for r in resources if r.name != name]


def changed(resources: list[Res], name: str, **props: Any) -> list[Res]:
    return [
        Res(r.type, r.name, {**r.props, **props}, r.layer, r.deps) if r.name == name else r
        for r in resources
    ]


def public_policy(action: str) -> str:
    statement = {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def cross_account_policy() -> str:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": "s3:PutBucketPolicy",
        "Resource": f"arn:aws:s3:::{BUCKET}",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def no_public_access_block(policy: str) -> list[Res]:
    return changed(without(storage(), f"{BUCKET}-public-access"), f"{BUCKET}-policy", policy=policy)


S3_CASES: dict[str, tuple[Callable[[], list[Res]], str]] = {
    "S3.2": (lambda: no_public_access_block(public_policy("s3:GetObject")), "public read"),
    "S3.3": (lambda: no_public_access_block(public_policy("s3:PutObject")), "public write"),
    "S3.5": (
        lambda: changed(storage(), f"{BUCKET}-policy", policy=public_policy("s3:GetObject")),
        "aws:SecureTransport",
    ),
    "S3.6": (
        lambda: changed(storage(), f"{BUCKET}-policy", policy=cross_account_policy()),
        "s3:PutBucketPolicy to other accounts",
    ),
    "S3.8": (
        lambda: changed(storage(), f"{BUCKET}-public-access", restrictPublicBuckets=False),
        "BucketPublicAccessBlock",
    ),
    "S3.9": (lambda: without(storage(), f"{BUCKET}-logging"), "no server access logging"),
    "S3.10": (lambda: without(storage(), f"{BUCKET}-lifecycle"), "versioned bucket"),
    "S3.11": (lambda: without(storage(), "notification"), "no event notifications"),
    "S3.12": (
        lambda: changed(storage(), f"{BUCKET}-ownership", rule={"objectOwnership": "ObjectWriter"}),
        "BucketOwnerEnforced",
    ),
    "S3.13": (lambda: without(storage(), f"{BUCKET}-lifecycle"), "no enabled lifecycle rule"),
    "S3.14": (
        lambda: changed(
            storage(), f"{BUCKET}-versioning", versioningConfiguration={"status": "Suspended"}
        ),
        "versioning Enabled",
    ),
    "S3.17": (
        lambda: changed(
            storage(),
            f"{BUCKET}-encryption",
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        ),
        "not encrypted with SSE-KMS (AES256)",
    ),
}


def product_violations(control_id: str, resources: list[Res]) -> list[str]:
    """Findings over the whole product, minus the documented log-bucket exceptions."""
    found = violations(control_id, stack_args(resources, Scope.PRODUCT))
    return [message for message in found if "receives server access logs" not in message]


@pytest.mark.parametrize("control_id", sorted(S3_CASES))
def test_s3_control_passes_the_compliant_bucket_and_reports_the_broken_one(
    control_id: str,
) -> None:
    broken, fragment = S3_CASES[control_id]
    assert product_violations(control_id, storage()) == []
    found = product_violations(control_id, broken())
    assert any(BUCKET in message and fragment in message for message in found), found


@pytest.mark.parametrize(
    ("control_id", "acl", "fragment"),
    [
        ("S3.2", "public-read", "public read by ACL"),
        ("S3.3", "public-read-write", "public write by ACL"),
    ],
)
def test_s3_public_canned_acl_is_reported_without_a_public_access_block(
    control_id: str, acl: str, fragment: str
) -> None:
    broken = changed(without(storage(), f"{BUCKET}-public-access"), BUCKET, acl=acl)
    found = product_violations(control_id, broken)
    assert any(BUCKET in message and fragment in message for message in found), found


@pytest.mark.parametrize("control_id", ["S3.9", "S3.11", "S3.17"])
def test_log_delivery_target_is_reported_under_its_exception_and_suppressed(
    control_id: str,
) -> None:
    args = stack_args(storage(), Scope.PRODUCT)
    found = violations(control_id, args)
    assert len(found) == 1
    assert LOGS in found[0]
    assert "receives server access logs" in found[0]
    # With the repository's suppressions the exception is accepted, and observed as such.
    seen: list[str] = []
    reported: list[str] = []
    policy = to_policy(
        control(control_id), load_suppressions(), lambda s: seen.append(s.finding.urn)
    )
    assert isinstance(policy, StackValidationPolicy)
    policy.validate(args, collector(reported))
    assert reported == []
    assert len(seen) == 1
    assert seen[0].endswith(f"::{LOGS}")


def test_s3_17_accepts_sse_s3_only_on_the_log_delivery_target() -> None:
    # The log bucket without encryption at all is a plain violation, not the exception.
    broken = changed(storage(), f"{LOGS}-encryption", rules=[])
    found = violations("S3.17", stack_args(broken, Scope.PRODUCT))
    assert found and "no default encryption configuration" in found[0]


def test_s3_17_rejects_the_aws_managed_key_and_keys_the_product_does_not_declare() -> None:
    aws_managed = {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "alias/aws/s3"}
    foreign = {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:aws:kms:us-east-1:1:key/x"}
    for default, fragment in ((aws_managed, "AWS managed key"), (foreign, "no layer")):
        broken = changed(
            storage(),
            f"{BUCKET}-encryption",
            rules=[{"applyServerSideEncryptionByDefault": default}],
        )
        found = product_violations("S3.17", broken)
        assert any(fragment in message for message in found), found


def test_s3_11_per_stack_judges_buckets_only_where_the_stack_declares_notifications() -> None:
    storage_only = [r for r in storage() if r.layer == "storage"]
    assert violations("S3.11", stack_args(storage_only, Scope.STACK)) == []
    assert product_violations("S3.11", storage_only)


def api(
    *,
    authorization: str = "AWS_IAM",
    settings: dict[str, Any] | None = None,
    association: bool = True,
    account: bool = True,
) -> list[Res]:
    """A REST API: /health and /process, a prod stage, its settings, web ACL and account."""
    on_api = {"restApi": ["api"]}
    resources = [
        Res(
            "aws:apigateway/restApi:RestApi",
            "api",
            {"id": "a1", "rootResourceId": "root", "name": "svc-api"},
            "api",
        ),
        Res(
            "aws:apigateway/resource:Resource",
            "health",
            {"id": "r1", "parentId": "root", "pathPart": "health", "restApi": "a1"},
            "api",
            on_api,
        ),
        Res(
            "aws:apigateway/resource:Resource",
            "process",
            {"id": "r2", "parentId": "root", "pathPart": "process", "restApi": "a1"},
            "api",
            on_api,
        ),
        Res(
            "aws:apigateway/method:Method",
            "get-health",
            {"restApi": "a1", "resourceId": "r1", "httpMethod": "GET", "authorization": "NONE"},
            "api",
            on_api,
        ),
        Res(
            "aws:apigateway/method:Method",
            "post-process",
            {
                "restApi": "a1",
                "resourceId": "r2",
                "httpMethod": "POST",
                "authorization": authorization,
            },
            "api",
            on_api,
        ),
        Res(
            "aws:apigateway/integration:Integration",
            "post-process-integration",
            {"restApi": "a1", "type": "AWS_PROXY", "uri": INVOKE_URI},
            "api",
            on_api,
        ),
        Res(
            "aws:apigateway/stage:Stage",
            "stage",
            {
                "restApi": "a1",
                "stageName": "prod",
                "arn": "arn:aws:apigateway:us-east-1::/restapis/a1/stages/prod",
            },
            "api",
            on_api,
        ),
        Res(
            "aws:apigateway/methodSettings:MethodSettings",
            "all-methods",
            {
                "restApi": "a1",
                "stageName": "prod",
                "methodPath": "*/*",
                "settings": settings
                if settings is not None
                else {
                    "loggingLevel": "ERROR",
                    "throttlingRateLimit": 100,
                    "throttlingBurstLimit": 50,
                },
            },
            "api",
            {"restApi": ["api"], "stageName": ["stage"]},
        ),
    ]
    if association:
        resources.append(
            Res(
                "aws:wafv2/webAclAssociation:WebAclAssociation",
                "waf",
                {"resourceArn": "arn:aws:apigateway:us-east-1::/restapis/a1/stages/prod"},
                "api",
                {"resourceArn": ["stage"]},
            )
        )
    if account:
        resources.append(
            Res(
                "aws:apigateway/account:Account",
                "account",
                {"cloudwatchRoleArn": "arn:aws:iam::1:role/r"},
                "api",
            )
        )
    return resources


def function(name: str, layer: str = "compute", **props: Any) -> Res:
    return Res("aws:lambda/function:Function", name, {"name": name, **props}, layer)


def alarm(name: str, namespace: str, metric: str, dimensions: dict[str, str]) -> Res:
    props = {"namespace": namespace, "metricName": metric, "dimensions": dimensions}
    return Res("aws:cloudwatch/metricAlarm:MetricAlarm", name, props, "observability")


def test_api_gateway_1_requires_execution_logging_and_the_account_role() -> None:
    assert violations("APIGateway.1", stack_args(api())) == []
    off = violations("APIGateway.1", stack_args(api(settings={"loggingLevel": "OFF"})))
    assert any("logging_level ERROR or INFO" in message for message in off)
    no_role = violations("APIGateway.1", stack_args(api(account=False)))
    assert any("CloudWatch role" in message for message in no_role)


def test_api_gateway_4_requires_a_web_acl_on_every_stage() -> None:
    assert violations("APIGateway.4", stack_args(api())) == []
    found = violations("APIGateway.4", stack_args(api(association=False)))
    assert found and "no WAF web ACL" in found[0]


def test_every_method_but_get_health_requires_authorization() -> None:
    assert violations("SLS.api-authorization", stack_args(api())) == []
    assert violations("SLS.api-authorization", stack_args(api(authorization="CUSTOM"))) == []
    keyed = changed(api(authorization="NONE"), "post-process", apiKeyRequired=True)
    assert violations("SLS.api-authorization", stack_args(keyed)) == []
    found = violations("SLS.api-authorization", stack_args(api(authorization="NONE")))
    assert len(found) == 1
    assert "POST /process (post-process) requires no authorization" in found[0]


def _method(name: str, resource_id: str, http_method: str, rest_api: str = "a1") -> Res:
    props = {
        "restApi": rest_api,
        "resourceId": resource_id,
        "httpMethod": http_method,
        "authorization": "NONE",
    }
    return Res("aws:apigateway/method:Method", name, props, "api", {"restApi": ["api"]})


def _resource(name: str, resource_id: str, path_part: str, rest_api: str = "a1") -> Res:
    props = {"id": resource_id, "parentId": "root", "pathPart": path_part, "restApi": rest_api}
    return Res("aws:apigateway/resource:Resource", name, props, "api", {"restApi": ["api"]})


def test_the_cors_preflight_of_a_route_needs_no_authorization() -> None:
    preflights = [
        _method("options-health", "r1", "OPTIONS"),
        _method("options-process", "r2", "OPTIONS"),
    ]
    assert violations("SLS.api-authorization", stack_args([*api(), *preflights])) == []
    # A public route that is not a preflight still fails, preflights beside it or not.
    found = violations(
        "SLS.api-authorization", stack_args([*api(authorization="NONE"), *preflights])
    )
    assert len(found) == 1
    assert "POST /process (post-process) requires no authorization" in found[0]


def test_an_options_method_that_is_no_route_s_preflight_needs_authorization() -> None:
    # Alone on its path, OPTIONS is an operation of its own, not a preflight.
    alone = [*api(), _resource("admin", "r3", "admin"), _method("options-admin", "r3", "OPTIONS")]
    found = violations("SLS.api-authorization", stack_args(alone))
    assert len(found) == 1
    assert "OPTIONS /admin (options-admin) requires no authorization" in found[0]
    # Another REST API's route on the same path does not make it one.
    other_api = Res(
        "aws:apigateway/restApi:RestApi", "other", {"id": "a2", "rootResourceId": "root2"}, "api"
    )
    elsewhere = [
        *api(),
        other_api,
        Res(
            "aws:apigateway/resource:Resource",
            "other-process",
            {"id": "r9", "parentId": "root2", "pathPart": "process", "restApi": "a2"},
            "api",
        ),
        _method("other-options-process", "r9", "OPTIONS", rest_api="a2"),
    ]
    found = violations("SLS.api-authorization", stack_args(elsewhere))
    assert len(found) == 1
    assert "OPTIONS /process (other-options-process)" in found[0]


def test_secrets_manager_1_requires_a_rotation_schedule() -> None:
    secret = Res(
        "aws:secretsmanager/secret:Secret",
        "secret",
        {
            "name": "app",
            "arn": "arn:aws:secretsmanager:us-east-1:1:secret:app-x",
            "id": "arn:aws:secretsmanager:us-east-1:1:secret:app-x",
        },
        "security",
    )
    rotation = Res(
        "aws:secretsmanager/secretRotation:SecretRotation",
        "rotation",
        {
            "secretId": secret.props["arn"],
            "rotationLambdaArn": "arn:aws:lambda:us-east-1:1:function:rot",
            "rotationRules": {"automaticallyAfterDays": 30},
        },
        "security",
        {"secretId": ["secret"]},
    )
    assert violations("SecretsManager.1", stack_args([secret, rotation])) == []
    found = violations("SecretsManager.1", stack_args([secret]))
    assert found and "no SecretRotation" in found[0]


def test_dynamodb_1_accepts_on_demand_or_read_and_write_autoscaling() -> None:
    table = "aws:dynamodb/table:Table"
    on_demand = Res(table, "t", {"name": "t", "billingMode": "PAY_PER_REQUEST"})
    provisioned = Res(table, "t", {"name": "t", "billingMode": "PROVISIONED"})
    targets = [
        Res(
            "aws:appautoscaling/target:Target",
            f"scale-{kind}",
            {
                "resourceId": "table/t",
                "scalableDimension": f"dynamodb:table:{kind}CapacityUnits",
                "maxCapacity": 10,
            },
        )
        for kind in ("Read", "Write")
    ]
    assert violations("DynamoDB.1", stack_args([on_demand])) == []
    assert violations("DynamoDB.1", stack_args([provisioned, *targets])) == []
    found = violations("DynamoDB.1", stack_args([provisioned, targets[0]]))
    assert found and "WriteCapacityUnits" in found[0]


def trigger(
    *, on_failure: bool = True, qualifier: str = "live", with_function: bool = True
) -> list[Res]:
    notification = Res(
        "aws:s3/bucketNotification:BucketNotification",
        "trigger",
        {
            "bucket": BUCKET,
            "lambdaFunctions": [
                {"lambdaFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:processor:live"}
            ],
        },
        "compute",
    )
    config = Res(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "async",
        {
            "functionName": "processor",
            "qualifier": qualifier,
            "destinationConfig": {"onFailure": {"destination": "arn:aws:sqs:us-east-1:1:dlq"}}
            if on_failure
            else {},
        },
        "compute",
    )
    resources = [notification, config]
    if with_function:
        resources.append(function("processor", reservedConcurrentExecutions=5))
    return resources


def test_async_triggers_need_an_on_failure_destination_for_the_invoked_qualifier() -> None:
    control_id = "SLS.async-failure-destination"
    assert violations(control_id, stack_args(trigger())) == []
    for broken in (trigger(on_failure=False), trigger(qualifier="other")):
        found = violations(control_id, stack_args(broken))
        assert found and "invokes processor:live asynchronously" in found[0]
    dead_letter = [*trigger(on_failure=False, with_function=False)]
    dead_letter.append(function("processor", deadLetterConfig={"targetArn": "arn:aws:sqs:x"}))
    assert violations(control_id, stack_args(dead_letter)) == []


def test_async_trigger_of_another_layers_function_is_judged_over_the_product_only() -> None:
    control_id = "SLS.async-failure-destination"
    notification_only = trigger(with_function=False)[:1]
    assert violations(control_id, stack_args(notification_only, Scope.STACK)) == []
    assert violations(control_id, stack_args(notification_only, Scope.PRODUCT))


def test_functions_are_bounded_by_reserved_concurrency_or_a_throttled_stage() -> None:
    control_id = "SLS.bounded-concurrency"
    reserved = function("worker", reservedConcurrentExecutions=2)
    handler = function("handler")
    assert violations(control_id, stack_args([reserved, handler, *api()], Scope.PRODUCT)) == []
    unthrottled = api(settings={"loggingLevel": "ERROR"})
    found = violations(control_id, stack_args([handler, *unthrottled], Scope.PRODUCT))
    assert found and "sets no throttling rate and burst limit" in found[0]
    lonely = function("lonely")
    found = violations(control_id, stack_args([lonely, *api()], Scope.PRODUCT))
    assert found and "lonely has no reserved concurrency" in found[0]
    # Per stack, a function whose API is another layer's is left to synth.
    assert violations(control_id, stack_args([handler], Scope.STACK)) == []
    assert violations(control_id, stack_args([handler], Scope.PRODUCT))


def test_alarms_watch_errors_throttles_5xx_and_dead_letter_depth() -> None:
    control_id = "SLS.alarms"
    queue = Res("aws:sqs/queue:Queue", "dlq", {"name": "dlq", "arn": "arn:aws:sqs:us-east-1:1:dlq"})
    subjects = [*trigger(), queue, *api()]
    alarms = [
        alarm("errors", "AWS/Lambda", "Errors", {"FunctionName": "processor"}),
        alarm("throttles", "AWS/Lambda", "Throttles", {"FunctionName": "processor"}),
        alarm("5xx", "AWS/ApiGateway", "5XXError", {"ApiName": "svc-api", "Stage": "prod"}),
        alarm("dlq", "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "dlq"}),
    ]
    assert violations(control_id, stack_args([*subjects, *alarms], Scope.PRODUCT)) == []
    for missing in alarms:
        rest = [a for a in alarms if a is not missing]
        found = violations(control_id, stack_args([*subjects, *rest], Scope.PRODUCT))
        assert len(found) == 1, found
        assert missing.props["metricName"] in found[0]
    # Per stack, without any alarm in the stack, the alarms are another layer's.
    assert violations(control_id, stack_args(subjects, Scope.STACK)) == []


def test_every_stack_control_is_exercised_here() -> None:
    exercised = {
        *S3_CASES,
        "APIGateway.1",
        "APIGateway.4",
        "SLS.api-authorization",
        "SecretsManager.1",
        "DynamoDB.1",
        "SLS.async-failure-destination",
        "SLS.bounded-concurrency",
        "SLS.alarms",
    }
    assert {c.control_id for c in CONTROLS if c.kind == "stack"} == exercised
