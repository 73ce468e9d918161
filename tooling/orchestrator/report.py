"""What the orchestrator tells: the run report (one row per layer, saved as JSON under build/),
the status of each layer and the outputs table. Data only: render.py draws it.

The JSON is what `deploy_all --resume` reads back (the failed and skipped layers of the last
run) and what CI keeps as an artifact. Its schema is `RunReport.to_json()`: the operation,
stack, target, commit, start and end times, exit code and one object per layer; a drift row
lists its drifted resources (`drift`: urn, type, change, properties).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from tooling.orchestrator.engine import DriftedResource, UpdateRecord

REPORT_FILES = {
    "deploy_all": "deploy-report.json",
    "deploy": "deploy-layer-report.json",
    "preview_all": "preview-report.json",
    "destroy_all": "destroy-report.json",
    "destroy": "destroy-layer-report.json",
    "rollback": "rollback-report.json",
    "drift": "drift-report.json",
}


class Status(StrEnum):
    """What happened to one layer in a run."""

    SUCCEEDED = "succeeded"  # deployed with resource changes
    UNCHANGED = "unchanged"  # deployed, nothing to change
    FAILED = "failed"  # the engine failed, or the outputs broke the contract
    SKIPPED = "skipped"  # not run because an earlier layer failed
    REFUSED = "refused"  # a guard stopped it before the engine ran
    CHANGES = "changes"  # preview: the update would change resources
    WAITING = "waiting"  # preview: an upstream layer was never deployed
    NOT_DEPLOYED = "not deployed"  # preview: the stack does not exist; an update creates it
    DESTROYED = "destroyed"  # destroy removed its resources
    ABSENT = "absent"  # destroy, drift: nothing deployed
    IN_SYNC = "in sync"  # drift: every resource is as the cloud has it
    DRIFTED = "drifted"  # drift: some resource differs from the cloud, or is gone


# Statuses of a layer whose engine operation ran (the others have no duration worth showing).
RAN = frozenset(
    {
        Status.SUCCEEDED,
        Status.UNCHANGED,
        Status.FAILED,
        Status.CHANGES,
        Status.DESTROYED,
        Status.IN_SYNC,
        Status.DRIFTED,
    }
)

# Statuses that stop everything downstream of the layer in a run.
BLOCKING = frozenset({Status.FAILED, Status.REFUSED, Status.SKIPPED})


@dataclass
class LayerResult:
    """One layer's row."""

    layer: str
    status: Status
    duration_s: float = 0.0
    resource_changes: dict[str, int] = field(default_factory=dict)
    note: str = ""
    # The transient error that made the orchestrator retry the update once.
    retried: str | None = None
    # Output keys whose value appeared, disappeared or changed with this run.
    outputs_changed: list[str] = field(default_factory=list)
    # The commit whose program ran (a rollback's old revision, else the checkout's HEAD).
    commit: str | None = None
    # True when the row is copied from the previous report by --resume (the layer did not run).
    carried_over: bool = False
    # Why a deploy ran the layer or left it alone (fingerprint.py); empty for other operations.
    reason: str = ""
    # Whether the engine ran for this layer (False: skipped by its fingerprint, or refused).
    ran: bool = True
    # The fingerprint recorded with the update (or matched by the skip), in full.
    fingerprint: str | None = None
    # drift: the resources that differ from the cloud (empty for other operations).
    drift: list[DriftedResource] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["duration_s"] = round(self.duration_s, 2)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerResult:
        return cls(
            layer=str(data["layer"]),
            status=Status(data["status"]),
            duration_s=float(data.get("duration_s", 0.0)),
            resource_changes={
                str(k): int(v) for k, v in (data.get("resource_changes") or {}).items()
            },
            note=str(data.get("note", "")),
            retried=data.get("retried"),
            outputs_changed=[str(key) for key in data.get("outputs_changed") or []],
            commit=data.get("commit"),
            carried_over=bool(data.get("carried_over", False)),
            reason=str(data.get("reason", "")),
            ran=bool(data.get("ran", True)),
            fingerprint=data.get("fingerprint"),
            drift=[
                DriftedResource(
                    urn=str(item["urn"]),
                    type=str(item["type"]),
                    change=str(item["change"]),
                    properties=tuple(str(name) for name in item.get("properties") or ()),
                )
                for item in data.get("drift") or []
            ],
        )


