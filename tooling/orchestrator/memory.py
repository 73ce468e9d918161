"""An `Engine` that keeps every stack in memory: what the orchestrator's tests run against.

It behaves like the CLI where the orchestrator can tell the difference: stacks exist only
after an update (a preview of an absent stack creates nothing), an update records a history
entry with its message, outputs follow what the layer's "program" exports, every update and
preview of a consumer counts one `read` per upstream stack it references (as the engine's
change summary does), and each update records the upstream outputs it read (as a
StackReference's state would). It records every call and can be told to fail a
layer's operation, permanently or transiently, and to export a different set of outputs.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.manifest import MANIFEST, Layer, Manifest
from tooling.orchestrator.engine import (
    ConsumedValue,
    DriftedResource,
    DriftResult,
    EngineError,
    OutputSink,
    OutputValue,
    PreviewResult,
    UpdateRecord,
    UpdateResult,
    commit_in_message,
)

# A fixed start so histories are reproducible; every operation advances the clock a minute.
EPOCH = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
# The type of every simulated resource (one per exported output).
RESOURCE_TYPE = "memory:index:Resource"


@dataclass(frozen=True)
class Call:
    """One engine call as the tests inspect it."""

    operation: str
    layer: str
    message: str = ""
    program_dir: Path | None = None


@dataclass
class _Stack:
    outputs: dict[str, OutputValue] = field(default_factory=dict)
    history: list[UpdateRecord] = field(default_factory=list)  # newest first
    consumed: dict[str, dict[str, ConsumedValue]] = field(default_factory=dict)
    resources: int = 0


class InMemoryEngine:
    """Deterministic stand-in for AutomationEngine."""

    def __init__(self, manifest: Manifest = MANIFEST, *, stack: str = "local") -> None:
        self.manifest = manifest
        self.stack = stack
        self.calls: list[Call] = []
        self.stacks: dict[str, _Stack] = {}
        # layer -> errors to raise on the next operations of that layer, in order.
        self.failures: dict[str, list[EngineError]] = {}
        # layer -> the outputs its program exports (default: every promised key).
        self.programs: dict[str, dict[str, OutputValue]] = {}
        # layer -> the __main__.py text an update ran from program_dir (a rollback worktree).
        self.program_snapshots: dict[str, str] = {}
        # layer -> its stack's configuration (what `pulumi config set` would have stored).
        self.config: dict[str, dict[str, object]] = {}
        # Seconds every update takes, slept for real (the orchestration benchmark's engine).
        self.update_seconds = 0.0
        # Seconds every preview-only refresh takes, slept for real (to watch concurrency).
        self.refresh_seconds = 0.0
        # layer -> output key -> how its resource differs from the cloud (out-of-band changes).
        self.drift: dict[str, dict[str, DriftedResource]] = {}
        # Refreshes running now, and the most that ever ran at once (refreshes run in threads).
        self.refreshing = 0
        self.most_refreshing = 0
        self._refresh_lock = threading.Lock()
        # The repository the programs come from, as fingerprints see it (set_program edits it).
        self.sources = SimulatedSources()
        self._clock = EPOCH

    def fail(self, layer: str, detail: str, *, times: int = 1, operation: str = "update") -> None:
        """Make the next `times` operations of `layer` fail with `detail` as the CLI's text."""
        queue = self.failures.setdefault(layer, [])
        queue.extend(EngineError(layer, operation, detail) for _ in range(times))

    def set_program(
        self, layer: str, outputs: Mapping[str, object], *, secret: tuple[str, ...] = ()
    ) -> None:
        """Make the layer's program export `outputs` from now on: its code changed."""
        self.sources.edit(layer)
        self.programs[layer] = {
            key: OutputValue(value, key in secret) for key, value in outputs.items()
        }

    def set_config(self, layer: str, key: str, value: object) -> None:
        """What `pulumi config set key value` does to the layer's stack."""
        self.config.setdefault(layer, {})[key] = value

    def init_stack(self, layer: str) -> None:
        """A stack its owner created by hand (`pulumi stack init`), with nothing deployed."""
        self.stacks.setdefault(layer, _Stack())

    def deploy_directly(self, layer: str, *, commit: str, message: str = "") -> None:
        """An update someone ran with `pulumi up` outside the orchestrator."""
        self.up(layer, message=message or f"manual up commit={commit}", on_output=lambda _: None)

    def resource_urn(self, layer: str, key: str) -> str:
        """The URN of the simulated resource behind the layer's output `key`."""
        project = self.manifest.layer(layer).project
        return f"urn:pulumi:{self.stack}::{project}::{RESOURCE_TYPE}::{key}"

    def change_out_of_band(self, layer: str, key: str, *properties: str) -> None:
        """Someone changed `properties` of the resource behind `key` in the cloud."""
        self._drift(layer, key, "update", properties)

    def delete_out_of_band(self, layer: str, key: str) -> None:
        """Someone deleted the resource behind `key` in the cloud."""
        self._drift(layer, key, "delete", ())

    def _drift(self, layer: str, key: str, change: str, properties: tuple[str, ...]) -> None:
        stack = self.stacks.get(layer)
        if stack is None or key not in stack.outputs:
            raise KeyError(f"{layer} has no deployed resource behind {key!r}")
        self.drift.setdefault(layer, {})[key] = DriftedResource(
            self.resource_urn(layer, key), RESOURCE_TYPE, change, properties
        )

    def default_outputs(self, layer: str) -> dict[str, OutputValue]:
        spec = self.manifest.layer(layer)
        return {
            key: OutputValue(f"{self.stack}:{layer}:{key}", output.secret)
            for key, output in spec.outputs.items()
        }

    def _exported(self, layer: str) -> dict[str, OutputValue]:
        """What the layer's program exports: set_program's outputs, else every promised key."""
        return self.programs.get(layer) or self.default_outputs(layer)

    def _tick(self) -> datetime:
        self._clock += timedelta(minutes=1)
        return self._clock

    def _maybe_fail(self, layer: str, operation: str) -> None:
        queue = self.failures.get(layer)
        if queue and queue[0].operation == operation:
            raise queue.pop(0)

    def _record(
        self, layer: str, kind: str, result: str, message: str, changes: dict[str, int]
    ) -> None:
        self.stacks.setdefault(layer, _Stack()).history.insert(
            0,
            UpdateRecord(
                kind=kind,
                result=result,
                started_at=self._tick(),
                message=message,
                commit=commit_in_message(message),
                resource_changes=changes,
            ),
        )

    def _changes(
        self, layer: str, stack: _Stack, exported: Mapping[str, OutputValue]
    ) -> dict[str, int]:
        """One resource per output: created, updated, deleted or the same as deployed; and
        one read per upstream stack the layer references."""
        reads = len(self.manifest.layer(layer).consumes)
        if not stack.resources:
            counts = {"create": len(exported), "read": reads}
            return {op: count for op, count in counts.items() if count}
        before = stack.outputs
        counts = {
            "same": sum(1 for key, value in exported.items() if before.get(key) == value),
            "create": sum(1 for key in exported if key not in before),
            "update": sum(
                1 for key, value in exported.items() if key in before and before[key] != value
            ),
            "delete": sum(1 for key in before if key not in exported),
            "read": reads,
        }
        return {op: count for op, count in counts.items() if count}

    def stack_exists(self, layer: str) -> bool:
        self.calls.append(Call("stack_exists", layer))
        return layer in self.stacks

    def outputs(self, layer: str) -> dict[str, OutputValue]:
        self.calls.append(Call("outputs", layer))
        stack = self.stacks.get(layer)
        return dict(stack.outputs) if stack else {}

    def up(
        self,
        layer: str,
        *,
        message: str,
        on_output: OutputSink,
        program_dir: Path | None = None,
    ) -> UpdateResult:
        self.calls.append(Call("up", layer, message, program_dir))
        if program_dir is not None:
            # Prove which program ran: keep the files the update would have executed.
            self.program_snapshots[layer] = (program_dir / "__main__.py").read_text(
                encoding="utf-8"
            )
        on_output(f"Updating ({self.stack})")
        if self.update_seconds:
            time.sleep(self.update_seconds)
        try:
            self._maybe_fail(layer, "update")
        except EngineError:
            self._record(layer, "update", "failed", message, {})
            on_output("error: update failed")
            raise
        stack = self.stacks.setdefault(layer, _Stack())
        exported = self._exported(layer)
        changes = self._changes(layer, stack, exported)
        count = len(exported)
        stack.resources = count
        stack.outputs = dict(exported)
        # Drift outlives an update, except on the resources the update removed.
        if layer in self.drift:
            self.drift[layer] = {
                key: drifted for key, drifted in self.drift[layer].items() if key in exported
            }
        # What a StackReference records: every output of each upstream, as it is right now.
        stack.consumed = {
            upstream: {
                key: ConsumedValue(value.value)
                for key, value in (
                    self.stacks[upstream].outputs if upstream in self.stacks else {}
                ).items()
            }
            for upstream in self.manifest.layer(layer).consumes
        }
        self._record(layer, "update", "succeeded", message, changes)
        on_output(f"Resources: {changes}")
        return UpdateResult(resource_changes=changes, outputs=dict(stack.outputs))

    def preview(self, layer: str, *, on_output: OutputSink) -> PreviewResult:
        self.calls.append(Call("preview", layer))
        self._maybe_fail(layer, "preview")
        stack = self.stacks.get(layer)
        if stack is None:
            # `pulumi preview` needs a stack; a read-only preview does not create one.
            return PreviewResult(resource_changes={}, stack_exists=False)
        changes = self._changes(layer, stack, self._exported(layer))
        on_output(f"Previewing update ({self.stack})")
        return PreviewResult(resource_changes=changes)

    def destroy(self, layer: str, *, message: str, on_output: OutputSink) -> UpdateResult:
        self.calls.append(Call("destroy", layer, message))
        stack = self.stacks.get(layer)
        if stack is None:
            return UpdateResult(resource_changes={}, outputs={})
        try:
            self._maybe_fail(layer, "destroy")
        except EngineError:
            self._record(layer, "destroy", "failed", message, {})
            raise
        changes = {"delete": stack.resources} if stack.resources else {}
        stack.resources = 0
        self.drift.pop(layer, None)
        stack.outputs = {}
        stack.consumed = {}
        self._record(layer, "destroy", "succeeded", message, changes)
        on_output(f"Destroying ({self.stack})")
        return UpdateResult(resource_changes=changes, outputs={})

    def refresh_preview(self, layer: str, *, on_output: OutputSink) -> DriftResult:
        self.calls.append(Call("refresh_preview", layer))
        with self._refresh_lock:
            self.refreshing += 1
            self.most_refreshing = max(self.most_refreshing, self.refreshing)
        try:
            if self.refresh_seconds:
                time.sleep(self.refresh_seconds)
            self._maybe_fail(layer, "refresh")
            stack = self.stacks.get(layer)
            if stack is None:
                # `pulumi refresh` needs a stack; a preview does not create one.
                return DriftResult(resource_changes={}, stack_exists=False)
            on_output(f"Previewing refresh ({self.stack})")
            drifted = tuple(self.drift.get(layer, {}).values())
            counts = {
                "same": stack.resources - len(drifted),
                "update": sum(1 for item in drifted if item.change == "update"),
                "delete": sum(1 for item in drifted if item.change == "delete"),
            }
            return DriftResult(
                resource_changes={op: count for op, count in counts.items() if count},
                drifted=drifted,
            )
        finally:
            with self._refresh_lock:
                self.refreshing -= 1

    def history(self, layer: str) -> list[UpdateRecord]:
        self.calls.append(Call("history", layer))
        stack = self.stacks.get(layer)
        return list(stack.history) if stack else []

    def configuration(self, layer: str) -> dict[str, object]:
        self.calls.append(Call("configuration", layer))
        return dict(self.config.get(layer, {}))

    def consumed_values(self, layer: str) -> dict[str, dict[str, ConsumedValue]]:
        self.calls.append(Call("consumed_values", layer))
        stack = self.stacks.get(layer)
        return (
            {upstream: dict(values) for upstream, values in stack.consumed.items()} if stack else {}
        )

    def operations(self, *kinds: str) -> list[tuple[str, str]]:
        """(operation, layer) of the recorded calls of the given kinds, in call order."""
        return [(call.operation, call.layer) for call in self.calls if call.operation in kinds]


class SimulatedSources:
    """`Sources` (fingerprint.py) for the in-memory engine: each layer's code and archives
    and the pins are a version number that `edit` and `bump_pins` advance, as editing the
    layer's files, rebuilding its archives or bumping constraints.txt would."""

    def __init__(self) -> None:
        self.code_versions: dict[str, int] = {}
        self.archive_versions: dict[str, int] = {}
        self.pins_version = 0

    def edit(self, layer: str, *, archives: bool = False) -> None:
        self.code_versions[layer] = self.code_versions.get(layer, 0) + 1
        if archives:
            self.archive_versions[layer] = self.archive_versions.get(layer, 0) + 1

    def bump_pins(self) -> None:
        self.pins_version += 1

    def code(self, layer: Layer) -> str:
        return _digest(f"code {layer.name} {self.code_versions.get(layer.name, 0)}")

    def archives(self, layer: Layer) -> str:
        return _digest(f"archives {layer.name} {self.archive_versions.get(layer.name, 0)}")

    def pins(self) -> str:
        return _digest(f"pins {self.pins_version}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
