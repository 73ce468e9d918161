"""The orchestrator checks the account before deploying: a refusal runs no layer (exit 3).

Lambda is played by botocore's Stubber with the Lambda API reference's response shapes (moto
serves no GetAccountSettings); see tests/preflight/test_concurrency.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.manifest import MANIFEST
from tests.orchestration.conftest import SmallRepo, console_text, make_console
from tests.preflight.test_concurrency import (
    account_settings,
    no_environment_functions,
    stubbed_lambda,
)
from tooling.orchestrator.cli import account_checks
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import ExitCode, Orchestrator
from tooling.orchestrator.targets import AwsTarget, LocalTarget, RefusedError


@dataclass(frozen=True)
class StubbedAwsTarget(AwsTarget):
    """The aws target, with the Lambda client handed in instead of made from credentials."""

    lambda_client: Any = field(default=None, compare=False)

    def aws_client(self, service: str, region: str | None) -> Any:
        assert service == "lambda"
        return self.lambda_client


def _orchestrator(small_repo: SmallRepo, quota: int, unreserved: int) -> tuple[Orchestrator, Any]:
    small_repo.commit("initial")
    client, stubber = stubbed_lambda()
    stubber.add_response("get_account_settings", account_settings(quota, unreserved))
    no_environment_functions(stubber)
    stubber.activate()
    target = StubbedAwsTarget(repo_root=small_repo.root, region="eu-west-1", lambda_client=client)
    console = make_console()
    engine = InMemoryEngine()
    orchestrator = Orchestrator(
        engine,
        stack="dev",
        target=target,
        repo=small_repo.repo,
        console=console,
        build_dir=small_repo.root / "build",
        account_checks=account_checks(target, "dev", console),
    )
    return orchestrator, engine


def test_a_refused_deploy_runs_no_layer(small_repo: SmallRepo) -> None:
    orchestrator, engine = _orchestrator(small_repo, quota=10, unreserved=10)
    with pytest.raises(RefusedError, match="quota in eu-west-1 is 10"):
        orchestrator.deploy_all()
    assert engine.calls == []
    assert not (small_repo.root / "build").exists(), "refused before any report is written"


def test_a_single_layer_deploy_is_checked_too(small_repo: SmallRepo) -> None:
    orchestrator, engine = _orchestrator(small_repo, quota=10, unreserved=10)
    with pytest.raises(RefusedError, match="compute:processor_reserved_concurrency = 10"):
        orchestrator.deploy("compute")
    assert engine.calls == []


def test_an_account_with_room_prints_the_verdict_and_deploys(small_repo: SmallRepo) -> None:
    orchestrator, engine = _orchestrator(small_repo, quota=1000, unreserved=1000)
    for layer in MANIFEST.order:
        engine.init_stack(layer)  # the aws target deploys stacks their owners created
    assert orchestrator.deploy_all().exit_code == ExitCode.OK
    assert "quota 1000, 11 to reserve" in console_text(orchestrator.console)
    assert [call.layer for call in engine.calls if call.operation == "up"] == list(MANIFEST.order)


def test_the_local_target_has_no_quota_to_check(small_repo: SmallRepo) -> None:
    check = account_checks(LocalTarget(repo_root=small_repo.root), "local", make_console())
    # No client is made: nothing answers on the emulator's port in this test.
    check(list(MANIFEST.order))
