"""The real engine path, on every CI run: the orchestrator's command line, AutomationEngine and
`pulumi.automation` drive the Pulumi CLI double (tests/support/pulumi_cli_double), which runs
the five real layer programs under the SDK's mocks against a file backend.

One journey over a copy of the repository in a fresh git repository, in the order a team
meets it: preview before anything exists, deploy everything, preview again, status and outputs,
a rollback past ten updates, a destroy the downstream guard refuses, destroy everything, and
deploy the destroyed environment again. Each step asserts what issue 11's defects broke.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from shared.manifest import MANIFEST, REPO_ROOT
from tests.conftest import PulumiCli
from tests.orchestration.conftest import console_text, make_console
from tooling.local.emulator import moto_server
from tooling.orchestrator.cli import main
from tooling.orchestrator.orchestrator import ExitCode
from tooling.orchestrator.targets import LOCAL_PASSPHRASE

STACK = "e2e"
# What the layer programs, the manifest at a revision and the policy pack need.
COPIED = ("stacks", "shared", "lambdas", "policy", "pyproject.toml", ".gitignore")
GIT = shutil.which("git") or "git"


@dataclass(frozen=True)
class Repo:
    """A git repository holding a copy of this one's layers."""

    root: Path

    def git(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 (the test's own git commands)
            [
                GIT,
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "commit.gpgsign=false",
                *args,
            ],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def dirty(self) -> str:
        return self.git("status", "--porcelain")

    @property
    def state(self) -> Path:
        return self.root / ".pulumi-state"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    root = tmp_path / "repo"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "build", "Pulumi.local.yaml")
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy2(source, root / name)
    # The shared environment every Pulumi.yaml names (../../.venv): this interpreter's.
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    repository = Repo(root)
    repository.git("init", "-q", "-b", "main")
    # `.venv/` in .gitignore matches directories only, and this one is a symlink.
    (root / ".git" / "info" / "exclude").write_text(".venv\n")
    repository.commit("layers")
    return repository


@dataclass
class Session:
    """Runs `python -m tooling.orchestrator <command>` in-process on the repository."""

    repo: Repo
    emulator: str
    output: str = ""

    def __call__(self, *argv: str) -> int:
        console, errors = make_console(), make_console()
        code = main(
            [*argv, "--stack", STACK],
            repo_root=self.repo.root,
            console=console,
            error_console=errors,
            environ={"AWS_ENDPOINT_URL": self.emulator},
        )
        self.output = console_text(console) + console_text(errors)
        return code

    def report(self, name: str) -> dict[str, dict[str, Any]]:
        document = json.loads((self.repo.root / "build" / name).read_text(encoding="utf-8"))
        return {row["layer"]: row for row in document["layers"]}

    def statuses(self, name: str) -> dict[str, object]:
        return {layer: row["status"] for layer, row in self.report(name).items()}


def workspace(repo: Repo, layer: str) -> auto.Stack:
    """The layer's stack as the local target's private workspace holds it."""
    environment = {
        "PULUMI_BACKEND_URL": f"file://{repo.state}",
        "PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE,
    }
    return auto.select_stack(
        stack_name=f"organization/serverless-{layer}/{STACK}",
        work_dir=str(repo.state / "workspaces" / layer),
        opts=auto.LocalWorkspaceOptions(env_vars=environment),
    )


def stack_files(repo: Repo) -> list[Path]:
    """Every stack settings file anywhere under the repository."""
    return sorted(repo.root.rglob(f"Pulumi.{STACK}.yaml"))


@pytest.fixture
def emulator() -> Iterator[str]:
    """The embedded AWS the local target points at: the preflight before every deploy asks it
    (the layer programs themselves run under the double's mocks, not against it)."""
    with moto_server(0) as running:
        yield running.endpoint_url


def test_the_orchestrator_runs_the_real_engine_through_the_cli(
    pulumi_cli: PulumiCli, repo: Repo, emulator: str
) -> None:
    run = Session(repo, emulator)
    first = repo.git("rev-parse", "HEAD")

    # A read-only preview before anything exists creates no stack and writes no stack file
    # (defect 5): the first layer is reported as not deployed, the others wait on it.
    assert run("preview-all") == ExitCode.CHANGES, run.output
    statuses = run.statuses("preview-report.json")
    assert statuses["security"] == "not deployed"
    assert set(list(statuses.values())[1:]) == {"waiting"}
    assert not list(repo.state.glob(".pulumi/stacks/*/*.json"))
    assert stack_files(repo) == []

    # Deploy every layer on a stack other than `local`: the work tree stays clean, so every
    # update records exactly the commit that ran (defect 6).
    assert run("deploy-all") == ExitCode.OK, run.output
    assert set(run.statuses("deploy-report.json").values()) == {"succeeded"}
    # The preflight ran first, through the same CLI and against the emulator.
    preflight = json.loads((repo.root / "build" / "preflight-report.json").read_text())
    verdicts = {check["name"]: check["verdict"] for check in preflight["checks"]}
    assert preflight["passed"], preflight
    assert verdicts["Pulumi CLI"] == verdicts["AWS account and region"] == "pass"
    assert verdicts["Pulumi organization"] == verdicts["function archives"] == "pass"
    assert repo.dirty() == ""
    for layer in MANIFEST.order:
        (latest,) = workspace(repo, layer).history(page_size=1)
        assert f"commit={first}" in latest.message
        assert "uncommitted" not in latest.message

    # Nothing changed: every layer previews unchanged although each consumer re-reads its
    # upstream stacks, since reads are no change (defect 8); an extra policy pack given
    # relative to the repository is found (defect 4).
    assert run("preview-all", "--policy-pack", "policy") == ExitCode.OK, run.output
    assert set(run.statuses("preview-report.json").values()) == {"unchanged"}
    assert run.report("preview-report.json")["observability"]["resource_changes"]["read"] == 4

    assert run("status") == ExitCode.OK
    assert run.output.count("up to date") == len(MANIFEST.order)
    assert run("outputs") == ExitCode.OK
    assert "kms_key_arn" in run.output
    assert "(missing)" not in run.output

    # Ten updates of one layer at a new commit, the orchestrator's and nine run by hand (their
    # commit is the CLI's git metadata): rollback still finds the revision before them,
    # beyond the CLI's default history page of ten (defect 2).
    observability = repo.root / "stacks" / "observability" / "Pulumi.yaml"
    observability.write_text(
        observability.read_text(encoding="utf-8").replace(
            "    default: 300\n", "    default: 400\n", 1
        ),
        encoding="utf-8",
    )
    second = repo.commit("observability: a slower p99 threshold")
    assert run("deploy", "observability") == ExitCode.OK, run.output
    by_hand = {
        "PULUMI_BACKEND_URL": f"file://{repo.state}",
        "PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE,
    }
    for attempt in range(9):
        done = pulumi_cli.run(
            "up",
            "--yes",
            "--stack",
            f"organization/serverless-observability/{STACK}",
            "--message",
            f"tuning by hand, take {attempt + 1}",
            cwd=repo.state / "workspaces" / "observability",
            env=by_hand,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    stack = workspace(repo, "observability")
    assert len(stack.history()) == 10, "`pulumi stack history` gives 10 entries by default"
    assert len(stack.history(page_size=100)) == 11

    assert run("rollback", "observability") == ExitCode.OK, run.output
    note = str(run.report("rollback-report.json")["observability"]["note"])
    assert note.startswith(f"rolled back from {second[:12]} to {first[:12]}")
    (latest,) = workspace(repo, "observability").history(page_size=1)
    assert f"commit={first}" in latest.message
    # The program at the first commit has the old threshold again: its alarms are updated.
    assert (latest.resource_changes or {}).get(auto.OpType.UPDATE)
    assert repo.dirty() == ""

    # The downstream guard: storage is read by deployed layers.
    assert run("destroy", "storage") == ExitCode.REFUSED
    assert "downstream layers still deployed: compute, api, observability" in str(
        run.report("destroy-layer-report.json")["storage"]["note"]
    )

    # Destroy everything: the local target's storage stack is throwaway, so the idempotency
    # table is not protected against deletion (defect 1).
    assert run("destroy-all") == ExitCode.OK, run.output
    assert set(run.statuses("destroy-report.json").values()) == {"destroyed"}

    # And deploy the destroyed environment again at once: the secret deleted a moment ago
    # keeps its name reserved, and the new one gets another (defect 3).
    assert run("deploy-all") == ExitCode.OK, run.output
    assert set(run.statuses("deploy-report.json").values()) == {"succeeded"}
    account = json.loads(pulumi_cli.account.read_text(encoding="utf-8"))
    (reserved,) = account["scheduled_secret_deletions"]
    assert reserved.startswith(f"serverless-{STACK}/app-secret-")
    assert workspace(repo, "security").outputs()["secret_name"].value != reserved
    assert repo.dirty() == ""
