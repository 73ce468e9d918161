"""The order the engine must create resources in, as the SDK records it for the engine.

The mocks accept resources in any order, but AWS does not: S3 refuses a notification to a function
it may not yet invoke, API Gateway refuses stage logging before the account names a logging role,
and logs delivered before a target's policy exists are lost. Each edge is read from what the
program registered (an explicit `depends_on`, or an input that is another resource's output),
which is exactly what the engine orders by.
"""

from __future__ import annotations

from shared.manifest import MANIFEST
from shared.naming import LIVE_ALIAS
from tooling.mock_engine import LayerRun, run_layer


def test_the_s3_notification_follows_the_permission_that_lets_s3_invoke(
    chain: dict[str, LayerRun],
) -> None:
    compute = chain["compute"]
    notification = compute.named("upload-notification")
    permission = compute.named("s3-invoke-processor")
    assert notification.depends_on(permission)


def test_the_s3_permission_waits_for_the_alias_it_names(chain: dict[str, LayerRun]) -> None:
    compute = chain["compute"]
    permission = compute.named("s3-invoke-processor")
    alias = compute.named("s3-processor-live")
    assert permission.inputs["qualifier"] == LIVE_ALIAS
    # The qualifier is the alias resource's output, not a literal: the permission is created
    # after the alias exists, and renaming the alias could not leave it behind.
    assert alias.urn in permission.property_dependencies["qualifier"]
    assert permission.depends_on(alias)


def test_upload_access_logging_follows_the_log_buckets_policy(
    chain: dict[str, LayerRun],
) -> None:
    storage = chain["storage"]
    logging = storage.named("upload-bucket-access-logging")
    policy = storage.named("access-log-bucket-tls-only")
    assert logging.depends_on(policy)
    assert logging.inputs["targetBucket"] == storage.named("access-log-bucket").id


def test_the_stage_follows_the_account_logging_setting(chain: dict[str, LayerRun]) -> None:
    api = chain["api"]
    assert api.named("prod-stage").depends_on(api.named("account-logging-role"))


def test_execution_logging_follows_its_log_group(chain: dict[str, LayerRun]) -> None:
    api = chain["api"]
    settings = api.named("all-methods")
    assert settings.inputs["settings"]["loggingLevel"] == "INFO"
    assert settings.depends_on(api.named("execution-logs"))
    assert settings.depends_on(api.named("prod-stage"))


def test_without_the_account_setting_the_stage_depends_on_nothing_of_it(
    chain: dict[str, LayerRun],
) -> None:
    run = run_layer(
        MANIFEST.layer("api"), config={"manage_account_logging_role": "false"}, upstream=chain
    )
    assert not run.of_type("aws:apigateway/account:Account")
    stage = run.named("prod-stage")
    assert stage.dependencies, "the stage still waits for its API, deployment and log group"
    assert not [urn for urn in stage.dependencies if "apigateway/account:Account" in urn]
