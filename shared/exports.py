"""The one way a layer exports its outputs: exactly the keys the manifest promises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from shared.manifest import Layer


class ContractError(pulumi.RunError):
    """A layer's exports differ from what the manifest promises."""


def export_outputs(layer: Layer, outputs: Mapping[str, Any]) -> None:
    """Export `outputs`, refusing any key missing from, or not in, the layer's promise."""
    promised = set(layer.outputs)
    given = set(outputs)
    missing, extra = sorted(promised - given), sorted(given - promised)
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing promised keys {missing}")
        if extra:
            problems.append(f"keys the manifest does not declare {extra}")
        raise ContractError(
            f"layer {layer.name!r} exports do not match shared/manifest.py: "
            + "; ".join(problems)
            + ". Change the program or the manifest so they agree."
        )
    for key in layer.outputs:
        value = outputs[key]
        pulumi.export(key, pulumi.Output.secret(value) if layer.outputs[key].secret else value)
