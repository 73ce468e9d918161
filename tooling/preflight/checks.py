"""The preflight: what a first deploy needs of the tools, the login and the account, checked
before any resource is created, each answered pass / warn / fail with the fix in one sentence.

Every AWS call is read-only, through `PreflightContext.aws` (the target's account: the real one,
or the emulator for the local target), and every CLI call through `PreflightContext.cli`, so a
test substitutes both (moto where it serves the API, botocore's Stubber with the responses the
API references document where it does not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from semver import VersionInfo

from shared.config import email_problem, read_schema
from shared.manifest import MANIFEST, Layer
from shared.naming import APP_NAME, AwsLocation, NamingError, ResourceNames
from shared.packaging import PackagingError, built_archive
from shared.tags import standard_tags
from tooling.checklist import Check, CheckFailedError, Checklist, Verdict
from tooling.orchestrator.automation import INSTALL_DOCS_URL, organization_of, sdk_version
from tooling.orchestrator.targets import Target, UnavailableError
from tooling.preflight.cli import CliError, CliMissingError, Identity, InstalledCli, PulumiCli
from tooling.preflight.concurrency import (
    ConcurrencyRefusedError,
    SettingsReader,
    check_reservations,
    planned_reservations,
    stack_settings,
)

AwsClients = Callable[[str], Any]

PREFLIGHT_REPORT = "preflight-report.json"

# Names the product gives the role behind the account-wide API Gateway logging setting
# (shared/naming.py `api_gateway_cloudwatch_role_prefix`, `serverless-<stack>-apigw-logs-...`).
PRODUCT_LOGGING_ROLE_MARKER = "-apigw-logs-"


@dataclass
class PreflightContext:
    """Everything the checks look at; the layers are those about to be deployed."""

    target: Target
    stack: str
    cli: PulumiCli
    aws: AwsClients
    layers: Sequence[Layer] = field(default_factory=lambda: MANIFEST.layers)
    settings_of: SettingsReader = stack_settings
    # Found by the backend check and the identity check; later checks build on them.
    identity: Identity | None = None
    location: AwsLocation | None = None

    def setting(self, layer_name: str, key: str) -> Any:
        """A layer's config value for this stack, else the default its Pulumi.yaml declares."""
        layer = MANIFEST.layer(layer_name)
        settings = self.settings_of(layer, self.stack)
        qualified = key if ":" in key else f"{layer.project}:{key}"
        if qualified in settings:
            return settings[qualified]
        spec = read_schema(layer.directory / "Pulumi.yaml").get(key)
        return None if spec is None else spec.default

    def deploys(self, layer_name: str) -> bool:
        return any(layer.name == layer_name for layer in self.layers)

    def names(self) -> ResourceNames:
        if self.location is None:
            raise CheckFailedError(
                "needs the account and region, which the AWS identity check could not find",
                "fix the AWS identity check first",
            )
        return ResourceNames(self.stack, self.location)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def check_cli(ctx: PreflightContext) -> Check:
    pinned = sdk_version()
    try:
        found = ctx.cli.version()
    except CliError as error:
        found, problem = None, str(error)
    else:
        problem = "it is not installed"
    install = f"curl -fsSL https://get.pulumi.com | sh -s -- --version {pinned}"
    if found is None:
        return Check(
            "Pulumi CLI",
            Verdict.FAIL,
            f"the layers need the Pulumi CLI {pinned} and {problem}",
            f"install it: {install} (or see {INSTALL_DOCS_URL})",
        )
    if VersionInfo.parse(found) < VersionInfo.parse(pinned):
        return Check(
            "Pulumi CLI",
            Verdict.WARN,
            f"v{found} on PATH is older than the pinned v{pinned}; the orchestrator installs "
            f"v{pinned} into .pulumi-cli/ (needs the internet) and uses that",
            f"upgrade: {install}",
        )
    return Check("Pulumi CLI", Verdict.PASS, f"v{found} (pinned v{pinned})")


def check_aws_plugin(ctx: PreflightContext) -> Check:
    pinned = metadata.version("pulumi-aws")
    try:
        plugins = ctx.cli.plugins()
    except CliError as error:
        return Check("pulumi-aws plugin", Verdict.SKIP, f"cannot list plugins: {error}")
    versions = sorted(
        str(p.get("version"))
        for p in plugins
        if p.get("name") == "aws" and p.get("kind") == "resource"
    )
    if pinned in versions:
        return Check("pulumi-aws plugin", Verdict.PASS, f"resource plugin aws v{pinned}")
    return Check(
        "pulumi-aws plugin",
        Verdict.WARN,
        f"resource plugin aws v{pinned} is not installed (found: {', '.join(versions) or 'none'}); "
        "the CLI downloads it on the first deploy, which needs the internet",
        f"install it now: pulumi plugin install resource aws {pinned}",
    )


