"""Evaluate the policy pack on synthesized layers, through the pack's own Policy objects.

Resource policies get what the engine's Analyze call gives them: the resource's inputs
(camelCase, secrets unwrapped). Stack policies get what AnalyzeStack gives them: every
resource with its state (inputs and computed attributes, here placeholders), parent,
dependencies and property dependencies, linked by URN.

Scopes: resource policies run per resource; stack policies run per layer with the `stack`
scope, as the engine runs them per stack; cross-layer controls also run once with the
`product` scope over the union of all five layers. Findings of both runs are merged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policy.controls import CONTROLS
from policy.model import Control, Scope, SuppressedFinding, to_policy
from policy.suppressions import Suppressions, load_suppressions
from policy.urns import layer_of, name_of, type_of
from tooling.mock_engine import LayerRun, MockResource, unwrap_secret

STACK_LEVEL = "(stack)"


@dataclass(frozen=True)
class Violation:
    control_id: str
    policy_name: str
    layer: str
    resource: str
    resource_type: str
    message: str
    scope: str

    def line(self) -> str:
        return f"{self.layer}/{self.resource} [{self.control_id}]: {self.message}"


@dataclass(frozen=True)
class SuppressedRecord:
    control_id: str
    layer: str
    resource: str
    message: str
    reason: str
    applies_to: str
    scope: str


@dataclass(frozen=True)
class Undecided:
    control_id: str
    layer: str
    message: str


@dataclass
class Evaluation:
    violations: list[Violation] = field(default_factory=list)
    suppressed: list[SuppressedRecord] = field(default_factory=list)
    undecided: list[Undecided] = field(default_factory=list)
    # control id -> layers holding at least one resource the control judges
    applicable: dict[str, set[str]] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """An input value as pulumi-policy deserializes it: secrets unwrapped, recursively."""
    unwrapped, _ = unwrap_secret(value)
    if isinstance(unwrapped, Mapping):
        return {str(key): plain(item) for key, item in unwrapped.items()}
    if isinstance(unwrapped, list | tuple):
        return [plain(item) for item in unwrapped]
    return unwrapped


def policy_options(parent: str | None = None) -> PolicyResourceOptions:
    """A resource's options as the engine passes them: only the parent's URN is ever set."""
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def resource_args(resource: MockResource) -> ResourceValidationArgs:
    """What the engine's Analyze passes a resource policy: type, inputs, URN, name."""
    return ResourceValidationArgs(
        resource.type,
        plain(resource.inputs),
        resource.urn,
        resource.name,
        policy_options(resource.parent),
        None,
    )


def policy_resources(resources: Sequence[MockResource]) -> list[PolicyResource]:
    """What AnalyzeStack passes a stack policy: state, parent and dependencies, by URN."""
    built = [
        PolicyResource(
            resource.type,
            plain({**resource.inputs, **resource.outputs, "id": resource.id}),
            resource.urn,
            resource.name,
            policy_options(resource.parent),
            None,
            None,
            [],
            {},
        )
        for resource in resources
    ]
    by_urn = {resource.urn: policy for resource, policy in zip(resources, built, strict=True)}
    for resource, policy in zip(resources, built, strict=True):
        policy.parent = by_urn.get(resource.parent or "")
        policy.dependencies = [by_urn[urn] for urn in resource.dependencies if urn in by_urn]
        policy.property_dependencies = {
            key: [by_urn[urn] for urn in urns if urn in by_urn]
            for key, urns in resource.property_dependencies.items()
        }
    return built


def validate(
    policy: ResourceValidationPolicy | StackValidationPolicy,
    args: ResourceValidationArgs | StackValidationArgs,
    report: Callable[[str, str | None], None],
) -> object:
    """Run `policy` on `args` (which must be of its kind); a coroutine when the policy is async."""
    if isinstance(policy, ResourceValidationPolicy):
        if not isinstance(args, ResourceValidationArgs):
            raise TypeError(f"{policy.name} is a resource policy")
        return policy.validate(args, report)
    if not isinstance(args, StackValidationArgs):
        raise TypeError(f"{policy.name} is a stack policy")
    return policy.validate(args, report)


