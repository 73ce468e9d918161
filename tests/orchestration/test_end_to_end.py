"""End to end: deploy every layer with the real Pulumi engine against an embedded AWS emulator
(moto), check the contract, then destroy everything.

It needs what this machine cannot have: the Pulumi CLI on PATH and the pulumi-aws resource
plugin (see the skip reason), plus the shared .venv the layer programs run with. It shows the
local target's extension point: the emulator's endpoints are per-target stack configuration.
What it checks of the orchestrator without a provider runs on every CI run through the CLI
double (test_engine_through_cli.py); this test adds the provider and the emulator.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from shared.manifest import MANIFEST, REPO_ROOT
from tests.orchestration.conftest import make_console
from tooling.gitrepo import GitRepo
from tooling.orchestrator import contract
from tooling.orchestrator.automation import AutomationEngine, resolve_pulumi_command, sdk_version
from tooling.orchestrator.orchestrator import ExitCode, Orchestrator, find_stale
from tooling.orchestrator.render import RichRenderer
from tooling.orchestrator.targets import LocalTarget

STACK = "e2e"


def _missing() -> list[str]:
    missing = []
    if shutil.which("pulumi") is None:
        missing.append(f"the Pulumi CLI {sdk_version()} on PATH")
    aws_version = metadata.version("pulumi-aws")
    pulumi_home = Path(os.environ.get("PULUMI_HOME", Path.home() / ".pulumi"))
    if not (pulumi_home / "plugins" / f"resource-aws-v{aws_version}").is_dir():
        missing.append(
            f"the pulumi-aws resource plugin {aws_version} "
            f"(pulumi plugin install resource aws {aws_version})"
        )
    if not (REPO_ROOT / ".venv").is_dir():
        missing.append("the shared .venv (nox -s dev)")
    return missing


MISSING = _missing()

pytestmark = pytest.mark.skipif(
    bool(MISSING), reason="needs " + " and ".join(MISSING) + " (not installable offline here)"
)


@dataclass(frozen=True)
class EmulatorTarget(LocalTarget):
    """The local target (AWS at the emulator) with its state in a temporary directory."""

    state_root: Path = Path()

    @property
    def state_dir(self) -> Path:
        return self.state_root


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    # AWS-managed policies exist only when this is set before the server starts.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_deploy_all_then_destroy_all_on_the_emulator(emulator: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    target = EmulatorTarget(repo_root=REPO_ROOT, state_root=state, emulator_url=emulator)
    engine = AutomationEngine(target, STACK, command=resolve_pulumi_command(REPO_ROOT))
    orchestrator = Orchestrator(
        engine,
        stack=STACK,
        target=target,
        repo=GitRepo(REPO_ROOT),
        renderer=RichRenderer(make_console()),
        build_dir=tmp_path / "build",
    )

    deployed = orchestrator.deploy_all()

    assert deployed.exit_code == ExitCode.OK, deployed.to_json()
    for layer in MANIFEST.layers:
        assert contract.missing_outputs(layer.outputs, engine.outputs(layer.name)) == [], layer.name
    assert find_stale(engine, MANIFEST) == {}
    assert orchestrator.preview_all().exit_code == ExitCode.OK

    destroyed = orchestrator.destroy_all()

    assert destroyed.exit_code == ExitCode.OK, destroyed.to_json()
    assert all(engine.outputs(name) == {} for name in MANIFEST.order)