def check_backend(ctx: PreflightContext) -> Check:
    try:
        identity = ctx.identity = ctx.cli.whoami()
    except CliMissingError:
        return Check("Pulumi backend", Verdict.SKIP, "needs the Pulumi CLI (see above)")
    except CliError as error:
        return Check(
            "Pulumi backend",
            Verdict.FAIL,
            f"the CLI is not logged in to a backend ({error})",
            "run `pulumi login` (Pulumi Cloud, or s3://<bucket>, or --local), or set "
            "PULUMI_ACCESS_TOKEN",
        )
    return Check("Pulumi backend", Verdict.PASS, f"{identity.url} as {identity.user}")


@dataclass
class _Asked:
    """What `organization_of` asks a workspace, answered by the preflight's CLI."""

    identity: Identity
    cli: PulumiCli

    def who_am_i(self) -> Identity:
        return self.identity

    def org_get_default(self) -> str:
        try:
            return self.cli.default_org()
        except CliError as error:
            raise CheckFailedError(
                f"cannot ask the backend for your default organization ({error})",
                "pass --org <organization> or set PULUMI_ORG",
            ) from None


def check_organization(ctx: PreflightContext, identity: Identity) -> Check:
    """The organization the orchestrator will name the stacks in, decided as it decides it."""
    asked = _Asked(identity, ctx.cli)
    try:
        org = organization_of(ctx.target, lambda: asked, lambda: None)
    except UnavailableError as problem:
        return Check(
            "Pulumi organization",
            Verdict.FAIL,
            str(problem),
            "pass --org <organization>, set PULUMI_ORG, or `pulumi org set-default <name>`",
        )
    where = "self-managed backend" if identity.self_managed else identity.url
    return Check(
        "Pulumi organization", Verdict.PASS, f"stacks are {org}/<project>/<stack> ({where})"
    )


def configured_region(ctx: PreflightContext) -> tuple[str | None, dict[str, str]]:
    """The region the deploy will use (the target's, else the stacks'), and each layer's own."""
    per_layer = {
        layer.name: str(region)
        for layer in MANIFEST.layers
        if (region := ctx.settings_of(layer, ctx.stack).get("aws:region"))
    }
    # What the target sets on every stack before each operation wins (--region, the emulator's).
    entry = ctx.target.stack_config(MANIFEST.layers[0]).get("aws:region")
    return (entry.value if entry else next(iter(per_layer.values()), None)), per_layer


