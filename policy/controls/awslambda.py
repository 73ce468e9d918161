"""FSBP Lambda controls: who may invoke a function, and on which runtime it runs."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from policy.model import Control, Finding
from policy.values import get

PERMISSION = "aws:lambda/permission:Permission"
FUNCTION = "aws:lambda/function:Function"

# The Lambda runtimes this product deploys and AWS supports (not deprecated) as of 2026-11.
# Lambda.2 fails a function on any other runtime; add a runtime here when adopting it.
SUPPORTED_RUNTIMES = ("python3.12", "python3.13")

# Services whose source ARNs carry no account id: the account must be pinned separately.
ACCOUNTLESS_SOURCE_SERVICES = ("s3.amazonaws.com",)


def check_permission(args: ResourceValidationArgs) -> Iterator[Finding]:
    principal = str(get(args.props, "principal", default=""))
    if not principal or "*" in principal:
        yield Finding(args.urn, f"permission {args.name} grants invoke to everyone ({principal!r})")
        return
    if principal.endswith(".amazonaws.com"):
        if not get(args.props, "sourceArn"):
            yield Finding(
                args.urn,
                f"permission {args.name} lets {principal} invoke on behalf of any resource: "
                "set source_arn",
            )
        if principal in ACCOUNTLESS_SOURCE_SERVICES and not get(args.props, "sourceAccount"):
            yield Finding(
                args.urn,
                f"permission {args.name}: {principal} source ARNs name no account, so "
                "source_account is required",
            )


def check_runtime(args: ResourceValidationArgs) -> Iterator[Finding]:
    if get(args.props, "packageType") == "Image":
        return  # container images bring their own runtime
    runtime = get(args.props, "runtime")
    if runtime not in SUPPORTED_RUNTIMES:
        yield Finding(
            args.urn,
            f"function {args.name} runs on {runtime!r}; supported: {', '.join(SUPPORTED_RUNTIMES)}",
        )


CONTROLS = (
    Control(
        "Lambda.1",
        "lambda-1-no-public-invoke",
        "Lambda function policies should prohibit public access",
        "Every lambda.Permission names a specific principal; a service principal also needs a "
        "source ARN, and S3 (whose ARNs carry no account) a source account.",
        severity=Severity.CRITICAL,
        resource_types=frozenset({PERMISSION}),
        resource_check=check_permission,
    ),
    Control(
        "Lambda.2",
        "lambda-2-supported-runtime",
        "Lambda functions should use supported runtimes",
        f"Functions run on {' or '.join(SUPPORTED_RUNTIMES)}.",
        severity=Severity.MEDIUM,
        resource_types=frozenset({FUNCTION}),
        resource_check=check_runtime,
    ),
)
