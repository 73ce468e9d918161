"""The small interface the orchestrator needs from a Pulumi engine, and the values it returns.

Everything the orchestrator decides (order, fail-fast, guards, rollback revisions, stale
consumers) is computed from these calls, so a test substitutes `InMemoryEngine` and the real
`AutomationEngine` only translates them to `pulumi.automation`. Layers are addressed by their
manifest name; the engine knows the stack name, backend and work directories.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

# Receives one line of the engine's output; the orchestrator prefixes it with the layer.
OutputSink = Callable[[str], None]

# What Pulumi prints in place of a secret value.
SECRET_MASK = "[secret]"  # noqa: S105 (a display placeholder)

# The update message carries the git commit so rollback and status can find it again;
# `commit=<sha>` is the machine-readable part.
COMMIT_PATTERN = re.compile(r"\bcommit=([0-9a-f]{7,40})\b")

# Error text of the failures a real AWS account or backend produces transiently: AWS API
# throttling (the provider's own retries gave up), concurrent modification of the same
# resource by another process, and a stack locked by a concurrent update.
TRANSIENT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Throttling(Exception)?\b|ThrottledException"), "AWS API throttling"),
    (re.compile(r"Rate exceeded", re.IGNORECASE), "AWS API rate limit"),
    (re.compile(r"TooManyRequestsException"), "AWS API rate limit"),
    (re.compile(r"RequestLimitExceeded"), "AWS API rate limit"),
    (re.compile(r"ConcurrentModification(Exception)?"), "concurrent modification"),
    (re.compile(r"ConflictException"), "concurrent modification (conflict)"),
    (re.compile(r"OperationAbortedException"), "conflicting S3 operation in progress"),
    (
        re.compile(r"Another update is currently in progress|the stack is currently locked by"),
        "stack locked by a concurrent update",
    ),
)


# Step operations that change nothing: the engine's own test of whether a summary "has
# changes" ignores them (pulumi/pulumi pkg/engine/events/resource_changes.go, HasChanges). A
# StackReference is re-read on every update, so a consumer's summary always counts reads.
NO_CHANGE_OPERATIONS = frozenset({"same", "read", "discard", "read-replacement"})


def has_changes(changes: Mapping[str, int]) -> bool:
    """Whether an operation's resource changes change anything."""
    return any(count for op, count in changes.items() if op not in NO_CHANGE_OPERATIONS)


def transient_reason(text: str) -> str | None:
    """Why `text` (an engine error) looks transient, or None when it does not."""
    for pattern, reason in TRANSIENT_PATTERNS:
        match = pattern.search(text)
        if match:
            return f"{reason} ({match.group(0)})"
    return None


def commit_in_message(message: str) -> str | None:
    """The git commit the orchestrator wrote into an update message, if any."""
    match = COMMIT_PATTERN.search(message)
    return match.group(1) if match else None


class EngineError(Exception):
    """A layer's engine operation failed; `detail` is the short, relevant part of its output."""

    def __init__(
        self, layer: str, operation: str, detail: str, *, transient: str | None = None
    ) -> None:
        super().__init__(f"{operation} of {layer} failed: {detail}")
        self.layer = layer
        self.operation = operation
        self.detail = detail
        # Set when the failure matches TRANSIENT_PATTERNS: the reason a retry is worth it.
        self.transient = transient if transient is not None else transient_reason(detail)


@dataclass(frozen=True)
class OutputValue:
    """One stack output as the engine reports it."""

    value: object
    secret: bool = False

    def shown(self) -> str:
        """The value for a table or a report: secrets masked, everything else as text."""
        if self.secret:
            return SECRET_MASK
        return self.value if isinstance(self.value, str) else repr(self.value)


@dataclass(frozen=True)
class UpdateResult:
    """What an up or destroy did: resource operation counts and the stack's outputs after it."""

    resource_changes: Mapping[str, int]
    outputs: Mapping[str, OutputValue]


