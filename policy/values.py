"""Reading resource properties as the engine passes them: camelCase keys, nested objects.

Under the engine the props are pulumi-policy proxies (Mappings and Sequences that raise
`UnknownValueError` on an unknown value); offline they are plain dicts and lists. These
helpers accept both and never read a value they do not need, so an unknown value elsewhere in
the resource does not make a check undecided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from policy.urns import layer_of


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """value[path[0]][path[1]]..., or `default` where a step is missing or not a container."""
    current = value
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, Sequence) or isinstance(current, str):
                return default
            if not -len(current) <= step < len(current):
                return default
            current = current[step]
        else:
            if not isinstance(current, Mapping) or step not in current:
                return default
            current = current[step]
        if current is None:
            return default
    return current


def as_list(value: Any) -> list[Any]:
    """A JSON-ish value as a list: None -> [], a scalar or mapping -> [it]."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def truthy(value: Any) -> bool:
    """Booleans as the engine may pass them: True, or the strings 'true'/'True'."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def of_types(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    return [resource for resource in args.resources if resource.resource_type in types]


def identifiers(resource: PolicyResource, *keys: str) -> set[str]:
    """The values other resources use to point at `resource`: its id, ARN and names."""
    found: set[str] = set()
    for key in ("id", "arn", *keys):
        value = get(resource.props, key)
        if isinstance(value, str) and value:
            found.add(value)
    return found


def points_to(source: PolicyResource, prop: str, target: PolicyResource, *target_keys: str) -> bool:
    """Whether `source.props[prop]` refers to `target`.

    By property dependency where the engine recorded one (exact, and works in preview before
    the target's id is known), else by value: the id, ARN or one of `target_keys`.
    """
    dependencies = source.property_dependencies.get(prop) or []
    if any(dependency.urn == target.urn for dependency in dependencies):
        return True
    value = get(source.props, prop)
    if not isinstance(value, str) or not value:
        return False
    return value in identifiers(target, *target_keys)


def same_layer(first: PolicyResource, second: PolicyResource) -> bool:
    return layer_of(first.urn) == layer_of(second.urn)


def same_reference(
    first: PolicyResource, first_prop: str, second: PolicyResource, second_prop: str
) -> bool:
    """Whether two resources' properties point at the same thing (same dependency or value)."""
    first_deps = {d.urn for d in first.property_dependencies.get(first_prop) or []}
    second_deps = {d.urn for d in second.property_dependencies.get(second_prop) or []}
    if first_deps & second_deps:
        return True
    first_value = get(first.props, first_prop)
    return (
        isinstance(first_value, str)
        and bool(first_value)
        and (first_value == get(second.props, second_prop))
    )
