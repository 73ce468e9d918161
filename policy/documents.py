"""IAM policy documents: parsing, and the questions the controls ask of them.

Action and resource patterns follow IAM's matching: case-insensitive for actions, `*` and `?`
wildcards. A statement "grants" an action when it allows it through `Action`, or through
`NotAction` by not excluding it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policy.model import Finding
from policy.values import as_list, get

Document = dict[str, Any]
Statement = Mapping[str, Any]

# Condition keys that tie a statement with a public principal to known callers. FSBP's
# "not public" controls (KMS.5, SNS.4, SQS.3, S3.2/S3.3) accept a "*" principal under these.
RESTRICTING_CONDITION_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOwner",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:ResourceAccount",
        "aws:userid",
        "aws:username",
        "kms:CallerAccount",
        "kms:ViaService",
    )
)


class DocumentError(ValueError):
    """A policy property that is not a JSON policy document."""


def parse(value: Any) -> Document:
    """A policy property (a JSON string, or an object) as a document."""
    if isinstance(value, str):
        try:
            document = json.loads(value)
        except json.JSONDecodeError as error:
            raise DocumentError(f"the policy is not valid JSON: {error}") from error
    elif isinstance(value, Mapping):
        document = json.loads(json.dumps(_plain(value)))
    else:
        raise DocumentError(f"the policy is neither JSON text nor an object: {value!r}")
    if not isinstance(document, dict) or "Statement" not in document:
        raise DocumentError("the policy has no Statement")
    return document


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(value[key]) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value


def statements(document: Document) -> list[Statement]:
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def allows(statement: Statement) -> bool:
    return str(statement.get("Effect", "")).lower() == "allow"


@lru_cache(maxsize=1024)
def _pattern(glob: str) -> re.Pattern[str]:
    escaped = re.escape(glob.lower()).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{escaped}$")


def glob_matches(glob: str, value: str) -> bool:
    return bool(_pattern(glob).match(value.lower()))


def actions(statement: Statement) -> list[str]:
    return [str(action) for action in as_list(statement.get("Action"))]


def grants_action(statement: Statement, action: str) -> bool:
    """Whether an Allow statement's Action/NotAction covers `action`."""
    if "NotAction" in statement:
        excluded = [str(a) for a in as_list(statement.get("NotAction"))]
        return not any(glob_matches(pattern, action) for pattern in excluded)
    return any(glob_matches(pattern, action) for pattern in actions(statement))


def resources(statement: Statement) -> list[str]:
    return [str(resource) for resource in as_list(statement.get("Resource"))]


def applies_to_all_resources(statement: Statement) -> bool:
    """Resource "*" (or NotResource, which reaches everything it does not exclude)."""
    return "NotResource" in statement or "*" in resources(statement)


@dataclass(frozen=True)
class Principals:
    everyone: bool
    aws: tuple[str, ...]
    services: tuple[str, ...]
    other: tuple[str, ...]


def principals(statement: Statement) -> Principals:
    """Who a statement speaks of; NotPrincipal counts as everyone (it names exclusions)."""
    if "NotPrincipal" in statement:
        return Principals(True, (), (), ())
    principal = statement.get("Principal")
    if principal is None:
        return Principals(False, (), (), ())
    if principal == "*":
        return Principals(True, (), (), ())
    if not isinstance(principal, Mapping):
        return Principals(False, (), (), (str(principal),))
    aws = tuple(str(p) for p in as_list(principal.get("AWS")))
    services = tuple(str(p) for p in as_list(principal.get("Service")))
    other = tuple(
        str(p)
        for key in principal
        if key not in ("AWS", "Service")
        for p in as_list(principal.get(key))
    )
    return Principals("*" in aws, aws, services, other)


def condition_keys(statement: Statement) -> set[str]:
    """Condition keys that carry at least one concrete (non-wildcard) value."""
    keys: set[str] = set()
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return keys
    for operator in condition:
        block = condition[operator]
        if not isinstance(block, Mapping):
            continue
        for key in block:
            values = [str(v) for v in as_list(block[key])]
            if values and not all(v.strip() in ("*", "") for v in values):
                keys.add(str(key).lower())
    return keys


def is_publicly_allowed(statement: Statement) -> bool:
    """An Allow to everyone ("*") that no account-, org-, source- or network-condition narrows."""
    if not allows(statement) or not principals(statement).everyone:
        return False
    return not (condition_keys(statement) & RESTRICTING_CONDITION_KEYS)


def not_public_findings(args: ResourceValidationArgs, what: str) -> Iterator[Finding]:
    """Findings for a resource policy (`policy` property) that allows everyone, unrestricted.

    `what` names the policy in messages: "key" gives "key policy of <name> ...".
    """
    raw = get(args.props, "policy")
    if not raw:
        return  # no resource policy: the service's default grants the account only
    try:
        document = parse(raw)
    except DocumentError as error:
        yield Finding(args.urn, f"{what} policy of {args.name}: {error}")
        return
    for index, statement in walk_statements(document):
        if is_publicly_allowed(statement):
            yield Finding(
                args.urn,
                f"{what} policy of {args.name} {label(index, statement)} allows everyone "
                "without an account, organization or source condition",
            )


def account_of_principal(principal: str) -> str | None:
    """The account id an AWS principal (account id or IAM ARN) belongs to."""
    if re.fullmatch(r"\d{12}", principal):
        return principal
    match = re.match(r"^arn:[^:]+:(?:iam|sts)::(\d{12}):", principal)
    return match.group(1) if match else None


def walk_statements(document: Document) -> Iterator[tuple[int, Statement]]:
    yield from enumerate(statements(document))


def label(index: int, statement: Statement) -> str:
    sid = statement.get("Sid")
    return f"statement {sid!r}" if sid else f"statement #{index + 1}"
