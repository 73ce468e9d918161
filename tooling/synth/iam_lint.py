"""Check every IAM document the layers declare with parliament (offline IAM linter).

Documents: identity policies (RolePolicy, Policy, UserPolicy, GroupPolicy, a role's inline
policies), role trust policies, key policies and resource policies (bucket, topic, queue,
secret). parliament lints identity policies; the others are adapted before linting:

- A trust policy has no Resource element (the role is the resource); the role's ARN is added
  so parliament checks actions, principals and conditions instead of stopping at MALFORMED.
- In key and resource policies Resource "*" means "this resource", so RESOURCE_STAR and
  RESOURCE_EFFECTIVELY_STAR do not apply to them.

Which findings fail synth: those that mean the document is wrong, whatever parliament's
severity label: it is malformed (MALFORMED, MALFORMED_JSON, DUPLICATE_SID, INVALID_SID,
INVALID_VERSION, INVALID_ARN), names something IAM does not know (UNKNOWN_ACTION,
UNKNOWN_PREFIX, UNKNOWN_PRINCIPAL, UNKNOWN_FEDERATION_SOURCE, UNKNOWN_OPERATOR), grants
nothing (RESOURCE_MISMATCH: no listed resource fits the action), or compares Null with
something other than true/false. The rest are warnings, reported and not failing: their data
lags AWS (UNKNOWN_CONDITION_FOR_ACTION for s3:TlsVersion, documented on every S3 action;
MISMATCHED_TYPE for kms:EncryptionContext:aws:logs:arn under ArnEquals, the form the
CloudWatch Logs documentation prescribes) or they restate what the IAM.1 policy already judges
(RESOURCE_STAR).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tooling.mock_engine import LayerRun, MockResource, unwrap_secret

ERROR_ISSUES = frozenset(
    {
        "EXCEPTION",
        "MALFORMED_JSON",
        "MALFORMED",
        "DUPLICATE_SID",
        "INVALID_SID",
        "INVALID_VERSION",
        "INVALID_ARN",
        "UNKNOWN_ACTION",
        "UNKNOWN_PREFIX",
        "UNKNOWN_PRINCIPAL",
        "UNKNOWN_FEDERATION_SOURCE",
        "UNKNOWN_OPERATOR",
        "RESOURCE_MISMATCH",
        "MISMATCHED_TYPE_OPERATION_TO_NULL",
    }
)
STAR_ISSUES = frozenset({"RESOURCE_STAR", "RESOURCE_EFFECTIVELY_STAR"})

IDENTITY = "identity"
TRUST = "trust"
RESOURCE_POLICY = "resource"

# resource type -> (property holding a policy document, kind of document)
DOCUMENT_PROPERTIES: dict[str, tuple[tuple[str, str], ...]] = {
    "aws:iam/rolePolicy:RolePolicy": (("policy", IDENTITY),),
    "aws:iam/policy:Policy": (("policy", IDENTITY),),
    "aws:iam/userPolicy:UserPolicy": (("policy", IDENTITY),),
    "aws:iam/groupPolicy:GroupPolicy": (("policy", IDENTITY),),
    "aws:iam/role:Role": (("assumeRolePolicy", TRUST),),
    "aws:kms/key:Key": (("policy", RESOURCE_POLICY),),
    "aws:kms/keyPolicy:KeyPolicy": (("policy", RESOURCE_POLICY),),
    "aws:s3/bucketPolicy:BucketPolicy": (("policy", RESOURCE_POLICY),),
    "aws:sns/topic:Topic": (("policy", RESOURCE_POLICY),),
    "aws:sns/topicPolicy:TopicPolicy": (("policy", RESOURCE_POLICY),),
    "aws:sqs/queue:Queue": (("policy", RESOURCE_POLICY),),
    "aws:sqs/queuePolicy:QueuePolicy": (("policy", RESOURCE_POLICY),),
    "aws:secretsmanager/secretPolicy:SecretPolicy": (("policy", RESOURCE_POLICY),),
}

_PER_ACTION = re.compile(r" for action \S+$")


@dataclass(frozen=True)
class LintFinding:
    layer: str
    resource: str
    document: str
    issue: str
    severity: str
    title: str
    detail: str
    count: int
    error: bool

    def line(self) -> str:
        times = f" (x{self.count})" if self.count > 1 else ""
        return f"{self.layer}/{self.resource} {self.document}: {self.issue}{times} {self.detail}"


@dataclass(frozen=True)
class RawFinding:
    issue: str
    severity: str
    title: str
    detail: str


def _parliament() -> Any:
    # parliament opens its data files without closing them and imports pkg_resources, which
    # warns at import; neither is ours to fix, so only its import is silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parliament

    return parliament


def prepare(text: str, kind: str, resource_arn: str | None) -> str:
    """The document as parliament should see it (see the module docstring)."""
    if kind != TRUST:
        return text
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text
    statements = document.get("Statement") if isinstance(document, dict) else None
    for statement in statements if isinstance(statements, list) else [statements]:
        if isinstance(statement, dict) and not {"Resource", "NotResource"} & set(statement):
            statement["Resource"] = resource_arn or "*"
    return json.dumps(document)


def lint_document(
    text: str, kind: str = IDENTITY, resource_arn: str | None = None
) -> list[RawFinding]:
    """parliament's findings on one document, enhanced with severity and title."""
    parliament = _parliament()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = parliament.analyze_policy_string(prepare(text, kind, resource_arn))
        findings = [parliament.enhance_finding(finding) for finding in policy.findings]
    raw = [
        RawFinding(
            issue=str(f.issue),
            severity=str(getattr(f, "severity", "")),
            title=str(getattr(f, "title", "")),
            detail=_PER_ACTION.sub("", str(f.detail)) if f.detail else "",
        )
        for f in findings
    ]
    if kind != IDENTITY:
        raw = [finding for finding in raw if finding.issue not in STAR_ISSUES]
    return raw


def documents_of(resource: MockResource) -> Iterator[tuple[str, str, str]]:
    """(label, JSON text, kind) of each policy document a resource declares."""
    for prop, kind in DOCUMENT_PROPERTIES.get(resource.type, ()):
        value, _ = unwrap_secret(resource.inputs.get(prop))
        if value:
            yield prop, value if isinstance(value, str) else json.dumps(value), kind
    if resource.type == "aws:iam/role:Role":
        for index, inline in enumerate(resource.inputs.get("inlinePolicies") or []):
            if isinstance(inline, Mapping) and inline.get("policy"):
                yield f"inlinePolicies[{index}]", str(inline["policy"]), IDENTITY


def lint_runs(runs: Mapping[str, LayerRun]) -> list[LintFinding]:
    """Every parliament finding on every document of every layer, repeated findings merged."""
    results: list[LintFinding] = []
    for layer, run in runs.items():
        for resource in run.aws_resources:
            arn = resource.outputs.get("arn")
            for label, text, kind in documents_of(resource):
                counted: dict[RawFinding, int] = {}
                for finding in lint_document(text, kind, arn if isinstance(arn, str) else None):
                    counted[finding] = counted.get(finding, 0) + 1
                results.extend(
                    LintFinding(
                        layer=layer,
                        resource=resource.name,
                        document=label,
                        issue=finding.issue,
                        severity=finding.severity,
                        title=finding.title,
                        detail=finding.detail,
                        count=count,
                        error=finding.issue in ERROR_ISSUES,
                    )
                    for finding, count in counted.items()
                )
    return results
