"""The one way a layer reads an upstream layer's outputs.

`UpstreamOutputs(layer)` builds the fully qualified stack name `<org>/<project>/<stack>` for
each upstream layer, opens one StackReference per upstream, and hands out only the keys the
manifest says this layer consumes. Reading anything else is refused with a message naming the
key and the manifest entry to add, so the manifest stays the complete record of who reads what.
"""

from __future__ import annotations

import pulumi

from shared.manifest import MANIFEST, Layer, Manifest

# What the file backend (`pulumi login --local` / file://) uses as the organization part of
# a fully qualified stack name.
FILE_BACKEND_ORG = "organization"


class UndeclaredReferenceError(pulumi.RunError):
    """A layer read a key that the manifest does not list among its consumed keys."""


def stack_name(org: str, layer: Layer, stack: str) -> str:
    return f"{org}/{layer.project}/{stack}"


class UpstreamOutputs:
    """Typed access to the values this layer consumes from the layers it depends on."""

    def __init__(
        self,
        layer: Layer,
        *,
        org: str = FILE_BACKEND_ORG,
        stack: str | None = None,
        manifest: Manifest = MANIFEST,
    ) -> None:
        self.layer = layer
        self.org = org
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
