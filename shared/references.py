"""The one way a layer reads an upstream layer's outputs.

`UpstreamOutputs(layer)` builds the fully qualified stack name `<org>/<project>/<stack>` for
each upstream layer (the organization is this stack's own unless configured otherwise), opens one
StackReference per upstream, and hands out only the keys the manifest says this layer consumes.
Reading anything else is refused with a message naming the key and the manifest entry to add, so
the manifest stays the complete record of who reads what.
"""

from __future__ import annotations

import pulumi

from shared.manifest import MANIFEST, Layer, Manifest

# What the file backend (`pulumi login --local` / file://) uses as the organization part of
# a fully qualified stack name.
FILE_BACKEND_ORG = "organization"


class UndeclaredReferenceError(pulumi.RunError):
    """A layer read a key that the manifest does not list among its consumed keys."""


class OrganizationError(pulumi.RunError):
    """The configured organization of the upstream stacks cannot be right for this backend."""


def upstream_organization(configured: str | None, project: str) -> str:
    """The organization the upstream stacks live in: `configured`, else this stack's own.

    File and S3 backends name every stack `organization/<project>/<stack>`; Pulumi Cloud names
    it after the real organization, which the engine hands the program. Raised before any
    resource is declared when the two cannot both be right, so a misconfigured layer stops
    with this message instead of failing on every StackReference.
    """
    own = pulumi.get_organization() or FILE_BACKEND_ORG
    if configured is None:
        return own
    if configured == FILE_BACKEND_ORG and own != FILE_BACKEND_ORG:
        raise OrganizationError(
            f"{project}:org is {FILE_BACKEND_ORG!r}, the name only file and S3 backends use, but "
            f"this stack lives in the Pulumi Cloud organization {own!r}, where no stack is named "
            f"{FILE_BACKEND_ORG}/...: remove the setting (`pulumi config rm org`) to read the "
            f"upstream layers from {own!r}, or set the organization that holds them."
        )
    return configured


def stack_name(org: str, layer: Layer, stack: str) -> str:
    return f"{org}/{layer.project}/{stack}"


class UpstreamOutputs:
    """Typed access to the values this layer consumes from the layers it depends on."""

    def __init__(
        self,
        layer: Layer,
        *,
        org: str | None = None,
        stack: str | None = None,
        manifest: Manifest = MANIFEST,
    ) -> None:
        self.layer = layer
        self.org = upstream_organization(org, layer.project)
        self.stack = stack or pulumi.get_stack()
        self.manifest = manifest
        self._references: dict[str, pulumi.StackReference] = {}

    def _producer(self, key: str) -> str:
        for upstream, keys in self.layer.consumes.items():
            if key in keys:
                return upstream
        declared = ", ".join(f"{upstream}.{k}" for upstream, k in self.layer.consumed_keys())
        raise UndeclaredReferenceError(
            f"layer {self.layer.name!r} reads {key!r}, which shared/manifest.py does not list "
            f"among the keys it consumes (it consumes: {declared or 'nothing'}). Add the key to "
            f"the {self.layer.name!r} entry's `consumes` under the layer that promises it."
        )

    def reference(self, upstream: str) -> pulumi.StackReference:
        if upstream not in self._references:
            upstream_layer = self.manifest.layer(upstream)
            name = stack_name(self.org, upstream_layer, self.stack)
            self._references[upstream] = pulumi.StackReference(f"{upstream}-stack", stack_name=name)
        return self._references[upstream]

    def require(self, key: str) -> pulumi.Output[str]:
        """The upstream value; secret upstream values stay secret."""
        upstream = self._producer(key)
        value: pulumi.Output[str] = self.reference(upstream).require_output(key)
        if self.manifest.layer(upstream).outputs[key].secret:
            return pulumi.Output.secret(value)
        return value
