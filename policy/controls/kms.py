"""FSBP KMS controls on the keys themselves: rotation and a key policy that is not public."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from policy import documents
from policy.model import Control, Finding
from policy.values import get, truthy

KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
SYMMETRIC = "SYMMETRIC_DEFAULT"


def check_rotation(args: ResourceValidationArgs) -> Iterator[Finding]:
    spec = get(args.props, "customerMasterKeySpec") or get(args.props, "keySpec") or SYMMETRIC
    usage = get(args.props, "keyUsage") or "ENCRYPT_DECRYPT"
    if spec != SYMMETRIC or usage != "ENCRYPT_DECRYPT":
        return  # AWS rotates only symmetric encryption keys
    if not truthy(get(args.props, "enableKeyRotation")):
        yield Finding(args.urn, f"key {args.name} does not have automatic rotation enabled")


def check_not_public(args: ResourceValidationArgs) -> Iterator[Finding]:
    yield from documents.not_public_findings(args, "key")


CONTROLS = (
    Control(
        "KMS.4",
        "kms-4-key-rotation",
        "AWS KMS key rotation should be enabled",
        "Symmetric encryption keys set enable_key_rotation.",
        severity=Severity.MEDIUM,
        resource_types=frozenset({KEY}),
        resource_check=check_rotation,
    ),
    Control(
        "KMS.5",
        "kms-5-key-policy-not-public",
        "KMS keys should not be publicly accessible",
        "No key policy statement allows the principal '*' without a condition that restricts "
        "it to an account, organization, source or network.",
        severity=Severity.CRITICAL,
        resource_types=frozenset({KEY, KEY_POLICY}),
        resource_check=check_not_public,
    ),
)
