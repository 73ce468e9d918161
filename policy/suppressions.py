"""The controls, exception classes and resources the product does not hold to a control.

Every entry of policy/suppressions.yaml names a control and gives its reason; it may narrow
the suppression to one documented exception class that the control's check reports (for
example `log-delivery-target`) or to named resources of a layer. The pack and synth read the
same file, so what synth reports as suppressed is exactly what the engine lets through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SUPPRESSIONS_FILE = Path(__file__).resolve().parent / "suppressions.yaml"


class SuppressionsError(ValueError):
    """suppressions.yaml is malformed: an entry without a control or without a reason."""


@dataclass(frozen=True)
class ResourceRef:
    layer: str
    name: str


@dataclass(frozen=True)
class Suppression:
    control_id: str
    reason: str
    exception: str | None = None
    resources: tuple[ResourceRef, ...] = ()

    @property
    def whole_control(self) -> bool:
        return self.exception is None and not self.resources

    def covers(self, layer: str, resource: str, exception: str | None) -> bool:
        if self.exception is not None and self.exception != exception:
            return False
        if self.resources:
            return ResourceRef(layer, resource) in self.resources
        return True

    @property
    def scope(self) -> str:
        """Readable: what the suppression applies to."""
        if self.exception is not None:
            return f"exception {self.exception}"
        if self.resources:
            return ", ".join(f"{ref.layer}/{ref.name}" for ref in self.resources)
        return "whole control"


@dataclass(frozen=True)
class Suppressions:
    entries: tuple[Suppression, ...]

    def __iter__(self) -> Iterator[Suppression]:
        return iter(self.entries)

    def for_control(self, control_id: str) -> list[Suppression]:
        return [entry for entry in self.entries if entry.control_id == control_id]

    def match(
        self, control_id: str, *, layer: str, resource: str, exception: str | None
    ) -> Suppression | None:
        for entry in self.for_control(control_id):
            if entry.covers(layer, resource, exception):
                return entry
        return None


def _entry(raw: Any, index: int, source: Path) -> Suppression:
    where = f"{source.name} entry {index + 1}"
    if not isinstance(raw, dict):
        raise SuppressionsError(f"{where} is not a mapping")
    control = raw.get("control")
    reason = raw.get("reason")
    if not isinstance(control, str) or not control.strip():
        raise SuppressionsError(f"{where} names no control")
    if not isinstance(reason, str) or len(reason.split()) < 5:
        raise SuppressionsError(f"{where} ({control}) gives no reason: write why in a sentence")
    unknown = set(raw) - {"control", "reason", "exception", "resources"}
    if unknown:
        raise SuppressionsError(f"{where} ({control}) has unknown keys: {sorted(unknown)}")
    exception = raw.get("exception")
    if exception is not None and not isinstance(exception, str):
        raise SuppressionsError(f"{where} ({control}): exception must be a string")
    resources: list[ResourceRef] = []
    for ref in raw.get("resources") or []:
        if not isinstance(ref, dict) or not {"layer", "name"} <= set(ref):
            raise SuppressionsError(f"{where} ({control}): each resource needs layer and name")
        resources.append(ResourceRef(str(ref["layer"]), str(ref["name"])))
    return Suppression(control.strip(), " ".join(reason.split()), exception, tuple(resources))


def load_suppressions(path: Path = SUPPRESSIONS_FILE) -> Suppressions:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw_entries = document.get("suppressions") if isinstance(document, dict) else None
    if not isinstance(raw_entries, list):
        raise SuppressionsError(f"{path.name} must hold a list under `suppressions:`")
    return Suppressions(tuple(_entry(raw, i, path) for i, raw in enumerate(raw_entries)))
