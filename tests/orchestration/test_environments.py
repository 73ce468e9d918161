"""Several environments at once (`--stacks`): one engine and one orchestrator per stack, their
chains running concurrently under a cap, fail-fast per environment, a combined report and the
worst exit code. Concurrency is proven with barriers (a sequential run would break them),
never with timings."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from shared.manifest import MANIFEST, REPO_ROOT
from tests.orchestration.conftest import CliRun, SmallRepo, make_console
from tooling.gitrepo import GitRepo
from tooling.orchestrator.cli import build_parser
from tooling.orchestrator.engine import Engine, OutputSink, UpdateResult
from tooling.orchestrator.environments import EXIT_PRECEDENCE, run_environments, worst_exit_code
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import ExitCode, Orchestrator, Preflight
from tooling.orchestrator.render import Renderer
from tooling.orchestrator.report import CombinedReport
from tooling.orchestrator.targets import LocalTarget, RefusedError, Target

# Long enough never to trip on a slow machine; reached only when the code under test is wrong.
BARRIER_TIMEOUT_S = 30.0


class EnvironmentGate:
    """Shared by the engines of one test. An environment counts as running from its first
    layer's update to the end of its last layer's, and its first update waits at a barrier
    that only as many environments running at the same time can pass."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=BARRIER_TIMEOUT_S)
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def first_update(self) -> None:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.barrier.wait()

    def last_update_done(self) -> None:
        with self.lock:
            self.running -= 1


class GatedEngine(InMemoryEngine):
    def __init__(self, gate: EnvironmentGate, *, stack: str) -> None:
        super().__init__(stack=stack)
        self.gate = gate

    def up(
        self,
        layer: str,
        *,
        message: str,
        on_output: OutputSink,
        program_dir: Path | None = None,
    ) -> UpdateResult:
        if layer == MANIFEST.order[0]:
            self.gate.first_update()
        try:
            return super().up(layer, message=message, on_output=on_output, program_dir=program_dir)
        finally:
            if layer == MANIFEST.order[-1]:
                self.gate.last_update_done()


class EnvironmentsRun(CliRun):
    """Calls main() with one in-memory engine per stack, in a throwaway git repository."""

    def __init__(self, root: Path, emulator_url: str) -> None:
        super().__init__(root, emulator_url)
        self.engines: dict[str, InMemoryEngine] = {}
        self.gate: EnvironmentGate | None = None
        # The thread each engine was built in, by stack.
        self.built_in: dict[str, str] = {}
        # (stack, layers, refuse) of each preflight that ran.
        self.preflights: list[tuple[str, list[str], bool]] = []
        self.refuse_preflight_of: set[str] = set()

    def engine(self, stack: str) -> InMemoryEngine:
        if stack not in self.engines:
            self.engines[stack] = (
                GatedEngine(self.gate, stack=stack)
                if self.gate is not None
                else InMemoryEngine(stack=stack)
            )
        return self.engines[stack]

    def factory(self, target: Target, stack: str, policy_packs: Sequence[str]) -> Engine:
        self.built_in[stack] = threading.current_thread().name
        return self.engine(stack)

    def preflight(self, target: Target, stack: str, console: Console, root: Path) -> Preflight:
        def check(layers: Sequence[str], *, refuse: bool) -> None:
            self.preflights.append((stack, list(layers), refuse))
            if refuse and stack in self.refuse_preflight_of:
                raise RefusedError("the preflight failed (AWS credentials)")

        return check

    def combined(self, operation: str = "deploy") -> dict[str, Any]:
        path = self.root / "build" / "environments" / f"combined-{operation}-report.json"
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def report(self, stack: str, name: str = "deploy-report.json") -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.root / "build" / "environments" / stack / name).read_text()
        )
        return data

    def updated(self, stack: str) -> list[str]:
        return [layer for _, layer in self.engines[stack].operations("up")]


@pytest.fixture
def run(small_repo: SmallRepo, listening_emulator: str) -> EnvironmentsRun:
    small_repo.commit("initial")
    return EnvironmentsRun(small_repo.root, listening_emulator)


STACKS = ("dev", "staging", "prod")


