"""Identity-policy controls: FSBP IAM.1, IAM.21, KMS.1 and KMS.2.

FSBP evaluates IAM.1, IAM.21 and KMS.1 on customer managed policies only and KMS.2 on inline
policies; this product applies all of them to both, because its execution roles carry their
permissions inline (`aws.iam.RolePolicy`). IAM.1 is held to least privilege: no statement
allows the action "*", and Resource "*" only for the actions AWS gives no resource-level
permissions (listed below, each used by a product policy in shared/policies.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from policy import documents
from policy.model import Control, Finding
from policy.values import as_list, get
from shared.policies import RANDOM_PASSWORD_ACTION, XRAY_WRITE_ACTIONS

MANAGED_POLICY = "aws:iam/policy:Policy"
INLINE_POLICIES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ROLE = "aws:iam/role:Role"
IDENTITY_POLICY_TYPES = frozenset({MANAGED_POLICY, *INLINE_POLICIES, ROLE})

# Actions for which AWS documents "*" as the only possible resource.
RESOURCE_STAR_ACTIONS = frozenset(
    action.lower()
    for action in (
        *XRAY_WRITE_ACTIONS,  # X-Ray has no resource-level permissions
        "logs:DescribeLogGroups",  # lists log groups; no resource-level permissions
        RANDOM_PASSWORD_ACTION,  # generates a password; acts on no resource
    )
)
SERVICE_WILDCARD = re.compile(r"^[a-z0-9-]+:\*$", re.IGNORECASE)
KMS_DECRYPT_ACTIONS = ("kms:Decrypt", "kms:ReEncryptFrom")
# A key in an account and region no product policy names: matching it means "every key".
ANY_KEY_PROBE = "arn:aws:kms:xx-probe-1:000000000000:key/00000000-0000-0000-0000-000000000000"


def identity_documents(
    args: ResourceValidationArgs,
) -> Iterator[tuple[str, documents.Document | str]]:
    """(label, document or parse error) for each identity policy the resource declares."""
    if args.resource_type == ROLE:
        for index, inline in enumerate(as_list(get(args.props, "inlinePolicies"))):
            raw = get(inline, "policy")
            if raw:
                yield from _parsed(f"inline policy #{index + 1} of role {args.name}", raw)
        return
    raw = get(args.props, "policy")
    if raw:
        yield from _parsed(f"policy {args.name}", raw)


def _parsed(label: str, raw: object) -> Iterator[tuple[str, documents.Document | str]]:
    try:
        yield label, documents.parse(raw)
    except documents.DocumentError as error:
        yield label, str(error)


def _allow_statements(
    args: ResourceValidationArgs,
) -> Iterator[tuple[str, documents.Statement] | Finding]:
    for label, document in identity_documents(args):
        if isinstance(document, str):
            yield Finding(args.urn, f"{label}: {document}")
            continue
        for index, statement in documents.walk_statements(document):
            if documents.allows(statement):
                yield f"{label} {documents.label(index, statement)}", statement


def check_no_admin(args: ResourceValidationArgs) -> Iterator[Finding]:
    for item in _allow_statements(args):
        if isinstance(item, Finding):
            yield item
            continue
        where, statement = item
        if "NotAction" in statement:
            yield Finding(args.urn, f"{where} allows everything but its NotAction list")
            continue
        acts = documents.actions(statement)
        if "*" in acts:
            yield Finding(args.urn, f"{where} allows the action '*'")
            continue
        if documents.applies_to_all_resources(statement):
            broad = [a for a in acts if a.lower() not in RESOURCE_STAR_ACTIONS]
            if broad:
                yield Finding(
                    args.urn,
                    f"{where} allows {', '.join(broad)} on Resource '*'; '*' is accepted only "
                    "for actions without resource-level permissions",
                )


def check_no_service_wildcards(args: ResourceValidationArgs) -> Iterator[Finding]:
    for item in _allow_statements(args):
        if isinstance(item, Finding):
            yield item
            continue
        where, statement = item
        wildcards = [a for a in documents.actions(statement) if SERVICE_WILDCARD.match(a)]
        if wildcards:
            yield Finding(args.urn, f"{where} allows every action of a service: {wildcards}")


def _covers_every_key(statement: documents.Statement) -> bool:
    if "NotResource" in statement:
        return True
    return any(
        documents.glob_matches(pattern, ANY_KEY_PROBE) for pattern in documents.resources(statement)
    )


def check_no_decrypt_on_all_keys(args: ResourceValidationArgs) -> Iterator[Finding]:
    for item in _allow_statements(args):
        if isinstance(item, Finding):
            yield item
            continue
        where, statement = item
        granted = [a for a in KMS_DECRYPT_ACTIONS if documents.grants_action(statement, a)]
        if granted and _covers_every_key(statement):
            yield Finding(args.urn, f"{where} allows {', '.join(granted)} on every KMS key")


INLINE_TYPES = frozenset({*INLINE_POLICIES, ROLE})

CONTROLS = (
    Control(
        "IAM.1",
        "iam-1-no-admin-or-wildcard-resources",
        "IAM policies should not allow full '*' administrative privileges",
        "Applied to inline policies too, as least privilege: no statement allows the action "
        "'*' (or uses NotAction), and Resource '*' appears only for "
        + ", ".join(sorted(RESOURCE_STAR_ACTIONS))
        + ".",
        severity=Severity.HIGH,
        resource_types=IDENTITY_POLICY_TYPES,
        resource_check=check_no_admin,
    ),
    Control(
        "IAM.21",
        "iam-21-no-service-wildcard-actions",
        "IAM customer managed policies that you create should not allow wildcard actions for "
        "services",
        "Applied to inline policies too: no statement allows 'service:*'.",
        severity=Severity.LOW,
        resource_types=IDENTITY_POLICY_TYPES,
        resource_check=check_no_service_wildcards,
    ),
    Control(
        "KMS.1",
        "kms-1-managed-policies-no-decrypt-on-all-keys",
        "IAM customer managed policies should not allow decryption actions on all KMS keys",
        "No customer managed policy allows kms:Decrypt or kms:ReEncryptFrom on every key.",
        severity=Severity.MEDIUM,
        resource_types=frozenset({MANAGED_POLICY}),
        resource_check=check_no_decrypt_on_all_keys,
    ),
    Control(
        "KMS.2",
        "kms-2-inline-policies-no-decrypt-on-all-keys",
        "IAM principals should not have IAM inline policies that allow decryption actions on "
        "all KMS keys",
        "No inline policy allows kms:Decrypt or kms:ReEncryptFrom on every key.",
        severity=Severity.MEDIUM,
        resource_types=INLINE_TYPES,
        resource_check=check_no_decrypt_on_all_keys,
    ),
)
