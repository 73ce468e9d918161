"""The real engine path, on every CI run: the orchestrator's command line, AutomationEngine and
`pulumi.automation` drive the Pulumi CLI double (tests/support/pulumi_cli_double), which runs
the five real layer programs under the SDK's mocks against a file backend.

One journey over a copy of the repository in a fresh git repository, in the order a team
meets it: preview before anything exists, deploy everything, preview again, status and outputs,
a rollback past ten updates, a destroy the downstream guard refuses, destroy everything, and
deploy the destroyed environment again. Each step asserts what issue 11's defects broke.

Then, on that deployed environment (deploying it again would double the journey's time), what
issue 13 asks of the real engine path: a second deploy_all skips every layer by the
fingerprints its updates recorded; after a team's `pulumi up` by hand in one layer, deploy_all
reruns that layer and only what its changed outputs reach; and drift finds what was changed
in the double's AWS account out of band, writing no state and no history.
"""

from __future__ import annotations

import json
import re
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
from tooling.orchestrator.automation import consumed_from_state
from tooling.orchestrator.cli import main
from tooling.orchestrator.orchestrator import ExitCode
from tooling.orchestrator.targets import LOCAL_PASSPHRASE

STACK = "e2e"
# What the orchestrator writes into the message of every update it runs (fingerprint.py).
FINGERPRINT = re.compile(r"\bfingerprint=([0-9a-f]{64})\b")
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

    a_second_deploy_all_skips_every_layer(run, repo)
    a_hand_run_up_reruns_that_layer_and_what_its_outputs_reach(run, repo, pulumi_cli)
    drift_finds_out_of_band_changes_and_writes_nothing(run, repo, pulumi_cli)


def histories(repo: Repo) -> dict[str, list[auto.UpdateSummary]]:
    """Every layer's whole history, newest first, as `pulumi stack history` gives it."""
    return {layer: workspace(repo, layer).history(page_size=100) for layer in MANIFEST.order}


def a_second_deploy_all_skips_every_layer(run: Session, repo: Repo) -> None:
    """Every update of the last deploy_all recorded its layer's fingerprint in its message,
    which the real engine reads back from the stack's history: nothing changed, nothing runs."""
    before = histories(repo)
    recorded = {}
    for layer, entries in before.items():
        latest = entries[0]
        assert (latest.kind, latest.result) == ("update", "succeeded")
        found = FINGERPRINT.search(latest.message or "")
        assert found, f"{layer}'s latest update carries no fingerprint: {latest.message!r}"
        recorded[layer] = found.group(1)

    assert run("deploy-all") == ExitCode.OK, run.output

    report = run.report("deploy-report.json")
    for layer in MANIFEST.order:
        row = report[layer]
        assert (row["status"], row["ran"]) == ("unchanged", False), row
        assert row["fingerprint"] == recorded[layer]
        assert row["reason"] == (
            f"unchanged since the latest update (fingerprint {recorded[layer][:12]})"
        )
    # No engine update ran: no history entry was added anywhere.
    assert {layer: len(entries) for layer, entries in histories(repo).items()} == {
        layer: len(entries) for layer, entries in before.items()
    }