@dataclass(frozen=True)
class PreviewResult:
    """What an up would do: resource operation counts (`same` and reads included).

    `stack_exists` is False when the stack was never created: nothing was previewed, since a
    preview needs a stack and creating one is not read-only; an update would create it.
    """

    resource_changes: Mapping[str, int]
    stack_exists: bool = True


# What a drifted resource's refresh found (RefreshStep.ResultOp, pulumi/pulumi
# pkg/resource/deploy/step.go): its properties differ from the cloud's, or it is gone.
DRIFT_CHANGES = ("update", "delete")


@dataclass(frozen=True)
class DriftedResource:
    """A resource of a layer's state that differs from what its provider reads now.

    `change` is "update" (it exists, and some properties differ) or "delete" (the provider
    no longer finds it). `properties` are the top-level names of the properties that differ,
    as the engine reports them (empty for a deletion, or when the engine names none).
    """

    urn: str
    type: str
    change: str
    properties: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The resource's logical name: the last part of its URN."""
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class DriftResult:
    """What a preview-only refresh of a layer found; it wrote nothing.

    `stack_exists` is False when the layer has no stack: nothing was refreshed. Otherwise
    `resource_changes` counts what the refresh would record per resource (`same`, `update`,
    `delete`) and `drifted` lists the resources that differ from the cloud.
    """

    resource_changes: Mapping[str, int]
    drifted: tuple[DriftedResource, ...] = ()
    stack_exists: bool = True


@dataclass(frozen=True)
class UpdateRecord:
    """One entry of a stack's history (newest first), whoever ran it."""

    kind: str  # update, destroy, refresh, ...
    result: str  # succeeded, failed, in-progress
    started_at: datetime
    message: str
    commit: str | None
    resource_changes: Mapping[str, int] = field(default_factory=dict)

    @property
    def succeeded_update(self) -> bool:
        return self.kind == "update" and self.result == "succeeded"


@dataclass(frozen=True)
class ConsumedValue:
    """An upstream value as a consumer's last update saw it; `known` is False when the state
    holds it encrypted, so it cannot be compared."""

    value: object
    known: bool = True


class Engine(Protocol):
    """One stack per layer, all with the same stack name and backend."""

    def stack_exists(self, layer: str) -> bool:
        """Whether the layer's stack has been created in the backend."""
        ...

    def outputs(self, layer: str) -> dict[str, OutputValue]:
        """The stack's current outputs; empty when the stack is absent or destroyed."""
        ...

    def up(
        self,
        layer: str,
        *,
        message: str,
        on_output: OutputSink,
        program_dir: Path | None = None,
    ) -> UpdateResult:
        """Deploy the layer, from `program_dir` when given (a rollback worktree)."""
        ...

    def preview(self, layer: str, *, on_output: OutputSink) -> PreviewResult:
        """What `up` would change; creates and writes nothing (an absent stack stays absent)."""
        ...

    def destroy(self, layer: str, *, message: str, on_output: OutputSink) -> UpdateResult:
        """Delete every resource of the layer's stack (the stack and its history remain)."""
        ...

    def refresh_preview(self, layer: str, *, on_output: OutputSink) -> DriftResult:
        """Which resources of the layer's state differ from the cloud, as a preview-only
        refresh (`pulumi refresh --preview-only`) finds them: it runs no program, writes no
        state, adds no history entry and creates no stack (an absent stack stays absent)."""
        ...

    def history(self, layer: str) -> list[UpdateRecord]:
        """The stack's updates, newest first; empty when the stack is absent."""
        ...

    def consumed_values(self, layer: str) -> dict[str, dict[str, ConsumedValue]]:
        """upstream layer -> output key -> the value this layer's last update read."""
        ...

    def configuration(self, layer: str) -> dict[str, object]:
        """The configuration the layer's next update runs with, as stored: a secret value as
        its ciphertext (never decrypted). Part of the layer's fingerprint."""
        ...
