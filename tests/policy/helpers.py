"""Build pulumi-policy argument bags from small dicts and run one control's real Policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

from policy.controls import control
from policy.model import Scope, to_policy
from policy.suppressions import Suppressions
from tooling.synth.evaluate import policy_options, validate

NO_SUPPRESSIONS = Suppressions(())


def urn(type_: str, name: str, layer: str = "storage") -> str:
    return f"urn:pulumi:dev::serverless-{layer}::{type_}::{name}"


def resource_args(
    type_: str, props: Mapping[str, Any], name: str = "subject"
) -> ResourceValidationArgs:
    return ResourceValidationArgs(type_, props, urn(type_, name), name, policy_options(), None)


@dataclass
class Res:
    """One resource of a synthetic stack; `deps` maps a property to the names it depends on."""

    type: str
    name: str
    props: dict[str, Any]
    layer: str = "storage"
    deps: dict[str, list[str]] = field(default_factory=dict)


def stack_args(resources: Sequence[Res], scope: Scope = Scope.STACK) -> StackValidationArgs:
    built = {
        r.name: PolicyResource(
            r.type,
            r.props,
            urn(r.type, r.name, r.layer),
            r.name,
            policy_options(),
            None,
            None,
            [],
            {},
        )
        for r in resources
    }
    for r in resources:
        built[r.name].property_dependencies = {
            key: [built[name] for name in names] for key, names in r.deps.items()
        }
        built[r.name].dependencies = [built[n] for names in r.deps.values() for n in names]
    return StackValidationArgs(list(built.values()), {"scope": scope.value})


def collector(into: list[str]) -> Callable[[str, str | None], None]:
    """A report_violation callback appending each message to `into`."""

    def report(message: str, urn_: str | None = None) -> None:
        into.append(message)

    return report


def violations(control_id: str, args: ResourceValidationArgs | StackValidationArgs) -> list[str]:
    """The messages the control's real Policy reports (no suppressions), `urn: message`."""
    found: list[str] = []
    policy = to_policy(control(control_id), NO_SUPPRESSIONS)

    def report(message: str, urn_: str | None = None) -> None:
        found.append(f"{urn_ or ''}: {message}")

    validate(policy, args, report)
    return found
