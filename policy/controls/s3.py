"""FSBP S3 controls. Every bucket setting lives on its own resource in pulumi-aws 7
(BucketVersioning, BucketPublicAccessBlock, ...), so these are stack validations that find
each bucket's settings resources by property dependency or by the bucket's name.

The bucket that receives server access logs (the target of another bucket's BucketLogging) is
reported under the exception class `log-delivery-target` where AWS leaves it no choice: S3
delivers access logs only to SSE-S3 buckets (S3.17), and a log bucket does not log or notify
about itself (S3.9, S3.11). suppressions.yaml decides whether those findings are accepted.
"""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from policy import documents
from policy.model import Control, Finding, Scope
from policy.values import as_list, get, identifiers, of_types, points_to, truthy

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
VERSIONING = (
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
)
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
OWNERSHIP = ("aws:s3/bucketOwnershipControls:BucketOwnershipControls",)
LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
LIFECYCLE = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
NOTIFICATION = ("aws:s3/bucketNotification:BucketNotification",)
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
BUCKET_ACL = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
KMS_KEY = "aws:kms/key:Key"

LOG_DELIVERY_TARGET = "log-delivery-target"
# Canned ACLs that grant everyone (or every AWS account) a permission.
PUBLIC_CANNED_ACLS = {
    "public-read": {"READ"},
    "public-read-write": {"READ", "WRITE"},
    "authenticated-read": {"READ"},
}
PUBLIC_ACL_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions")
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl")
# S3.6: what no other account may be granted on a bucket.
ADMIN_ACTIONS = (
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketPolicy",
    "s3:PutEncryptionConfiguration",
    "s3:PutObjectAcl",
)
AWS_MANAGED_S3_KEYS = ("alias/aws/s3", "aws/s3")


def _name(bucket: PolicyResource) -> str:
    return str(get(bucket.props, "bucket") or get(bucket.props, "id") or bucket.name)


def _settings(
    args: StackValidationArgs, types: tuple[str, ...], bucket: PolicyResource
) -> list[PolicyResource]:
    return [r for r in of_types(args, *types) if points_to(r, "bucket", bucket, "bucket")]


def _buckets(args: StackValidationArgs) -> list[PolicyResource]:
    return of_types(args, *BUCKET_TYPES)


def is_log_delivery_target(args: StackValidationArgs, bucket: PolicyResource) -> bool:
    """Another bucket's server access logs are delivered to this bucket."""
    for logging in of_types(args, *LOGGING):
        if points_to(logging, "targetBucket", bucket, "bucket") and not points_to(
            logging, "bucket", bucket, "bucket"
        ):
            return True
    return False


def _policies(args: StackValidationArgs, bucket: PolicyResource) -> list[documents.Document]:
    raw = [get(p.props, "policy") for p in _settings(args, BUCKET_POLICY, bucket)]
    raw.append(get(bucket.props, "policy"))
    parsed: list[documents.Document] = []
    for value in raw:
        if value:
            try:
                parsed.append(documents.parse(value))
            except documents.DocumentError:
                continue  # the IAM document check (parliament) reports malformed documents
    return parsed


def _public_access_neutralised(args: StackValidationArgs, bucket: PolicyResource) -> bool:
    """Public ACLs ignored and public policies restricted: nothing public takes effect."""
    return any(
        truthy(get(block.props, "ignorePublicAcls"))
        and truthy(get(block.props, "restrictPublicBuckets"))
        for block in _settings(args, PUBLIC_ACCESS_BLOCK, bucket)
    )


def _acl_grants(args: StackValidationArgs, bucket: PolicyResource, permissions: set[str]) -> bool:
    acls = [get(bucket.props, "acl")]
    grants = list(as_list(get(bucket.props, "grants")))
    for acl_resource in _settings(args, BUCKET_ACL, bucket):
        acls.append(get(acl_resource.props, "acl"))
        grants.extend(as_list(get(acl_resource.props, "accessControlPolicy", "grants")))
    if any(
        isinstance(acl, str) and PUBLIC_CANNED_ACLS.get(acl, set()) & permissions for acl in acls
    ):
        return True
    for grant in grants:
        uri = get(grant, "grantee", "uri") or get(grant, "uri")
        granted = {str(p) for p in as_list(get(grant, "permission") or get(grant, "permissions"))}
        if uri in PUBLIC_ACL_GRANTEES and granted & (permissions | {"FULL_CONTROL"}):
            return True
    return False


def _public_policy_grants(
    args: StackValidationArgs, bucket: PolicyResource, wanted: tuple[str, ...]
) -> bool:
    return any(
        documents.is_publicly_allowed(statement)
        and any(documents.grants_action(statement, action) for action in wanted)
        for document in _policies(args, bucket)
        for statement in documents.statements(document)
    )