def check_identity_and_region(ctx: PreflightContext) -> Check:
    region, per_layer = configured_region(ctx)
    if region is None:
        raise CheckFailedError(
            f"no layer's Pulumi.{ctx.stack}.yaml sets aws:region and none was given",
            "pass --region <region>, or run `pulumi config set aws:region <region>` in each "
            "stacks/<layer>",
        )
    overridden = ctx.target.stack_config(MANIFEST.layers[0]).get("aws:region") is not None
    if not overridden and len(set(per_layer.values())) > 1:
        where = ", ".join(f"{layer} {value}" for layer, value in sorted(per_layer.items()))
        raise CheckFailedError(
            f"the layers are configured for different regions ({where}), but they read each "
            f"other's resources in one region ({region})",
            "set the same aws:region in every stacks/<layer>/Pulumi.<stack>.yaml, or pass --region",
        )
    try:
        identity = ctx.aws("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        raise CheckFailedError(
            f"no usable AWS credentials ({type(error).__name__}: {error})",
            "set AWS_PROFILE (after `aws sso login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ) from None
    partition = str(identity["Arn"]).split(":")[1]
    ctx.location = AwsLocation(partition=partition, region=region, account_id=identity["Account"])
    try:
        ResourceNames(ctx.stack, ctx.location)
    except NamingError as error:
        raise CheckFailedError(str(error), "choose a stack name as the message says") from None
    return Check(
        "AWS account and region",
        Verdict.PASS,
        f"account {identity['Account']} as {identity['Arn']}, region {region}",
    )


def check_concurrency(ctx: PreflightContext) -> Check:
    planned = planned_reservations(ctx.layers, ctx.stack, settings_of=ctx.settings_of)
    if not ctx.target.has_account_limits:
        return Check("Lambda concurrency", Verdict.SKIP, "the emulator has no concurrency quota")
    if not planned:
        return Check("Lambda concurrency", Verdict.PASS, "the layers reserve no concurrency")
    region = ctx.location.region if ctx.location else "this region"
    try:
        verdict = check_reservations(ctx.aws("lambda"), planned, ctx.stack, region)
    except ConcurrencyRefusedError as refused:
        return Check("Lambda concurrency", Verdict.FAIL, refused.problem, refused.fix)
    except (BotoCoreError, ClientError) as error:
        return Check(
            "Lambda concurrency",
            Verdict.WARN,
            f"could not read Lambda's account settings ({type(error).__name__}): Lambda will "
            "refuse a reservation leaving fewer than min(100, quota) executions unreserved",
            "allow lambda:GetAccountSettings to the deploying identity to check it before",
        )
    return Check("Lambda concurrency", Verdict.PASS, verdict)


def check_api_gateway_logging_role(ctx: PreflightContext) -> Check:
    name = "API Gateway logging role"
    if not ctx.deploys("api"):
        return Check(name, Verdict.SKIP, "the api layer is not being deployed")
    manages = str(ctx.setting("api", "manage_account_logging_role")).lower() == "true"
    current = ctx.aws("apigateway").get_account().get("cloudwatchRoleArn") or ""
    if not current:
        if manages:
            return Check(
                name,
                Verdict.PASS,
                "the account has none yet; the api layer will set this environment's role",
            )
        raise CheckFailedError(
            "the account-wide setting names no role and manage_account_logging_role is false, "
            "so API Gateway would refuse the stage's logging",
            "set manage_account_logging_role true in stacks/api, or have the account's "
            "administrators set a logging role",
        )
    role_name = current.rsplit("/", 1)[-1]
    ours = role_name.startswith(f"{APP_NAME}-") and PRODUCT_LOGGING_ROLE_MARKER in role_name
    if not _role_exists(ctx, role_name):
        if manages:
            return Check(
                name,
                Verdict.WARN,
                f"the setting names {role_name}, which no longer exists: no REST API in the "
                "account logs now; the api layer will set this environment's role",
            )
        raise CheckFailedError(
            f"the setting names {role_name}, which no longer exists, and "
            "manage_account_logging_role is false",
            "set manage_account_logging_role true in stacks/api, or have the administrators "
            "point the setting at an existing role",
        )
    if ours:
        owner = role_name.removeprefix(f"{APP_NAME}-").split(PRODUCT_LOGGING_ROLE_MARKER)[0]
        return Check(
            name,
            Verdict.PASS,
            f"set to {role_name} (environment {owner} of this product), which may write every "
            "environment's logs here",
        )
    if manages:
        return Check(
            name,
            Verdict.WARN,
            f"set to {role_name}, which is not this product's: the api layer will replace it, "
            "and its role may write only this product's and API Gateway's own log groups, so "
            "other REST APIs here that log elsewhere would lose access logs",
            "if the account's administrators own this setting, set "
            "manage_account_logging_role false in stacks/api",
        )
    return Check(
        name,
        Verdict.PASS,
        f"set to {role_name}, managed outside this product (manage_account_logging_role false); "
        "it must allow writing API-Gateway-Execution-Logs_* and /aws/apigateway/serverless-*",
    )


def _role_exists(ctx: PreflightContext, role_name: str) -> bool:
    try:
        ctx.aws("iam").get_role(RoleName=role_name)
    except ClientError as error:
        if _code(error) == "NoSuchEntity":
            return False
        raise
    return True


def _ours(tags: Sequence[Mapping[str, str]], ctx: PreflightContext, layer: str) -> bool:
    expected = standard_tags(MANIFEST.layer(layer), ctx.stack)
    found = {tag["Key"]: tag["Value"] for tag in tags}
    return all(found.get(key) == expected[key] for key in ("project", "layer", "environment"))


def _bucket_state(ctx: PreflightContext, bucket: str) -> tuple[Verdict, str, str]:
    s3 = ctx.aws("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = _code(error)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return Verdict.PASS, f"{bucket} is free", ""
        if code in ("403", "AccessDenied", "Forbidden"):
            return (
                Verdict.FAIL,
                f"{bucket} exists in another AWS account (bucket names are global)",
                "deploy under another stack name: it is part of every bucket name",
            )
        raise
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except ClientError as error:
        if _code(error) != "NoSuchTagSet":
            raise
        tags = []
    if _ours(tags, ctx, "storage"):
        return Verdict.PASS, f"{bucket} is this environment's already", ""
    return (
        Verdict.FAIL,
        f"{bucket} exists in this account but is not this environment's storage layer's, so "
        "creating it would fail (BucketAlreadyOwnedByYou)",
        "empty and delete it, or deploy under another stack name",
    )


def check_bucket_names(ctx: PreflightContext) -> Check:
    if not ctx.deploys("storage"):
        return Check("bucket names", Verdict.SKIP, "the storage layer is not being deployed")
    names = ctx.names()
    answers = [
        _bucket_state(ctx, bucket) for bucket in (names.upload_bucket, names.access_log_bucket)
    ]
    worst = next((a for a in answers if a[0] is Verdict.FAIL), None)
    if worst is not None:
        return Check("bucket names", *worst)
    return Check("bucket names", Verdict.PASS, "; ".join(detail for _, detail, _ in answers))


def check_stack_settings(ctx: PreflightContext) -> Check:
    """The aws target deploys only to stacks created beforehand, whose settings are committed."""
    name = "stack settings"
    if ctx.target.creates_stacks:
        return Check(name, Verdict.SKIP, f"the {ctx.target.name} target creates its stacks")
    missing = [
        layer.name
        for layer in ctx.layers
        if not (layer.directory / f"Pulumi.{ctx.stack}.yaml").is_file()
    ]
    if missing:
        raise CheckFailedError(
            f"no Pulumi.{ctx.stack}.yaml in stacks/{{{','.join(missing)}}}: those stacks were "
            "never created, and the aws target does not create stacks",
            f"in each of those folders run `pulumi stack init {ctx.stack}`, set aws:region and "
            "any config, and commit the file",
        )
    return Check(name, Verdict.PASS, f"every layer has its Pulumi.{ctx.stack}.yaml")


def check_function_archives(ctx: PreflightContext) -> Check:
    name = "function archives"
    functions = [function for layer in ctx.layers for function in layer.functions]
    if not functions:
        return Check(name, Verdict.SKIP, "the layers being deployed package no function")
    archives = []
    for function in functions:
        try:
            archives.append(built_archive(function.name))
        except PackagingError as error:
            raise CheckFailedError(str(error), "run `nox -s build`") from None
    listed = ", ".join(f"{a.function} {a.sha256_hex[:12]}" for a in archives)
    return Check(name, Verdict.PASS, f"built from the tree: {listed}")


def check_alarm_emails(ctx: PreflightContext) -> Check:
    name = "alarm e-mail addresses"
    if not ctx.deploys("observability"):
        return Check(name, Verdict.SKIP, "the observability layer is not being deployed")
    addresses = ctx.setting("observability", "alarm_emails") or []
    if isinstance(addresses, str):
        raise CheckFailedError(
            f"alarm_emails is {addresses!r}, not a list",
            "set it with: pulumi config set --path 'alarm_emails[0]' you@example.com",
        )
    problems = [problem for address in addresses if (problem := email_problem(str(address)))]
    if problems:
        raise CheckFailedError(
            "; ".join(problems),
            "fix the list with: pulumi config set --path 'alarm_emails[<n>]' you@example.com",
        )
    if not addresses:
        return Check(
            name,
            Verdict.WARN,
            "none: alarms are raised but nobody is told",
            "subscribe someone: pulumi config set --path 'alarm_emails[0]' you@example.com "
            "(in stacks/observability)",
        )
    return Check(
        name,
        Verdict.PASS,
        f"{len(addresses)} well-formed; each recipient confirms the subscription AWS e-mails",
    )


def run_preflight(ctx: PreflightContext) -> Checklist:
    """Every check, in the order a newcomer would fix them."""
    checklist = Checklist("preflight", {"stack": ctx.stack, "target": ctx.target.name})
    checklist.run("Pulumi CLI", lambda: check_cli(ctx))
    checklist.run("function archives", lambda: check_function_archives(ctx))
    checklist.run("stack settings", lambda: check_stack_settings(ctx))
    checklist.run("pulumi-aws plugin", lambda: check_aws_plugin(ctx))
    checklist.run("Pulumi backend", lambda: check_backend(ctx))
    identity = ctx.identity
    if identity is not None:
        checklist.run("Pulumi organization", lambda: check_organization(ctx, identity))
    checklist.run("AWS account and region", lambda: check_identity_and_region(ctx))
    checklist.run("Lambda concurrency", lambda: check_concurrency(ctx))
    checklist.run("API Gateway logging role", lambda: check_api_gateway_logging_role(ctx))
    checklist.run("bucket names", lambda: check_bucket_names(ctx))
    checklist.run("alarm e-mail addresses", lambda: check_alarm_emails(ctx))
    return checklist


def preflight_context(
    target: Target, stack: str, repo_root: Path, layers: Sequence[Layer] | None = None
) -> PreflightContext:
    """The real context: the installed CLI in the target's environment, the target's account."""
    context = PreflightContext(
        target=target,
        stack=stack,
        cli=InstalledCli(repo_root, target.environment()),
        aws=lambda service: target.aws_client(service, configured_region(context)[0]),
        layers=list(layers) if layers is not None else list(MANIFEST.layers),
    )
    return context