def a_hand_run_up_reruns_that_layer_and_what_its_outputs_reach(
    run: Session, repo: Repo, pulumi_cli: PulumiCli
) -> None:
    """The storage team renames its idempotency table and deploys with `pulumi up`, as a user
    does, with a message of its own. The next deploy_all cannot trust storage's recorded
    fingerprint (its latest update has none) and reruns it; of what is downstream, compute
    reads the table's name and reruns, while observability (which reads only the queue's
    name) and api (which reads compute's unchanged outputs) are left alone."""
    program = repo.root / "stacks" / "storage" / "__main__.py"
    source = program.read_text(encoding="utf-8")
    assert "    name=names.idempotency_table,\n" in source
    program.write_text(
        source.replace(
            "    name=names.idempotency_table,\n",
            '    name=f"{names.idempotency_table}-v2",\n',
        ),
        encoding="utf-8",
    )
    repo.commit("storage: a new idempotency table")
    by_hand = pulumi_cli.run(
        "up",
        "--yes",
        "--stack",
        f"organization/serverless-storage/{STACK}",
        "--message",
        "storage team: new idempotency table",
        cwd=repo.state / "workspaces" / "storage",
        env={
            "PULUMI_BACKEND_URL": f"file://{repo.state}",
            "PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE,
        },
    )
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    (latest,) = workspace(repo, "storage").history(page_size=1)
    assert latest.message == "storage team: new idempotency table"
    table = workspace(repo, "storage").outputs()["idempotency_table_name"].value
    assert str(table).endswith("-v2")

    assert run("deploy-all") == ExitCode.OK, run.output

    report = run.report("deploy-report.json")
    ran = {layer: row["ran"] for layer, row in report.items()}
    assert ran == {
        "security": False,
        "storage": True,
        "compute": True,
        "api": False,
        "observability": False,
    }
    assert report["storage"]["reason"].startswith("the latest update carries no fingerprint")
    # storage's own update finds nothing left to do: the hand-run `up` did it.
    assert report["storage"]["status"] == "unchanged"
    assert report["compute"]["reason"] == "changed since the latest update: upstream"
    assert report["compute"]["status"] == "succeeded"
    assert report["compute"]["resource_changes"].get("update", 0) >= 1
    for layer in ("security", "api", "observability"):
        assert report[layer]["reason"].startswith("unchanged since the latest update"), layer
    # The report says why each layer ran or did not, and storage's history has a fingerprint
    # again: the next deploy_all skips everything.
    assert "ran: the latest update carries no fingerprint" in " ".join(run.output.split())
    (latest,) = workspace(repo, "storage").history(page_size=1)
    assert FINGERPRINT.search(latest.message or "")
    deployed = workspace(repo, "compute").export_stack().deployment or {}
    consumed = consumed_from_state(deployed)
    assert consumed["storage"]["idempotency_table_name"].value == table


def backend_files(repo: Repo) -> dict[str, bytes]:
    """Every file of the file backend: checkpoints, history, backups, locks."""
    root = repo.state / ".pulumi"
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def drift_finds_out_of_band_changes_and_writes_nothing(
    run: Session, repo: Repo, pulumi_cli: PulumiCli
) -> None:
    """Someone shortens the dead-letter queue's retention in the console and deletes the
    alarm topic: drift reports both, in their layers, with exit 4; the other layers are in
    sync. It refreshes preview-only, so the state, the history and the locks are as before."""
    cloud = pulumi_cli.cloud()
    queue = cloud.find("aws:sqs/queue:Queue", "dead-letter-queue")
    topic = cloud.find("aws:sns/topic:Topic", "alarm-topic")
    retention = cloud.resources()[queue]["properties"]["messageRetentionSeconds"]
    cloud.change_out_of_band(queue, {"messageRetentionSeconds": 60})
    cloud.delete_out_of_band(topic)
    before = backend_files(repo)

    assert run("drift") == ExitCode.CHANGES, run.output

    report = run.report("drift-report.json")
    assert {layer: row["status"] for layer, row in report.items()} == {
        "security": "in sync",
        "storage": "drifted",
        "compute": "in sync",
        "api": "in sync",
        "observability": "drifted",
    }
    assert report["storage"]["drift"] == [
        {
            "urn": queue,
            "type": "aws:sqs/queue:Queue",
            "change": "update",
            "properties": ["messageRetentionSeconds"],
        }
    ]
    assert report["observability"]["drift"] == [
        {"urn": topic, "type": "aws:sns/topic:Topic", "change": "delete", "properties": []}
    ]
    assert report["storage"]["resource_changes"]["update"] == 1
    assert report["observability"]["resource_changes"]["delete"] == 1
    # observability's last update read storage before its table was renamed: its
    # StackReference would re-read other outputs, which is noted, not counted as drift.
    assert report["observability"]["note"].startswith(
        "not drift: StackReference storage-stack would re-read other outputs"
    )
    assert report["compute"]["note"] == report["api"]["note"] == ""
    assert "messageRetentionSeconds differs from the cloud" in " ".join(run.output.split())
    # Preview-only: no checkpoint, history entry, backup or lock was written.
    assert backend_files(repo) == before
    assert retention != 60