def _no_public(
    args: StackValidationArgs, what: str, permissions: set[str], wanted: tuple[str, ...]
) -> Iterator[Finding]:
    for bucket in _buckets(args):
        if _public_access_neutralised(args, bucket):
            continue
        if _acl_grants(args, bucket, permissions):
            yield Finding(bucket.urn, f"bucket {_name(bucket)} grants public {what} by ACL")
        if _public_policy_grants(args, bucket, wanted):
            yield Finding(bucket.urn, f"bucket {_name(bucket)} policy allows public {what}")


def check_public_read(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    yield from _no_public(args, "read", {"READ"}, READ_ACTIONS)


def check_public_write(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    yield from _no_public(args, "write", {"WRITE"}, WRITE_ACTIONS)


def _covers_bucket(patterns: list[str], bucket_name: str) -> tuple[bool, bool]:
    """(covers the bucket ARN, covers its objects), partition-independent."""
    bucket_arn = f"arn:aws:s3:::{bucket_name}"
    normalised = [_aws_partition(pattern) for pattern in patterns]
    on_bucket = any(documents.glob_matches(p, bucket_arn) for p in normalised)
    on_objects = any(documents.glob_matches(p, f"{bucket_arn}/any/key") for p in normalised)
    return on_bucket, on_objects


def _aws_partition(arn: str) -> str:
    parts = arn.split(":", 2)
    if len(parts) == 3 and parts[0] == "arn":
        return f"arn:aws:{parts[2]}"
    return arn


def _denies_insecure_transport(statement: documents.Statement, bucket_name: str) -> bool:
    if str(statement.get("Effect", "")).lower() != "deny":
        return False
    if not documents.principals(statement).everyone:
        return False
    if not all(documents.grants_action(statement, a) for a in ("s3:GetObject", "s3:PutObject")):
        return False
    condition = get(statement, "Condition", "Bool") or {}
    secure = next(
        (condition[key] for key in condition if str(key).lower() == "aws:securetransport"),
        None,
    )
    if not any(str(value).lower() == "false" for value in as_list(secure)):
        return False
    on_bucket, on_objects = _covers_bucket(documents.resources(statement), bucket_name)
    return on_bucket and on_objects


def check_tls_only(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    for bucket in _buckets(args):
        name = _name(bucket)
        if not any(
            _denies_insecure_transport(statement, name)
            for document in _policies(args, bucket)
            for statement in documents.statements(document)
        ):
            yield Finding(
                bucket.urn,
                f"bucket {name} has no policy statement denying s3:* to everyone on the bucket "
                "and its objects when aws:SecureTransport is false",
            )


def own_accounts(args: StackValidationArgs) -> set[str]:
    """Account ids in the ARNs the stack's resources carry: the account it deploys to."""
    accounts: set[str] = set()
    for resource in args.resources:
        arn = get(resource.props, "arn")
        if isinstance(arn, str) and arn.startswith("arn:"):
            parts = arn.split(":")
            if len(parts) > 4 and parts[4].isdigit():
                accounts.add(parts[4])
    return accounts


def check_cross_account_admin(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    accounts = own_accounts(args)
    for bucket in _buckets(args):
        for document in _policies(args, bucket):
            for index, statement in documents.walk_statements(document):
                if not documents.allows(statement):
                    continue
                granted = [a for a in ADMIN_ACTIONS if documents.grants_action(statement, a)]
                if not granted:
                    continue
                who = documents.principals(statement)
                outsiders = [
                    p for p in who.aws if documents.account_of_principal(p) not in accounts
                ]
                if documents.is_publicly_allowed(statement) or outsiders:
                    yield Finding(
                        bucket.urn,
                        f"bucket {_name(bucket)} policy {documents.label(index, statement)} "
                        f"grants {', '.join(granted)} to other accounts "
                        f"({', '.join(outsiders) or '*'})",
                    )


def check_public_access_block(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in _buckets(args):
        blocks = _settings(args, PUBLIC_ACCESS_BLOCK, bucket)
        if not any(all(truthy(get(b.props, key)) for key in keys) for b in blocks):
            yield Finding(
                bucket.urn,
                f"bucket {_name(bucket)} has no BucketPublicAccessBlock setting all of "
                f"{', '.join(keys)} to true",
            )


def check_access_logging(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    for bucket in _buckets(args):
        configured = any(
            get(logging.props, "targetBucket") for logging in _settings(args, LOGGING, bucket)
        ) or bool(get(bucket.props, "logging", "targetBucket"))
        if configured:
            continue
        if is_log_delivery_target(args, bucket):
            yield Finding(
                bucket.urn,
                f"bucket {_name(bucket)} receives server access logs and does not log its own",
                exception=LOG_DELIVERY_TARGET,
            )
        else:
            yield Finding(bucket.urn, f"bucket {_name(bucket)} has no server access logging")


def _versioned(args: StackValidationArgs, bucket: PolicyResource) -> bool:
    return any(
        get(v.props, "versioningConfiguration", "status") == "Enabled"
        for v in _settings(args, VERSIONING, bucket)
    ) or truthy(get(bucket.props, "versioning", "enabled"))


def _has_lifecycle(args: StackValidationArgs, bucket: PolicyResource) -> bool:
    rules = [
        rule
        for lifecycle in _settings(args, LIFECYCLE, bucket)
        for rule in as_list(get(lifecycle.props, "rules"))
    ]
    rules.extend(as_list(get(bucket.props, "lifecycleRules")))
    return any(get(rule, "status") == "Enabled" or truthy(get(rule, "enabled")) for rule in rules)


def check_versioned_lifecycle(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    for bucket in _buckets(args):
        if _versioned(args, bucket) and not _has_lifecycle(args, bucket):
            yield Finding(
                bucket.urn,
                f"versioned bucket {_name(bucket)} has no enabled lifecycle rule",
            )


def check_lifecycle(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    for bucket in _buckets(args):
        if not _has_lifecycle(args, bucket):
            yield Finding(bucket.urn, f"bucket {_name(bucket)} has no enabled lifecycle rule")


def check_event_notifications(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    notifications = of_types(args, *NOTIFICATION)
    if scope is Scope.STACK and not notifications:
        # The trigger may be declared by another layer (here: compute); synth judges the pair.
        return
    for bucket in _buckets(args):
        notified = any(
            points_to(notification, "bucket", bucket, "bucket")
            and (
                any(
                    as_list(get(notification.props, kind))
                    for kind in ("lambdaFunctions", "queues", "topics")
                )
                or truthy(get(notification.props, "eventbridge"))
            )
            for notification in notifications
        )
        if notified:
            continue
        if is_log_delivery_target(args, bucket):
            yield Finding(
                bucket.urn,
                f"bucket {_name(bucket)} receives server access logs and has no event "
                "notifications",
                exception=LOG_DELIVERY_TARGET,
            )
        else:
            yield Finding(bucket.urn, f"bucket {_name(bucket)} has no event notifications")


def check_acls_disabled(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    for bucket in _buckets(args):
        enforced = any(
            get(controls.props, "rule", "objectOwnership") == "BucketOwnerEnforced"
            for controls in _settings(args, OWNERSHIP, bucket)
        )
        if not enforced:
            yield Finding(
                bucket.urn,
                f"bucket {_name(bucket)} has no BucketOwnershipControls with "
                "objectOwnership BucketOwnerEnforced (ACLs disabled)",
            )
        for acl in _settings(args, BUCKET_ACL, bucket):
            yield Finding(acl.urn, f"bucket {_name(bucket)} is managed with an ACL ({acl.name})")


def check_versioning(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    for bucket in _buckets(args):
        if not _versioned(args, bucket):
            yield Finding(bucket.urn, f"bucket {_name(bucket)} does not have versioning Enabled")


def _default_encryption(args: StackValidationArgs, bucket: PolicyResource) -> list[object]:
    defaults: list[object] = [
        get(rule, "applyServerSideEncryptionByDefault")
        for config in _settings(args, ENCRYPTION, bucket)
        for rule in as_list(get(config.props, "rules"))
    ]
    inline = get(bucket.props, "serverSideEncryptionConfiguration", "rule")
    defaults.extend(get(rule, "applyServerSideEncryptionByDefault") for rule in as_list(inline))
    return [default for default in defaults if default]


def check_kms_encryption(args: StackValidationArgs, scope: Scope) -> Iterator[Finding]:
    product_keys = {value for key in of_types(args, KMS_KEY) for value in identifiers(key, "keyId")}
    for bucket in _buckets(args):
        name = _name(bucket)
        defaults = _default_encryption(args, bucket)
        algorithms = {str(get(default, "sseAlgorithm")) for default in defaults}
        kms = [d for d in defaults if get(d, "sseAlgorithm") in ("aws:kms", "aws:kms:dsse")]
        if kms:
            key_id = get(kms[0], "kmsMasterKeyId")
            if not key_id or key_id in AWS_MANAGED_S3_KEYS:
                yield Finding(
                    bucket.urn,
                    f"bucket {name} uses SSE-KMS with the AWS managed key, not the product's "
                    "customer managed key",
                )
            elif scope is Scope.PRODUCT and product_keys and key_id not in product_keys:
                yield Finding(
                    bucket.urn,
                    f"bucket {name} is encrypted with {key_id}, which no layer of the product "
                    "declares",
                )
            continue
        if algorithms == {"AES256"} and is_log_delivery_target(args, bucket):
            yield Finding(
                bucket.urn,
                f"bucket {name} receives server access logs, which S3 delivers only to SSE-S3 "
                "(AES256) buckets",
                exception=LOG_DELIVERY_TARGET,
            )
            continue
        found = ", ".join(sorted(algorithms)) or "no default encryption configuration"
        yield Finding(bucket.urn, f"bucket {name} is not encrypted with SSE-KMS ({found})")


CONTROLS = (
    Control(
        "S3.2",
        "s3-2-no-public-read",
        "S3 general purpose buckets should block public read access",
        "No public-read ACL or bucket policy statement allows everyone to read, unless the "
        "bucket's public access block ignores public ACLs and restricts public policies.",
        severity=Severity.CRITICAL,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_public_read,
    ),
    Control(
        "S3.3",
        "s3-3-no-public-write",
        "S3 general purpose buckets should block public write access",
        "No public-read-write ACL or bucket policy statement allows everyone to write, unless "
        "the bucket's public access block ignores public ACLs and restricts public policies.",
        severity=Severity.CRITICAL,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_public_write,
    ),
    Control(
        "S3.5",
        "s3-5-tls-only-bucket-policy",
        "S3 general purpose buckets should require requests to use SSL",
        "The bucket policy denies s3:* to every principal on the bucket and its objects when "
        "aws:SecureTransport is false.",
        severity=Severity.MEDIUM,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_tls_only,
    ),
    Control(
        "S3.6",
        "s3-6-no-admin-actions-for-other-accounts",
        "S3 general purpose bucket policies should restrict access to other AWS accounts",
        "No bucket policy allows s3:DeleteBucketPolicy, PutBucketAcl, PutBucketPolicy, "
        "PutEncryptionConfiguration or PutObjectAcl to another account or to everyone.",
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_cross_account_admin,
    ),
    Control(
        "S3.8",
        "s3-8-bucket-public-access-block",
        "S3 general purpose buckets should block public access",
        "Each bucket has a public access block with all four settings true.",
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_public_access_block,
    ),
    Control(
        "S3.9",
        "s3-9-server-access-logging",
        "S3 general purpose buckets should have server access logging enabled",
        "Each bucket has a BucketLogging with a target bucket; the bucket that receives the "
        "logs is reported under the exception log-delivery-target.",
        severity=Severity.MEDIUM,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_access_logging,
    ),
    Control(
        "S3.10",
        "s3-10-versioned-bucket-lifecycle",
        "S3 general purpose buckets with versioning enabled should have Lifecycle configurations",
        "A versioned bucket has at least one enabled lifecycle rule.",
        severity=Severity.MEDIUM,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_versioned_lifecycle,
    ),
    Control(
        "S3.11",
        "s3-11-event-notifications",
        "S3 general purpose buckets should have event notifications enabled",
        "Each bucket has a BucketNotification with at least one destination. The notification "
        "may be declared by another layer: per stack, a bucket is judged only where the stack "
        "declares notifications; synth judges the whole product.",
        severity=Severity.MEDIUM,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_event_notifications,
        cross_layer=True,
    ),
    Control(
        "S3.12",
        "s3-12-acls-disabled",
        "ACLs should not be used to manage user access to S3 general purpose buckets",
        "Each bucket's ownership controls are BucketOwnerEnforced and no BucketAcl exists.",
        severity=Severity.MEDIUM,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_acls_disabled,
    ),
    Control(
        "S3.13",
        "s3-13-lifecycle",
        "S3 general purpose buckets should have Lifecycle configurations",
        "Each bucket has at least one enabled lifecycle rule.",
        severity=Severity.LOW,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_lifecycle,
    ),
    Control(
        "S3.14",
        "s3-14-versioning",
        "S3 general purpose buckets should have versioning enabled",
        "Each bucket has a BucketVersioning with status Enabled.",
        severity=Severity.LOW,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_versioning,
    ),
    Control(
        "S3.17",
        "s3-17-sse-kms-customer-managed-key",
        "S3 general purpose buckets should be encrypted at rest with AWS KMS keys",
        "Default encryption is SSE-KMS with a customer managed key (over the whole product: a "
        "key the product declares). A bucket receiving server access logs with SSE-S3 is "
        "reported under the exception log-delivery-target, because S3 delivers access logs "
        "only to SSE-S3 buckets.",
        severity=Severity.MEDIUM,
        subjects=frozenset(BUCKET_TYPES),
        stack_check=check_kms_encryption,
        cross_layer=True,
    ),
)
