"""The real engine's choices that show only with a CLI: through the Pulumi CLI double.

The whole journey is in test_engine_through_cli.py; here are the aws target's (a user's own
backend, committed stack settings) and the orchestrator's answer to a `pulumi` that is broken.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pulumi import automation as auto

from shared.manifest import MANIFEST, REPO_ROOT
from tests.conftest import PulumiCli
from tests.orchestration.conftest import SmallRepo, console_text, make_console
from tooling.gitrepo import GitRepo
from tooling.orchestrator.automation import AutomationEngine, resolve_pulumi_command
from tooling.orchestrator.cli import main
from tooling.orchestrator.orchestrator import ExitCode, Orchestrator
from tooling.orchestrator.render import RichRenderer
from tooling.orchestrator.report import Status
from tooling.orchestrator.targets import AwsTarget

PASSPHRASE = "the team's passphrase"
GIT = shutil.which("git") or "git"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 (the test's own git commands)
        [GIT, "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def aws_repo(tmp_path: Path, pulumi_cli: PulumiCli, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose security stack `prod` its owner created and committed, on a file
    backend the user is logged in to (PULUMI_BACKEND_URL)."""
    root = tmp_path / "repo"
    shutil.copytree(
        REPO_ROOT / "stacks" / "security",
        root / "stacks" / "security",
        ignore=shutil.ignore_patterns("Pulumi.*.yaml", "__pycache__"),
    )
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    monkeypatch.setenv("PULUMI_BACKEND_URL", pulumi_cli.backend_url)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    created = pulumi_cli.run("stack", "init", "prod", cwd=root / "stacks" / "security")
    assert created.returncode == 0, created.stderr
    settings = root / "stacks" / "security" / "Pulumi.prod.yaml"
    settings.write_text(
        settings.read_text()
        + textwrap.dedent(
            """\
            # Production runs in Frankfurt.
            config:
              aws:region: eu-central-1
            """
        )
    )
    git(root, "init", "-q")
    (root / ".git" / "info" / "exclude").write_text(".venv\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "prod stack")
    return root


def aws_orchestrator(root: Path, region: str | None) -> tuple[Orchestrator, AutomationEngine]:
    target = AwsTarget(repo_root=root, region=region, credentials_probe=lambda _: "test")
    engine = AutomationEngine(target, "prod", command=resolve_pulumi_command(root))
    orchestrator = Orchestrator(
        engine,
        stack="prod",
        target=target,
        repo=GitRepo(root),
        renderer=RichRenderer(make_console()),
        build_dir=root.parent / "build",
    )
    return orchestrator, engine


def test_the_aws_target_passes_region_without_rewriting_committed_settings(
    aws_repo: Path,
) -> None:
    committed = (aws_repo / "stacks" / "security" / "Pulumi.prod.yaml").read_text()
    orchestrator, engine = aws_orchestrator(aws_repo, region="eu-west-3")

    # The organization comes from the backend: `pulumi whoami` names a file backend.
    assert engine.fully_qualified_name("security") == "organization/serverless-security/prod"
    report = orchestrator.deploy("security")

    assert report.exit_code == ExitCode.OK, report.to_json()
    assert (aws_repo / "stacks" / "security" / "Pulumi.prod.yaml").read_text() == committed
    assert git(aws_repo, "status", "--porcelain") == ""
    # The program ran in the region passed, not the committed one.
    kms_key_arn = engine.outputs("security")["kms_key_arn"].value
    assert str(kms_key_arn).startswith("arn:aws:kms:eu-west-3:")


def test_the_aws_target_refuses_to_create_a_stack(aws_repo: Path) -> None:
    orchestrator, engine = aws_orchestrator(aws_repo, region=None)
    engine.stack = "staging"
    orchestrator.stack = "staging"

    report = orchestrator.deploy("security")

    assert report.result("security").status is Status.REFUSED
    assert "pulumi stack init staging" in report.result("security").note
    assert not list(aws_repo.rglob("Pulumi.staging.yaml"))
    with pytest.raises(auto.StackNotFoundError):
        auto.select_stack(
            "organization/serverless-security/staging",
            work_dir=str(aws_repo / "stacks" / "security"),
        )


def test_a_pulumi_on_path_that_fails_version_stops_with_one_paragraph(
    small_repo: SmallRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    listening_emulator: str,
) -> None:
    small_repo.commit("first")
    broken = tmp_path / "bin" / "pulumi"
    broken.parent.mkdir()
    broken.write_text(f"#!{sys.executable}\nimport sys\nsys.exit('broken: no such runtime')\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken.parent}:{Path(GIT).parent}")
    errors = make_console()

    code = main(
        ["status"],
        repo_root=small_repo.root,
        error_console=errors,
        environ={"AWS_ENDPOINT_URL": listening_emulator},
    )

    assert code == ExitCode.UNAVAILABLE
    message = console_text(errors).replace("\n", " ")
    assert "Traceback" not in message
    assert f"The `pulumi` found on PATH ({broken})" in message
    assert "`pulumi version` failed (exit status 1" in message


def test_every_layer_names_its_own_stack(aws_repo: Path) -> None:
    _, engine = aws_orchestrator(aws_repo, region=None)
    assert [engine.fully_qualified_name(name) for name in MANIFEST.order] == [
        f"organization/serverless-{name}/prod" for name in MANIFEST.order
    ]