def test_each_environment_runs_its_chain_with_its_own_engine_and_report(
    run: EnvironmentsRun,
) -> None:
    assert run("deploy-all", "--stacks", ",".join(STACKS)) == ExitCode.OK

    assert list(run.engines) == list(STACKS)
    for stack in STACKS:
        assert run.updated(stack) == list(MANIFEST.order)
        # Each engine deployed its own stack: the outputs carry its name.
        assert run.engines[stack].outputs("security")["kms_key_arn"].shown().startswith(stack)
        report = run.report(stack)
        assert (report["stack"], report["exit_code"]) == (stack, 0)
        assert [row["status"] for row in report["layers"]] == ["succeeded"] * 5
    # The single-stack report is not written: no environment's report overwrites another's.
    assert not (run.root / "build" / "deploy-report.json").exists()
    combined = run.combined()
    assert combined["operation"] == "deploy_all"
    assert combined["stacks"] == list(STACKS)
    assert combined["exit_code"] == 0
    for entry in combined["environments"]:
        assert entry["exit_code"] == 0
        assert entry["engine_ran"] == list(MANIFEST.order)
        assert entry["report"]["stack"] == entry["stack"]
        assert entry["report_path"].endswith(
            f"build/environments/{entry['stack']}/deploy-report.json"
        )
    text = " ".join(run.stdout.split())
    assert "deploy_all · target local" in text
    assert "(3 environments, at most 3 at once; exit code 0)" in text
    # The combined table: a column per environment, a row per layer.
    assert re.search(r"│ security +│ succeeded +│ succeeded +│ succeeded +│", run.stdout)
    assert re.search(r"│ exit code +│ 0 ok +│ 0 ok +│ 0 ok +│", run.stdout)


def test_engines_are_built_before_any_environment_runs_in_the_calling_thread(
    run: EnvironmentsRun,
) -> None:
    assert run("deploy-all", "--stacks", "dev,prod") == ExitCode.OK
    assert run.built_in == dict.fromkeys(("dev", "prod"), threading.current_thread().name)
    # The preflight runs per environment, for that environment's stack.
    assert sorted(run.preflights) == [
        ("dev", list(MANIFEST.order), True),
        ("prod", list(MANIFEST.order), True),
    ]


def test_environments_run_concurrently(run: EnvironmentsRun) -> None:
    # Each environment's first update waits until all three are in theirs: run one after the
    # other, the barrier would break and the environments fail.
    run.gate = EnvironmentGate(parties=3)
    assert run("deploy-all", "--stacks", ",".join(STACKS), "--concurrency", "3") == ExitCode.OK
    assert run.gate.most_running == 3
    assert all(run.updated(stack) == list(MANIFEST.order) for stack in STACKS)


def test_no_more_environments_run_at_once_than_the_cap(run: EnvironmentsRun) -> None:
    # Pairs meet at the barrier: two environments do run at once, and never more than two.
    run.gate = EnvironmentGate(parties=2)
    stacks = "dev,staging,prod,qa"
    assert run("deploy-all", "--stacks", stacks, "--concurrency", "2") == ExitCode.OK
    assert run.gate.most_running == 2
    assert all(run.updated(stack) == list(MANIFEST.order) for stack in stacks.split(","))


def test_the_default_cap_is_three(run: EnvironmentsRun) -> None:
    run.gate = EnvironmentGate(parties=3)
    assert run("deploy-all", "--stacks", "dev,staging,prod,qa,perf,demo") == ExitCode.OK
    assert run.gate.most_running == 3
    assert run.combined()["concurrency"] == 3


def test_a_failing_environment_leaves_the_others_complete(run: EnvironmentsRun) -> None:
    run.engine("staging").fail("compute", "error: InvalidParameterValueException: bad role")

    assert run("deploy-all", "--stacks", ",".join(STACKS)) == ExitCode.FAILED

    assert run.updated("dev") == list(MANIFEST.order)
    assert run.updated("prod") == list(MANIFEST.order)
    assert run.updated("staging") == ["security", "storage", "compute"]
    statuses = {row["layer"]: row["status"] for row in run.report("staging")["layers"]}
    assert statuses == {
        "security": "succeeded",
        "storage": "succeeded",
        "compute": "failed",
        "api": "skipped",
        "observability": "skipped",
    }
    combined = run.combined()
    assert combined["exit_code"] == 1
    assert {entry["stack"]: entry["exit_code"] for entry in combined["environments"]} == {
        "dev": 0,
        "staging": 1,
        "prod": 0,
    }
    assert "staging: compute failed: error: InvalidParameterValueException" in run.stdout
    assert re.search(r"│ compute +│ succeeded +│ failed +│ succeeded +│", run.stdout)
    assert re.search(r"│ engine ran +│ 5 +│ 3 +│ 5 +│", run.stdout)


