"""Each preflight check's pass and fail paths, on moto (and a Stubber for Lambda's quota)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import Stubber

from shared import packaging
from shared.manifest import MANIFEST, REPO_ROOT
from shared.naming import AwsLocation, ResourceNames
from shared.tags import standard_tags
from tests.orchestration.conftest import console_text, make_console
from tests.preflight.conftest import ACCOUNT, REGION, World, lambda_account
from tooling.checklist import CheckFailedError, Verdict
from tooling.orchestrator.automation import sdk_version
from tooling.orchestrator.targets import LocalTarget
from tooling.preflight import checks
from tooling.preflight.cli import CliError, CliMissingError, Identity

NAMES = ResourceNames("dev", AwsLocation("aws", REGION, ACCOUNT))


def _located(world: World) -> checks.PreflightContext:
    """A context whose identity check has run (the checks that name resources need it)."""
    context = world.context()
    assert checks.check_identity_and_region(context).verdict is Verdict.PASS
    return context


# The Pulumi CLI, its plugin, the backend and the organization


def test_the_pinned_cli_passes_an_older_one_warns_and_none_fails(world: World) -> None:
    assert checks.check_cli(world.context()).verdict is Verdict.PASS
    world.cli.found_version = "3.100.0"
    older = checks.check_cli(world.context())
    assert older.verdict is Verdict.WARN and "older than the pinned" in older.detail
    world.cli.found_version = None
    missing = checks.check_cli(world.context())
    assert missing.verdict is Verdict.FAIL
    assert f"--version {sdk_version()}" in missing.fix


def test_a_missing_aws_plugin_warns_with_the_install_command(world: World) -> None:
    assert checks.check_aws_plugin(world.context()).verdict is Verdict.PASS
    world.cli.installed = [{"name": "aws", "kind": "resource", "version": "6.0.0"}]
    warned = checks.check_aws_plugin(world.context())
    assert warned.verdict is Verdict.WARN
    assert "found: 6.0.0" in warned.detail
    assert warned.fix.startswith("install it now: pulumi plugin install resource aws ")


def test_not_logged_in_fails_with_pulumi_login(world: World) -> None:
    assert checks.check_backend(world.context()).verdict is Verdict.PASS
    world.cli.identity = CliError("error: PULUMI_ACCESS_TOKEN must be set for login")
    failed = checks.check_backend(world.context())
    assert failed.verdict is Verdict.FAIL
    assert "pulumi login" in failed.fix
    world.cli.identity = CliMissingError("the Pulumi CLI is not installed")
    assert checks.check_backend(world.context()).verdict is Verdict.SKIP


def test_the_organization_is_decided_as_the_orchestrator_decides_it(world: World) -> None:
    from tooling.orchestrator.targets import AwsTarget

    cloud = Identity("me", "https://api.pulumi.com", ("me", "acme"))
    named = checks.check_organization(world.context(), cloud)  # the world's target: --org acme
    assert named.verdict is Verdict.PASS and "acme/<project>/<stack>" in named.detail
    diy = Identity("me", "s3://state-bucket")
    world.target = AwsTarget(repo_root=REPO_ROOT, region=REGION)  # no --org
    assert "organization/<project>" in checks.check_organization(world.context(), diy).detail
    # Pulumi Cloud without --org: the login's default organization, else one paragraph.
    world.cli.default_organization = "acme"
    assert checks.check_organization(world.context(), cloud).verdict is Verdict.PASS
    world.cli.default_organization = "No Default Org Specified"
    missing = checks.check_organization(world.context(), cloud)
    assert missing.verdict is Verdict.FAIL and "(you belong to: me, acme)" in missing.detail
    assert "pulumi org set-default" in missing.fix
    world.target = AwsTarget(repo_root=REPO_ROOT, region=REGION, org="other")
    stranger = checks.check_organization(world.context(), cloud)
    assert stranger.verdict is Verdict.FAIL and "--org other" in stranger.detail
    wrong_backend = checks.check_organization(world.context(), diy)
    assert wrong_backend.verdict is Verdict.FAIL and "file or object-store" in wrong_backend.detail


# The function archives


def test_archives_built_from_the_tree_pass_and_stale_ones_fail(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = checks.check_function_archives(world.context())
    assert check.verdict is Verdict.PASS and "api_handler" in check.detail
    assert (
        checks.check_function_archives(world.context(layers=[MANIFEST.layer("api")])).verdict
        is Verdict.SKIP
    )

    def stale(function: str, **_: object) -> str:
        return "0" * 64

    monkeypatch.setattr(packaging, "source_digest", stale)
    with pytest.raises(CheckFailedError) as failed:
        checks.check_function_archives(world.context())
    assert "was not built from the current" in failed.value.detail
    assert failed.value.fix == "run `nox -s build`"


# The stacks' settings


def test_the_aws_target_needs_each_stack_created_beforehand(world: World) -> None:
    # The example stack `dev` has its committed Pulumi.dev.yaml in every layer.
    assert checks.check_stack_settings(world.context("dev")).verdict is Verdict.PASS
    with pytest.raises(CheckFailedError) as failed:
        checks.check_stack_settings(world.context("staging"))
    assert "no Pulumi.staging.yaml in stacks/{security,storage,compute,api,observability}" in (
        failed.value.detail
    )
    assert "pulumi stack init staging" in failed.value.fix
    world.target = LocalTarget(repo_root=REPO_ROOT)
    assert checks.check_stack_settings(world.context("staging")).verdict is Verdict.SKIP


# Credentials, account and region


def test_the_account_and_region_are_found(world: World) -> None:
    context = world.context()
    check = checks.check_identity_and_region(context)
    assert check.verdict is Verdict.PASS
    assert f"account {ACCOUNT}" in check.detail and f"region {REGION}" in check.detail
    assert context.location == AwsLocation("aws", REGION, ACCOUNT)


def test_layers_configured_for_different_regions_fail(world: World) -> None:
    from tooling.orchestrator.targets import AwsTarget

    world.target = AwsTarget(repo_root=REPO_ROOT, org="acme")  # no --region
    world.settings = {
        "security": {"aws:region": "us-east-1"},
        "api": {"aws:region": "eu-west-1"},
    }
    with pytest.raises(CheckFailedError) as failed:
        checks.check_identity_and_region(world.context())
    assert "api eu-west-1, security us-east-1" in failed.value.detail
    world.settings = {}
    with pytest.raises(CheckFailedError, match="sets aws:region"):
        checks.check_identity_and_region(world.context())


def test_no_credentials_fail_with_how_to_get_them(world: World) -> None:
    world.failing_service = ("sts", NoCredentialsError())
    with pytest.raises(CheckFailedError) as failed:
        checks.check_identity_and_region(world.context())
    assert "no usable AWS credentials" in failed.value.detail
    assert "AWS_PROFILE" in failed.value.fix


# Lambda concurrency


def test_concurrency_passes_with_room_and_fails_on_a_new_account(world: World) -> None:
    lambda_account(world, 1000, 1000)
    assert checks.check_concurrency(_located(world)).verdict is Verdict.PASS
    lambda_account(world, 10, 10)
    failed = checks.check_concurrency(_located(world))
    assert failed.verdict is Verdict.FAIL
    assert "quota in us-east-1 is 10" in failed.detail
    assert "L-B99A9384" in failed.fix


def test_concurrency_that_cannot_be_read_warns(world: World) -> None:
    assert world.lambda_stub is not None
    world.lambda_stub.add_client_error(
        "get_account_settings", service_error_code="AccessDeniedException", http_status_code=403
    )
    warned = checks.check_concurrency(_located(world))
    assert warned.verdict is Verdict.WARN
    assert "lambda:GetAccountSettings" in warned.fix


def test_the_emulator_has_no_quota(world: World) -> None:
    world.target = LocalTarget(repo_root=REPO_ROOT)
    assert checks.check_concurrency(world.context()).verdict is Verdict.SKIP


# The account-wide API Gateway logging role


def _set_account_role(role_name: str, *, create: bool = True) -> str:
    iam = boto3.client("iam", region_name=REGION)
    arn = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    if create:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "apigateway.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
    boto3.client("apigateway", region_name=REGION).update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]
    )
    return arn


def test_an_unset_logging_role_is_set_by_the_api_layer(world: World) -> None:
    check = checks.check_api_gateway_logging_role(world.context())
    assert check.verdict is Verdict.PASS and "will set this environment's role" in check.detail
    world.settings = {"api": {"serverless-api:manage_account_logging_role": "false"}}
    with pytest.raises(CheckFailedError, match="names no role"):
        checks.check_api_gateway_logging_role(world.context())


def test_another_environments_role_serves_this_one(world: World) -> None:
    _set_account_role("serverless-prod-apigw-logs-20261130abcdef")
    check = checks.check_api_gateway_logging_role(world.context())
    assert check.verdict is Verdict.PASS
    assert "environment prod of this product" in check.detail


def test_a_foreign_role_warns_that_it_would_be_replaced(world: World) -> None:
    _set_account_role("landing-zone-apigw-logs")
    warned = checks.check_api_gateway_logging_role(world.context())
    assert warned.verdict is Verdict.WARN and "not this product's" in warned.detail
    assert "manage_account_logging_role false" in warned.fix
    world.settings = {"api": {"serverless-api:manage_account_logging_role": False}}
    kept = checks.check_api_gateway_logging_role(world.context())
    assert kept.verdict is Verdict.PASS and "managed outside this product" in kept.detail


def test_a_setting_naming_a_deleted_role(world: World) -> None:
    _set_account_role("serverless-old-apigw-logs-1", create=False)
    warned = checks.check_api_gateway_logging_role(world.context())
    assert warned.verdict is Verdict.WARN and "no longer exists" in warned.detail
    world.settings = {"api": {"serverless-api:manage_account_logging_role": "false"}}
    with pytest.raises(CheckFailedError, match="no longer exists"):
        checks.check_api_gateway_logging_role(world.context())


def test_the_logging_role_is_not_checked_without_the_api_layer(world: World) -> None:
    context = world.context(layers=[MANIFEST.layer("security")])
    assert checks.check_api_gateway_logging_role(context).verdict is Verdict.SKIP


# Bucket names


def _tags(layer: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in standard_tags(MANIFEST.layer(layer), "dev").items()]


def test_free_bucket_names_pass(world: World) -> None:
    check = checks.check_bucket_names(_located(world))
    assert check.verdict is Verdict.PASS
    assert f"{NAMES.upload_bucket} is free" in check.detail


def test_this_environments_buckets_pass_and_someone_elses_fail(world: World) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (NAMES.upload_bucket, NAMES.access_log_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tags("storage")})
    assert checks.check_bucket_names(_located(world)).verdict is Verdict.PASS
    s3.delete_bucket_tagging(Bucket=NAMES.access_log_bucket)
    failed = checks.check_bucket_names(_located(world))
    assert failed.verdict is Verdict.FAIL
    assert "BucketAlreadyOwnedByYou" in failed.detail


def test_a_bucket_name_taken_in_another_account_fails(world: World) -> None:
    # S3 answers HeadBucket on another account's bucket with 403 (HeadBucket API reference);
    # moto has one account, so the answer is injected.
    context = _located(world)
    s3 = boto3.client("s3", region_name=REGION)
    stub = Stubber(s3)
    for _ in ("upload bucket", "access-log bucket"):
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
    context.aws = lambda service: s3 if service == "s3" else world.client(service)
    with stub:
        failed = checks.check_bucket_names(context)
    assert failed.verdict is Verdict.FAIL and "another AWS account" in failed.detail
    assert "another stack name" in failed.fix


# Alarm e-mail addresses


@pytest.mark.parametrize(
    ("addresses", "verdict", "text"),
    [
        (["oncall@example.com"], Verdict.PASS, "1 well-formed"),
        ([], Verdict.WARN, "nobody is told"),
    ],
)
def test_alarm_addresses(world: World, addresses: list[str], verdict: Verdict, text: str) -> None:
    world.settings = {"observability": {"serverless-observability:alarm_emails": addresses}}
    check = checks.check_alarm_emails(world.context())
    assert check.verdict is verdict and text in check.detail


def test_a_malformed_alarm_address_fails_naming_it(world: World) -> None:
    world.settings = {
        "observability": {"serverless-observability:alarm_emails": ["ok@example.com", "oncall"]}
    }
    with pytest.raises(CheckFailedError, match="'oncall', which is not an e-mail"):
        checks.check_alarm_emails(world.context())


# The whole preflight


def test_a_fresh_account_passes_and_the_report_is_saved(world: World, tmp_path: Path) -> None:
    lambda_account(world, 1000, 1000)
    world.settings = {"observability": {"serverless-observability:alarm_emails": ["a@b.co"]}}
    world.cli.identity = Identity("me", "https://api.pulumi.com", ("acme",))
    checklist = checks.run_preflight(world.context())
    assert checklist.passed, checklist.to_json()
    assert [c.name for c in checklist.checks] == [
        "Pulumi CLI",
        "function archives",
        "stack settings",
        "pulumi-aws plugin",
        "Pulumi backend",
        "Pulumi organization",
        "AWS account and region",
        "Lambda concurrency",
        "API Gateway logging role",
        "bucket names",
        "alarm e-mail addresses",
    ]
    path = checklist.save(tmp_path / "preflight-report.json")
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["passed"] is True and saved["counts"]["fail"] == 0
    console = make_console()
    checklist.print(console, path)
    assert "Lambda concurrency" in console_text(console)


def test_a_failing_check_does_not_stop_the_others(world: World) -> None:
    world.failing_service = ("sts", ClientError({"Error": {"Code": "ExpiredToken"}}, "X"))
    checklist = checks.run_preflight(world.context())
    verdicts = {check.name: check.verdict for check in checklist.checks}
    assert verdicts["AWS account and region"] is Verdict.FAIL
    # Checks that need the account say why they could not run; the rest ran.
    assert verdicts["bucket names"] is Verdict.FAIL
    assert "AWS identity check" in next(
        c.detail for c in checklist.checks if c.name == "bucket names"
    )
    assert verdicts["Pulumi CLI"] is Verdict.PASS
    assert not checklist.passed
