"""The orchestrator decides and a renderer draws: any renderer receives the whole run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shared.manifest import REPO_ROOT
from tests.orchestration.conftest import console_text, make_console
from tooling.gitrepo import GitRepo
from tooling.orchestrator.engine import OutputSink
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import Orchestrator
from tooling.orchestrator.plan import Plan
from tooling.orchestrator.render import RunProgress, report_table
from tooling.orchestrator.report import (
    LayerResult,
    OutputsView,
    RunReport,
    Status,
    StatusView,
)
from tooling.orchestrator.targets import LocalTarget


@dataclass
class RecordingRenderer:
    """Keeps what it is handed, draws nothing."""

    events: list[str] = field(default_factory=list)
    reports: list[RunReport] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @contextmanager
    def progress(self, verb: str, total: int) -> Iterator[RunProgress]:
        self.events.append(f"begin {verb} {total}")
        yield self
        self.events.append(f"end {verb}")

    def start(self, index: int, layer: str) -> OutputSink:
        self.events.append(f"start {index} {layer}")
        return self.lines.append

    def finish(self, row: LayerResult) -> None:
        self.events.append(f"finish {row.layer} {row.status.value}")

    def plan(self, plan: Plan) -> None:
        self.events.append(f"plan {' '.join(plan.considered)}")

    def report(self, report: RunReport, path: Path | None) -> None:
        self.reports.append(report)

    def status(self, view: StatusView) -> None:
        self.events.append(f"status {len(view.layers)}")

    def outputs(self, view: OutputsView) -> None:
        self.events.append(f"outputs {len(view.rows)}")


def test_a_run_is_handed_to_the_renderer_layer_by_layer(tmp_path: Path) -> None:
    renderer = RecordingRenderer()
    orchestrator = Orchestrator(
        InMemoryEngine(),
        stack="local",
        target=LocalTarget(repo_root=REPO_ROOT),
        repo=GitRepo(REPO_ROOT),
        renderer=renderer,
        build_dir=tmp_path,
    )

    orchestrator.deploy_all(["security", "storage"])

    assert renderer.events == [
        "plan security storage",
        "begin deploy 2",
        "start 1 security",
        "finish security succeeded",
        "start 2 storage",
        "finish storage succeeded",
        "end deploy",
    ]
    [report] = renderer.reports
    assert report.statuses() == {"security": "succeeded", "storage": "succeeded"}
    assert renderer.lines.count("Updating (local)") == 2  # the engine's lines, to the sink


def test_the_rich_report_table_shows_each_row_and_its_reasons() -> None:
    report = RunReport("deploy_all", "dev", "aws", "0123456789abcdef", "2026-11-30T10:00:00")
    report.layers = [
        LayerResult("security", Status.SUCCEEDED, 61.0, {"update": 2, "same": 9}),
        LayerResult("storage", Status.FAILED, 3.2, note="boom", retried="AWS API throttling"),
        LayerResult("compute", Status.SKIPPED, note="dependency storage failed"),
    ]
    console = make_console()
    console.print(report_table(report))

    text = console_text(console)
    assert "deploy_all · stack dev · target aws · 0123456789ab" in text
    assert "1m01s" in text and "update 2" in text
    assert "boom; retried once after AWS API throttling" in text
    assert "dependency storage failed" in text