@dataclass
class RunReport:
    """Everything one orchestrator command did."""

    operation: str
    stack: str
    target: str
    commit: str | None
    started_at: str
    finished_at: str = ""
    exit_code: int = 0
    layers: list[LayerResult] = field(default_factory=list)

    def result(self, layer: str) -> LayerResult:
        for row in self.layers:
            if row.layer == layer:
                return row
        raise KeyError(layer)

    def statuses(self) -> dict[str, str]:
        return {row.layer: row.status.value for row in self.layers}

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "stack": self.stack,
            "target": self.target,
            "commit": self.commit,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "layers": [row.to_json() for row in self.layers],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunReport:
        return cls(
            operation=str(data["operation"]),
            stack=str(data["stack"]),
            target=str(data["target"]),
            commit=data.get("commit"),
            started_at=str(data.get("started_at", "")),
            finished_at=str(data.get("finished_at", "")),
            exit_code=int(data.get("exit_code", 0)),
            layers=[LayerResult.from_json(row) for row in data.get("layers") or []],
        )

    def save(self, build_dir: Path) -> Path:
        build_dir.mkdir(parents=True, exist_ok=True)
        path = build_dir / REPORT_FILES[self.operation]
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path


def load_report(build_dir: Path, operation: str) -> RunReport | None:
    """The last saved report of `operation`, or None when there is none."""
    path = build_dir / REPORT_FILES[operation]
    if not path.exists():
        return None
    return RunReport.from_json(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class StaleKey:
    """A key a consumer read from an upstream whose value has changed (or is unknown) since."""

    consumer: str
    upstream: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.upstream}.{self.key} {self.reason}"


@dataclass
class LayerStatus:
    layer: str
    deployed: bool
    last: UpdateRecord | None  # the newest entry of its history, whoever ran it
    stale: list[StaleKey] = field(default_factory=list)


@dataclass(frozen=True)
class StatusView:
    """`status`: per layer, its last update and the consumed keys that went stale."""

    stack: str
    target: str
    layers: list[LayerStatus]

    @property
    def stale_layers(self) -> list[str]:
        return [row.layer for row in self.layers if row.stale]


@dataclass(frozen=True)
class OutputRow:
    """One output of one layer; `shown` is None when a promised key is missing."""

    layer: str
    key: str
    shown: str | None
    readers: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutputsView:
    """`outputs`: every layer's outputs (secrets masked); a layer without rows is not deployed."""

    stack: str
    target: str
    layers: tuple[str, ...]
    rows: list[OutputRow]


# The combined report of a run over several environments (environments.py), in the directory
# that holds each environment's own build directory.
COMBINED_REPORT_FILES = {
    "deploy_all": "combined-deploy-report.json",
    "preview_all": "combined-preview-report.json",
}


@dataclass
class EnvironmentResult:
    """One environment (a stack name shared by every layer) of a run over several."""

    stack: str
    exit_code: int
    duration_s: float = 0.0
    # Its own run report; None when it stopped before writing one (refused, could not start).
    report: RunReport | None = None
    report_path: str | None = None
    # Why it stopped outside its report (the refusal or the error), else empty.
    problem: str = ""

    @property
    def engine_ran(self) -> list[str]:
        """The layers whose engine operation ran in this run (not skipped, refused or carried)."""
        if self.report is None:
            return []
        return [
            row.layer
            for row in self.report.layers
            if row.ran and not row.carried_over and row.status in RAN
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 2),
            "problem": self.problem,
            "engine_ran": self.engine_ran,
            "report_path": self.report_path,
            "report": self.report.to_json() if self.report is not None else None,
        }


@dataclass
class CombinedReport:
    """Everything a run over several environments did: each environment's exit code and its
    own report, and the exit code of the whole run (the worst, see environments.py)."""

    operation: str
    target: str
    commit: str | None
    concurrency: int
    # The layer columns of the combined table, in manifest order.
    layers: tuple[str, ...]
    started_at: str
    finished_at: str = ""
    duration_s: float = 0.0
    exit_code: int = 0
    environments: list[EnvironmentResult] = field(default_factory=list)

    def environment(self, stack: str) -> EnvironmentResult:
        for result in self.environments:
            if result.stack == stack:
                return result
        raise KeyError(stack)

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "target": self.target,
            "commit": self.commit,
            "concurrency": self.concurrency,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": round(self.duration_s, 2),
            "exit_code": self.exit_code,
            "stacks": [result.stack for result in self.environments],
            "environments": [result.to_json() for result in self.environments],
        }

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / COMBINED_REPORT_FILES[self.operation]
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path