def _run(result: object) -> None:
    if isawaitable(result):
        asyncio.run(_await(result))


async def _await(awaitable: Any) -> None:
    await awaitable


class _Evaluator:
    def __init__(self, suppressions: Suppressions) -> None:
        self.evaluation = Evaluation()
        self._scope = "resource"
        self._seen: set[tuple[str, str, str]] = set()
        self.policies = {
            control.control_id: to_policy(control, suppressions, self._on_suppressed)
            for control in CONTROLS
        }

    def _on_suppressed(self, suppressed: SuppressedFinding) -> None:
        key = (suppressed.control.control_id, suppressed.finding.urn, suppressed.finding.message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.evaluation.suppressed.append(
            SuppressedRecord(
                control_id=suppressed.control.control_id,
                layer=layer_of(suppressed.finding.urn),
                resource=name_of(suppressed.finding.urn),
                message=suppressed.finding.message,
                reason=suppressed.suppression.reason,
                applies_to=suppressed.suppression.scope,
                scope=self._scope,
            )
        )

    def _reporter(
        self, control: Control, layer: str, resource: MockResource | None
    ) -> Callable[[str, str | None], None]:
        def report(message: str, urn: str | None = None) -> None:
            target = urn or (resource.urn if resource is not None else "")
            name = resource.name if resource is not None and not urn else name_of(target)
            key = (control.control_id, target, message)
            if key in self._seen:
                return
            self._seen.add(key)
            self.evaluation.violations.append(
                Violation(
                    control_id=control.control_id,
                    policy_name=control.policy_name,
                    layer=layer_of(target) if target else layer,
                    resource=name or STACK_LEVEL,
                    resource_type=(resource.type if resource is not None and not urn else "")
                    or type_of(target),
                    message=message,
                    scope=self._scope,
                )
            )

        return report

    def _validate(
        self,
        control: Control,
        layer: str,
        args: ResourceValidationArgs | StackValidationArgs,
        report: Callable[[str, str | None], None],
    ) -> None:
        policy = self.policies[control.control_id]
        try:
            _run(validate(policy, args, report))
        except UnknownValueError as error:
            # What the engine reports as "can't run policy during preview": undecided.
            self.evaluation.undecided.append(Undecided(control.control_id, layer, error.message))

    def layer(self, run: LayerRun) -> None:
        layer = run.layer.name
        customs = run.aws_resources
        # Built once per layer and shared by every control: the checks only read them.
        per_resource = [(resource, resource_args(resource)) for resource in customs]
        stack_args = StackValidationArgs(
            policy_resources(run.resources), {"scope": Scope.STACK.value}
        )
        for control in CONTROLS:
            if any(control.applies_to(r.type) for r in customs):
                self.evaluation.applicable.setdefault(control.control_id, set()).add(layer)
            if control.kind == "resource":
                self._scope = "resource"
                for resource, args in per_resource:
                    report = self._reporter(control, layer, resource)
                    self._validate(control, layer, args, report)
            else:
                self._scope = "stack"
                self._validate(control, layer, stack_args, self._reporter(control, layer, None))

    def product(self, runs: Mapping[str, LayerRun]) -> None:
        """The cross-layer controls once more, over the union of every layer's resources."""
        union = policy_resources([r for run in runs.values() for r in run.resources])
        product_args = StackValidationArgs(union, {"scope": Scope.PRODUCT.value})
        self._scope = "product"
        for control in CONTROLS:
            if control.cross_layer:
                report = self._reporter(control, "product", None)
                self._validate(control, "product", product_args, report)


def evaluate(
    runs: Mapping[str, LayerRun],
    suppressions: Suppressions | None = None,
    *,
    product_scope: bool = True,
) -> Evaluation:
    """Run every policy of the pack on the synthesized layers.

    With `product_scope=False` only what the engine runs (per resource, per stack) is run.
    """
    evaluator = _Evaluator(suppressions if suppressions is not None else load_suppressions())
    for run in runs.values():
        evaluator.layer(run)
    if product_scope:
        evaluator.product(runs)
    return evaluator.evaluation
