"""The layer graph and the keys passed between layers, as Mermaid and as Graphviz DOT.

Mermaid is the README's diagram (tooling/docs.py renders it from the manifest); DOT is the
same graph for `dot -Tsvg`: one node per layer, one edge per consumer labelled with its keys.
"""

from __future__ import annotations

from shared.manifest import MANIFEST, Manifest
from tooling.docs import layer_diagram

FORMATS = ("mermaid", "dot", "both")


def _quote(text: str) -> str:
    """A DOT string literal; line breaks become DOT's centred `\\n`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def layer_dot(manifest: Manifest = MANIFEST) -> str:
    """Graphviz digraph of the manifest, in deployment order left to right."""
    lines = ["digraph layers {", "    rankdir=LR;", '    node [shape=box, fontname="Helvetica"];']
    for layer in manifest.layers:
        label = _quote(f"{layer.name}\n{layer.description}")
        lines.append(f"    {layer.name} [label={label}];")
    for layer in manifest.layers:
        for upstream, keys in layer.consumes.items():
            label = _quote("\n".join(keys))
            lines.append(f"    {upstream} -> {layer.name} [label={label}];")
    lines.append("}")
    return "\n".join(lines)


def render_graph(fmt: str, manifest: Manifest = MANIFEST) -> str:
    if fmt == "mermaid":
        return layer_diagram(manifest)
    if fmt == "dot":
        return layer_dot(manifest)
    if fmt == "both":
        return f"{layer_diagram(manifest)}\n\n{layer_dot(manifest)}"
    raise ValueError(f"unknown format {fmt!r}; the formats are: {', '.join(FORMATS)}")