def test_a_refused_environment_is_reported_and_the_others_run(run: EnvironmentsRun) -> None:
    run.refuse_preflight_of = {"prod"}

    assert run("deploy-all", "--stacks", "dev,prod") == ExitCode.REFUSED

    assert run.updated("dev") == list(MANIFEST.order)
    assert run.updated("prod") == []
    prod = run.combined()["environments"][1]
    assert prod["exit_code"] == 3
    assert prod["report"] is None
    assert prod["problem"] == "refused: the preflight failed (AWS credentials)"
    assert "prod · refused: the preflight failed" in run.stderr
    assert re.search(r"│ security +│ succeeded +│ - +│", run.stdout)
    assert re.search(r"│ exit code +│ 0 ok +│ 3 refused +│", run.stdout)
    assert "prod: refused: the preflight failed (AWS credentials)" in run.stdout


def test_every_progress_line_names_its_environment(run: EnvironmentsRun) -> None:
    assert run("deploy-all", "--stacks", "dev,staging") == ExitCode.OK
    # A layer's header (▶), its engine lines (│) and its result (indented); not the tables.
    progress = [
        line
        for line in run.stdout.splitlines()
        if line.startswith(("▶ ", "  ")) or (" │ " in line and not line.startswith("│"))
    ]
    assert len(progress) == 2 * 5 * 4  # per environment and layer: header, 2 lines, result
    for line in progress:
        # Labels are padded to the longest stack name, so the columns line up.
        assert line.lstrip("▶ ").startswith(("dev     · ", "staging · ")), line


@pytest.mark.parametrize(
    ("codes", "worst"),
    [
        ([0, 0, 0], ExitCode.OK),
        ([0, 4, 0], ExitCode.CHANGES),
        ([4, 3], ExitCode.REFUSED),
        ([3, 2, 4], ExitCode.UNAVAILABLE),
        ([2, 1, 3, 4], ExitCode.FAILED),
        ([1, 0], ExitCode.FAILED),
    ],
)
def test_the_run_exits_with_the_worst_environment_code(codes: list[int], worst: ExitCode) -> None:
    assert worst_exit_code(codes) is worst


def test_the_precedence_ranks_every_exit_code() -> None:
    assert sorted(EXIT_PRECEDENCE) == sorted(ExitCode)


def test_preview_all_over_several_environments(run: EnvironmentsRun) -> None:
    assert run("deploy-all", "--stacks", "dev") == ExitCode.OK
    # dev is up to date; prod was never deployed, so a deploy would create it: 4 wins over 0.
    assert run("preview-all", "--stacks", "dev,prod") == ExitCode.CHANGES
    combined = run.combined("preview")
    assert [entry["exit_code"] for entry in combined["environments"]] == [0, 4]
    assert run.report("prod", "preview-report.json")["layers"][0]["status"] == "not deployed"
    assert run.engines["prod"].operations("up") == []
    # A preview reports the preflight, it does not enforce it.
    assert ("prod", list(MANIFEST.order), False) in run.preflights

    run.engine("dev").fail("storage", "error: preview failed", operation="preview")
    assert run("preview-all", "--stacks", "dev,prod") == ExitCode.FAILED


