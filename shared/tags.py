"""The tags every taggable resource carries, applied once per program.

A stack transformation adds them to each resource whose arguments accept `tags`, so no
resource declaration repeats them; a tag a resource sets itself (such as `Name`) is kept.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from shared.manifest import Layer
from shared.naming import APP_NAME

MANAGED_BY = "pulumi"
REQUIRED_TAG_KEYS = ("project", "layer", "environment", "owner", "managed-by")


def standard_tags(layer: Layer, environment: str) -> dict[str, str]:
    return {
        "project": APP_NAME,
        "layer": layer.name,
        "environment": environment,
        "owner": layer.owner,
        "managed-by": MANAGED_BY,
    }


def is_taggable(resource: pulumi.Resource) -> bool:
    """True for AWS resources whose Pulumi class exposes a `tags` property."""
    return isinstance(resource, pulumi.CustomResource) and hasattr(type(resource), "tags")


def _tagging_transformation(
    tags: Mapping[str, str],
) -> pulumi.ResourceTransformation:
    def add_tags(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        if not is_taggable(args.resource):
            return None
        own_tags = args.props.get("tags") or {}
        props = {
            **args.props,
            "tags": pulumi.Output.from_input(own_tags).apply(lambda own: {**tags, **(own or {})}),
        }
        return pulumi.ResourceTransformationResult(props=props, opts=args.opts)

    return add_tags


def apply_standard_tags(layer: Layer, environment: str) -> dict[str, str]:
    """Tag every taggable resource the program declares from now on; returns the tags."""
    tags = standard_tags(layer, environment)
    pulumi.runtime.register_stack_transformation(_tagging_transformation(tags))
    return tags
