"""graph: the manifest as Mermaid (the README's diagram) and as DOT."""

from __future__ import annotations

import re

import pytest

from shared.manifest import MANIFEST
from tooling.docs import layer_diagram
from tooling.orchestrator.graph import layer_dot, render_graph


def test_dot_has_one_node_per_layer_and_one_labelled_edge_per_consumer() -> None:
    dot = layer_dot()
    assert dot.startswith("digraph layers {")
    assert dot.rstrip().endswith("}")
    for layer in MANIFEST.layers:
        assert re.search(rf"^    {layer.name} \[label=", dot, re.MULTILINE)
    edges = re.findall(r"^    (\w+) -> (\w+) \[label=\"([^\"]*)\"\];$", dot, re.MULTILINE)
    expected = [
        (upstream, layer.name, "\\n".join(keys))
        for layer in MANIFEST.layers
        for upstream, keys in layer.consumes.items()
    ]
    assert edges == expected


def test_mermaid_is_the_readme_diagram_and_both_prints_both() -> None:
    assert render_graph("mermaid") == layer_diagram()
    both = render_graph("both")
    assert both.startswith(layer_diagram())
    assert both.endswith(layer_dot())
    with pytest.raises(ValueError, match="unknown format"):
        render_graph("svg")
