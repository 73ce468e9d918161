"""What a control is, what a check returns, and how a control becomes a pulumi-policy Policy.

A check is a plain function over the pulumi-policy argument bags, so the same code runs under
the engine and offline. It yields findings; `to_policy` turns each finding that no suppression
covers into a mandatory violation, and hands the suppressed ones to an observer (synth shows
them beside the verdicts; under the engine nobody listens).

Values unknown at preview: pulumi-policy wraps the props in a proxy that raises
`UnknownValueError` when a check reads a value the engine does not know yet. The checks let it
propagate; the SDK reports it as an advisory "can't run policy during preview" diagnostic, so
an unknown value leaves the control undecided, never failed. Synth has no unknown values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.suppressions import Suppression, Suppressions
from policy.urns import layer_of, name_of

FSBP = "AWS Foundational Security Best Practices"
SERVERLESS_LENS = "AWS Well-Architected Serverless Lens"
PRODUCT = "Product baseline"


class Scope(Enum):
    """What a stack policy sees: one layer's stack (the engine) or all five layers (synth)."""

    STACK = "stack"
    PRODUCT = "product"


# Stack policies read their scope from the policy config, so synth can ask for the whole
# product while the engine, which runs the pack once per stack, keeps the default.
SCOPE_CONFIG = PolicyConfigSchema(
    properties={
        "scope": {
            "type": "string",
            "enum": [Scope.STACK.value, Scope.PRODUCT.value],
            "default": Scope.STACK.value,
            "description": "stack: judge only pairs of resources present in this stack; "
            "product: the resources of every layer are present, judge everything",
        }
    }
)


@dataclass(frozen=True)
class Finding:
    """One resource that does not meet a control.

    `exception` names a documented exception class (for example `log-delivery-target`): the
    finding is suppressed only if suppressions.yaml lists that exception for the control.
    """

    urn: str
    message: str
    exception: str | None = None


ResourceCheck = Callable[[ResourceValidationArgs], Iterable[Finding]]
StackCheck = Callable[[StackValidationArgs, Scope], Iterable[Finding]]


@dataclass(frozen=True)
class Control:
    control_id: str
    policy_name: str
    title: str
    rationale: str
    framework: str = FSBP
    severity: Severity = Severity.HIGH
    resource_types: frozenset[str] = frozenset()
    resource_check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    # True when the control relates resources that different layers declare.
    cross_layer: bool = False
    # For stack checks: the resource types the control judges (reporting only).
    subjects: frozenset[str] = frozenset()
    # Narrower than "every type" when resource_types cannot say it (e.g. taggable types).
    applicable: Callable[[str], bool] | None = None
    tags: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> Literal["resource", "stack"]:
        return "resource" if self.resource_check is not None else "stack"

    @property
    def description(self) -> str:
        return f"{self.control_id} ({self.framework}): {self.title}. {self.rationale}"

    def applies_to(self, resource_type: str) -> bool:
        """Whether the control judges resources of this type (empty: every type)."""
        if self.applicable is not None:
            return self.applicable(resource_type)
        types = self.resource_types if self.kind == "resource" else self.subjects
        return not types or resource_type in types

    @property
    def evaluation_scope(self) -> str:
        """Where synth's verdict for this control comes from."""
        if self.kind == "resource":
            return "resource"
        return "product" if self.cross_layer else "stack"


@dataclass(frozen=True)
class SuppressedFinding:
    control: Control
    finding: Finding
    suppression: Suppression


SuppressionObserver = Callable[[SuppressedFinding], None]


def _ignore(_: SuppressedFinding) -> None:
    return None


def to_policy(
    control: Control,
    suppressions: Suppressions,
    on_suppressed: SuppressionObserver = _ignore,
) -> ResourceValidationPolicy | StackValidationPolicy:
    """The pulumi-policy Policy that enforces `control`, mandatory, honouring suppressions."""

    def emit(findings: Iterable[Finding], report: ReportViolation, *, with_urn: bool) -> None:
        for finding in findings:
            suppression = suppressions.match(
                control.control_id,
                layer=layer_of(finding.urn),
                resource=name_of(finding.urn),
                exception=finding.exception,
            )
            if suppression is not None:
                on_suppressed(SuppressedFinding(control, finding, suppression))
            else:
                report(finding.message, finding.urn if with_urn else None)

    framework = PolicyComplianceFramework(name=control.framework, reference=control.control_id)
    if control.resource_check is not None:
        check = control.resource_check

        def validate_resource(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if control.resource_types and args.resource_type not in control.resource_types:
                return
            emit(check(args), report, with_urn=False)

        return ResourceValidationPolicy(
            name=control.policy_name,
            description=control.description,
            validate=validate_resource,
            enforcement_level=EnforcementLevel.MANDATORY,
            severity=control.severity,
            framework=framework,
            tags=list(control.tags) or None,
        )
    if control.stack_check is None:
        raise TypeError(f"control {control.control_id} has neither a resource nor a stack check")
    stack_check = control.stack_check

    def validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
        scope = Scope(args.get_config().get("scope", Scope.STACK.value))
        emit(stack_check(args, scope), report, with_urn=True)

    return StackValidationPolicy(
        name=control.policy_name,
        description=control.description,
        validate=validate_stack,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=SCOPE_CONFIG,
        severity=control.severity,
        framework=framework,
        tags=list(control.tags) or None,
    )