def test_resume_resumes_each_environment_from_its_own_report(run: EnvironmentsRun) -> None:
    run.engine("staging").fail("api", "error: BadRequestException")
    assert run("deploy-all", "--stacks", "dev,staging") == ExitCode.FAILED
    for engine in run.engines.values():
        engine.calls.clear()

    assert run("deploy-all", "--stacks", "dev,staging", "--resume") == ExitCode.OK

    assert run.updated("dev") == []
    assert run.updated("staging") == ["api", "observability"]
    assert [row["carried_over"] for row in run.report("staging")["layers"]] == [
        True,
        True,
        True,
        False,
        False,
    ]
    # An environment with no run of its own to resume is refused; the others still resume.
    assert run("deploy-all", "--stacks", "dev,qa", "--resume") == ExitCode.REFUSED
    assert "qa · refused: there is no previous deploy report" in run.stderr


def test_the_aws_target_needs_no_stack_option_with_stacks(run: EnvironmentsRun) -> None:
    for stack in ("dev", "prod"):
        for layer in MANIFEST.order:
            run.engine(stack).init_stack(layer)  # the owners created their stacks
    environ = {"PULUMI_CONFIG_PASSPHRASE": "p", "AWS_ACCESS_KEY_ID": "AKIA"}
    code = run("deploy-all", "--target", "aws", "--stacks", "dev,prod", environ=environ)
    assert code == ExitCode.OK
    assert run.combined()["target"] == "aws"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", "dev", "--stacks", "dev,prod"], "are mutually exclusive"),
        (["--stacks", "dev,Prod"], "Stack name 'Prod' is not 1-12 lowercase"),
        (["--stacks", "dev,a-very-long-name"], "Stack name 'a-very-long-name' is not"),
        (["--stacks", "dev,,prod"], "has an empty stack name"),
        (["--stacks", "dev,"], "has an empty stack name"),
        (["--stacks", "dev,prod,dev"], "names dev more than once"),
        (["--stacks", "dev,prod", "--concurrency", "0"], "at least one environment"),
        (["--concurrency", "2"], "name them with --stacks"),
    ],
)
def test_bad_stacks_or_concurrency_exit_2_before_any_engine(
    run: EnvironmentsRun, argv: list[str], message: str
) -> None:
    assert run("deploy-all", *argv) == ExitCode.UNAVAILABLE
    assert message in " ".join(run.stderr.split())
    assert run.engines == {}


def test_stacks_is_only_for_the_commands_that_run_every_layer() -> None:
    parser = build_parser()
    for command in ("deploy-all", "preview-all", "deploy_all", "preview_all"):
        assert parser.parse_args([command, "--stacks", "dev,prod"]).stacks == "dev,prod"
    with pytest.raises(SystemExit) as raised:
        parser.parse_args(["destroy-all", "--stacks", "dev,prod"])
    assert raised.value.code == 2


@dataclass
class RecordingCombinedRenderer:
    """Keeps the combined report it is handed, draws nothing."""

    drawn: list[tuple[CombinedReport, Path | None]] = field(default_factory=list)

    def environments(self, report: CombinedReport, path: Path | None) -> None:
        self.drawn.append((report, path))


def test_the_combined_report_is_handed_to_the_renderer(tmp_path: Path) -> None:
    renderer = RecordingCombinedRenderer()
    engines = {stack: InMemoryEngine(stack=stack) for stack in ("dev", "prod")}
    engines["prod"].fail("security", "error: AccessDenied")

    def orchestrator_for(stack: str, drawn_with: Renderer, build_dir: Path) -> Orchestrator:
        return Orchestrator(
            engines[stack],
            stack=stack,
            target=LocalTarget(repo_root=REPO_ROOT),
            repo=GitRepo(REPO_ROOT),
            renderer=drawn_with,
            build_dir=build_dir,
            sources=engines[stack].sources,
        )

    combined = run_environments(
        ["dev", "prod"],
        operation="deploy_all",
        command=lambda orchestrator: orchestrator.deploy_all().exit_code,
        orchestrator_for=orchestrator_for,
        build_root=tmp_path,
        concurrency=2,
        console=make_console(),
        renderer=renderer,
    )

    ((report, path),) = renderer.drawn
    assert report is combined
    assert path == tmp_path / "environments" / "combined-deploy-report.json"
    assert [(result.stack, result.exit_code) for result in report.environments] == [
        ("dev", ExitCode.OK),
        ("prod", ExitCode.FAILED),
    ]
    assert report.environment("prod").engine_ran == ["security"]
    assert report.exit_code == ExitCode.FAILED
