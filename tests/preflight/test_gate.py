"""Deploys run the preflight first and refuse (exit 3, nothing deployed) when it fails;
previews report it; --skip-preflight skips it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.manifest import MANIFEST, Layer
from tests.orchestration.conftest import SmallRepo, console_text, git, make_console
from tests.preflight.conftest import World, lambda_account
from tooling.orchestrator.cli import run_preflight_for
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import ExitCode, Orchestrator
from tooling.orchestrator.render import RichRenderer
from tooling.orchestrator.targets import RefusedError, Target
from tooling.preflight.checks import PreflightContext


@pytest.fixture
def small_repo(tmp_path: Path) -> SmallRepo:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    repo = SmallRepo(root)
    repo.commit("initial")
    return repo


def _orchestrator(world: World, small_repo: SmallRepo) -> tuple[Orchestrator, InMemoryEngine]:
    def context(target: Target, stack: str, root: Path, layers: list[Layer]) -> PreflightContext:
        return world.context(stack, layers)

    console = make_console()
    engine = InMemoryEngine()
    # The aws target deploys only to stacks their owners created (`pulumi stack init`).
    for layer in MANIFEST.order:
        engine.init_stack(layer)
    preflight = run_preflight_for(
        world.target, "dev", console, small_repo.root, context_factory=context
    )
    orchestrator = Orchestrator(
        engine,
        stack="dev",
        target=world.target,
        repo=small_repo.repo,
        renderer=RichRenderer(console),
        build_dir=small_repo.root / "build",
        preflight=preflight,
    )
    return orchestrator, engine


def _printed(orchestrator: Orchestrator) -> str:
    assert isinstance(orchestrator.renderer, RichRenderer)
    return console_text(orchestrator.renderer.console)


def _ups(engine: InMemoryEngine) -> list[str]:
    return [call.layer for call in engine.calls if call.operation == "up"]


def test_a_failed_preflight_refuses_the_deploy_before_any_layer(
    world: World, small_repo: SmallRepo
) -> None:
    lambda_account(world, 10, 10)  # a new account: the layers' reservations cannot fit
    orchestrator, engine = _orchestrator(world, small_repo)
    with pytest.raises(RefusedError, match=r"the preflight failed \(Lambda concurrency\)"):
        orchestrator.deploy_all()
    assert engine.calls == []
    text = _printed(orchestrator)
    assert "quota in us-east-1 is 10" in text
    report = small_repo.root / "build" / "preflight-report.json"
    assert report.exists(), "the table is kept for CI as JSON"


def test_a_passing_preflight_deploys(world: World, small_repo: SmallRepo) -> None:
    lambda_account(world, 1000, 1000)
    orchestrator, engine = _orchestrator(world, small_repo)
    assert orchestrator.deploy_all().exit_code == ExitCode.OK
    assert _ups(engine) == list(MANIFEST.order)


def test_a_single_layer_is_checked_for_what_it_needs(world: World, small_repo: SmallRepo) -> None:
    # Lambda is not asked at all (nothing is stubbed): the api layer reserves no concurrency.
    orchestrator, _ = _orchestrator(world, small_repo)
    report = orchestrator.deploy("api")
    text = " ".join(_printed(orchestrator).split())
    assert "the layers reserve no concurrency" in text
    # The preflight passed; the upstream guard is what refuses a first deploy of api alone.
    assert report.exit_code == ExitCode.REFUSED
    assert "has never been deployed" in report.layers[0].note


def test_a_preview_reports_the_preflight_without_refusing(
    world: World, small_repo: SmallRepo
) -> None:
    lambda_account(world, 10, 10)
    orchestrator, engine = _orchestrator(world, small_repo)
    report = orchestrator.preview_all()
    assert report.exit_code != ExitCode.REFUSED
    assert "quota in us-east-1 is 10" in _printed(orchestrator)
    assert [call.layer for call in engine.calls if call.operation == "preview"]


def test_each_environment_of_several_keeps_its_preflight_report_apart(
    world: World, small_repo: SmallRepo
) -> None:
    """With --stacks, environments run their preflights at once: each writes its own report."""
    lambda_account(world, 1000, 1000)

    def context(target: Target, stack: str, root: Path, layers: list[Layer]) -> PreflightContext:
        return world.context(stack, layers)

    own = small_repo.root / "build" / "environments" / "dev"
    preflight = run_preflight_for(
        world.target,
        "dev",
        make_console(),
        small_repo.root,
        context_factory=context,
        report_dir=own,
    )
    preflight(list(MANIFEST.order), refuse=True)
    assert (own / "preflight-report.json").exists()
    assert not (small_repo.root / "build" / "preflight-report.json").exists()
