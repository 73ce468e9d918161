"""What a deploy run will consider, decided before anything runs: the plan a renderer draws.

A plan lists every layer of the manifest in order with its intent and the reason for it:
- `deploy`: the layer is selected; it runs unless its fingerprint equals the one recorded
  with its latest successful update (fingerprint.py), or always with `--force`;
- `carried`: `--resume` keeps the previous run's row (the layer succeeded or was unchanged);
- `not selected`: outside `--layers`, or not reached by the change `--affected` compares.

Whether a selected layer then runs is decided when the run reaches it, since that depends on
what the layers before it did (the values it consumes are part of its fingerprint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.manifest import Manifest
from tooling.orchestrator.changes import touched_layers, touching
from tooling.orchestrator.report import BLOCKING, RunReport


class Intent(StrEnum):
    DEPLOY = "deploy"
    CARRIED = "carried"
    NOT_SELECTED = "not selected"


@dataclass(frozen=True)
class PlannedLayer:
    layer: str
    intent: Intent
    reason: str


@dataclass(frozen=True)
class Affected:
    """The files that differ between a git ref's merge base and the working tree."""

    ref: str
    changed: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    operation: str
    stack: str
    target: str
    layers: tuple[PlannedLayer, ...]
    force: bool = False

    def with_intent(self, intent: Intent) -> list[str]:
        return [row.layer for row in self.layers if row.intent is intent]

    @property
    def considered(self) -> list[str]:
        """The layers the run walks through, in order (selected or carried)."""
        return [row.layer for row in self.layers if row.intent is not Intent.NOT_SELECTED]


def _affected_reasons(manifest: Manifest, affected: Affected) -> dict[str, str]:
    """Selected layer -> why the change reaches it."""
    reached = touched_layers(affected.changed, manifest)
    direct = touching(affected.changed, manifest)
    reasons: dict[str, str] = {}
    for name in reached:
        files = direct.get(name)
        if files:
            more = f" and {len(files) - 1} more" if len(files) > 1 else ""
            reasons[name] = f"changed since {affected.ref}: {files[0]}{more}"
        else:
            upstream = [up for up in manifest.layer(name).depends_on if up in reached]
            reasons[name] = f"downstream of {', '.join(upstream)}, which the change reaches"
    return reasons


def plan_deploy(
    manifest: Manifest,
    *,
    stack: str,
    target: str,
    layers: Sequence[str] | None = None,
    affected: Affected | None = None,
    resume: RunReport | None = None,
    force: bool = False,
) -> Plan:
    """The plan of a deploy_all (or, with one layer in `layers`, a deploy)."""
    if layers:
        for name in layers:
            manifest.layer(name)  # an unknown name fails with the list of layers
    reasons: dict[str, str]
    if resume is not None:
        carried = {row.layer for row in resume.layers if row.status not in BLOCKING}
        last = {row.layer: row for row in resume.layers}
        reasons = {
            name: f"the previous run left it {last[name].status.value}"
            for name in last
            if name not in carried
        }
        rows = []
        for name in manifest.order:
            if name in carried:
                rows.append(PlannedLayer(name, Intent.CARRIED, "succeeded in the previous run"))
            elif name in reasons:
                rows.append(PlannedLayer(name, Intent.DEPLOY, reasons[name]))
            else:
                rows.append(PlannedLayer(name, Intent.NOT_SELECTED, "not part of the previous run"))
        return Plan("deploy_all", stack, target, tuple(rows), force)
    if affected is not None:
        reasons = _affected_reasons(manifest, affected)
        missing = f"not reached by the change since {affected.ref}"
    elif layers:
        reasons = dict.fromkeys(layers, "selected with --layers")
        missing = "not selected with --layers"
    else:
        reasons = dict.fromkeys(manifest.order, "every layer")
        missing = ""
    rows = [
        PlannedLayer(name, Intent.DEPLOY, reasons[name])
        if name in reasons
        else PlannedLayer(name, Intent.NOT_SELECTED, missing)
        for name in manifest.order
    ]
    return Plan("deploy_all", stack, target, tuple(rows), force)
