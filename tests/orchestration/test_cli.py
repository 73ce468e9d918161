"""The command line: exit codes end to end, the one-paragraph refusals, changed-layers."""

from __future__ import annotations

import io
import json
import shutil
import urllib.error
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from rich.console import Console

from shared.manifest import MANIFEST
from tests.orchestration.conftest import CliRun, SmallRepo, console_text, git, make_console
from tooling.orchestrator import automation
from tooling.orchestrator.cli import build_parser, main
from tooling.orchestrator.engine import Engine
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import ExitCode, Preflight
from tooling.orchestrator.targets import Target


class Run(CliRun):
    """Calls main() against an in-memory engine in a throwaway git repository."""

    def __init__(self, root: Path, engine: InMemoryEngine, emulator_url: str) -> None:
        super().__init__(root, emulator_url)
        self.engine = engine
        self.targets: list[Target] = []
        self.policy_packs: list[Sequence[str]] = []
        # (layers, refuse) of each preflight the run asked for (it reaches no AWS here).
        self.preflights: list[tuple[list[str], bool]] = []

    def factory(self, target: Target, stack: str, policy_packs: Sequence[str]) -> Engine:
        self.targets.append(target)
        self.policy_packs.append(policy_packs)
        return self.engine

    def preflight(self, target: Target, stack: str, console: Console, root: Path) -> Preflight:
        def record(layers: Sequence[str], *, refuse: bool) -> None:
            self.preflights.append((list(layers), refuse))

        return record


@pytest.fixture
def run(small_repo: SmallRepo, listening_emulator: str) -> Run:
    small_repo.commit("initial")
    return Run(small_repo.root, InMemoryEngine(), listening_emulator)


def test_the_exit_code_scheme_is_the_documented_one() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "UNAVAILABLE": 2,
        "REFUSED": 3,
        "CHANGES": 4,
    }
    epilog = build_parser().epilog or ""
    assert "0 ok / no changes, 1 a layer failed, 2 could not start" in epilog
    assert "3 refused by a guard, 4 preview has changes" in epilog


def test_deploy_all_exit_codes_ok_then_failed(run: Run) -> None:
    assert run("deploy-all") == ExitCode.OK
    run.engine.fail("api", "error: BadRequestException")
    assert run("deploy_all", "--force") == ExitCode.FAILED
    report = json.loads((run.root / "build" / "deploy-report.json").read_text())
    assert report["exit_code"] == 1
    assert "deploy_all · stack local · target local" in run.stdout


def test_preview_all_exit_codes_changes_no_changes_error(run: Run) -> None:
    assert run("preview-all") == ExitCode.CHANGES
    assert run("deploy-all") == ExitCode.OK
    assert run("preview-all") == ExitCode.OK
    run.engine.fail("storage", "error: preview failed", operation="preview")
    assert run("preview-all") == ExitCode.FAILED


def test_drift_exit_codes_none_drift_error(run: Run) -> None:
    assert run("drift") == ExitCode.OK  # nothing deployed: every layer is absent
    assert run("deploy-all") == ExitCode.OK
    assert run("drift", "--concurrency", "2") == ExitCode.OK
    run.engine.delete_out_of_band("storage", "s3_bucket_name")
    assert run("drift") == ExitCode.CHANGES
    report = json.loads((run.root / "build" / "drift-report.json").read_text())
    assert report["exit_code"] == 4
    assert report["layers"][1]["drift"][0]["change"] == "delete"
    run.engine.fail("security", "error: could not read the key", operation="refresh")
    assert run("drift") == ExitCode.FAILED
    # drift needs no preflight: it changes nothing.
    assert run.preflights == [(list(MANIFEST.order), True)]


@pytest.mark.parametrize("value", ["0", "-1", "three"])
def test_drift_concurrency_must_be_a_positive_number(value: str) -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["drift", "--concurrency", value])
    assert raised.value.code == 2


def test_a_guard_refusal_exits_3(run: Run) -> None:
    assert run("deploy", "compute") == ExitCode.REFUSED
    assert "upstream layer security, storage has never been deployed" in run.stdout
    run("deploy-all")
    assert run("destroy", "storage") == ExitCode.REFUSED
    assert run("destroy", "storage", "--cascade") == ExitCode.OK


def test_resume_with_nothing_to_resume_exits_3_with_a_sentence(run: Run) -> None:
    assert run("deploy-all", "--resume") == ExitCode.REFUSED
    assert run.stderr.startswith("refused: there is no previous deploy report")


def test_the_aws_target_without_a_stack_name_exits_2(run: Run) -> None:
    assert run("deploy-all", "--target", "aws") == ExitCode.UNAVAILABLE
    assert "--stack <name>" in run.stderr
    assert run.targets == []


def test_the_aws_target_without_a_passphrase_exits_2_before_any_engine_call(run: Run) -> None:
    code = run("deploy-all", "--target", "aws", "--stack", "prod", environ={})
    assert code == ExitCode.UNAVAILABLE
    assert "PULUMI_CONFIG_PASSPHRASE" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.engine.calls == []


def test_the_aws_target_destroy_needs_yes(run: Run) -> None:
    environ = {"PULUMI_CONFIG_PASSPHRASE": "p", "AWS_ACCESS_KEY_ID": "AKIA"}
    code = run("destroy-all", "--target", "aws", "--stack", "prod", environ=environ)
    assert code == ExitCode.REFUSED
    assert "--yes" in run.stderr
    code = run("destroy-all", "--target", "aws", "--stack", "prod", "--yes", environ=environ)
    assert code == ExitCode.OK
    assert run.targets[-1].name == "aws"


def test_a_bad_stack_name_exits_2(run: Run) -> None:
    assert run("status", "--stack", "Production_Env") == ExitCode.UNAVAILABLE
    assert "lowercase" in run.stderr


def test_an_unknown_layer_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["deploy", "database"])
    assert raised.value.code == 2


def test_rollback_steps_must_be_positive(run: Run) -> None:
    assert run("rollback", "security", "--steps", "0") == ExitCode.UNAVAILABLE


def test_status_and_outputs_exit_0(run: Run) -> None:
    run("deploy-all")
    assert run("status") == ExitCode.OK
    assert run("outputs") == ExitCode.OK
    assert "status · stack local" in run.stdout
    assert "outputs · stack local" in run.stdout


def test_graph_prints_mermaid_and_dot(run: Run) -> None:
    assert run("graph") == ExitCode.OK
    assert "flowchart LR" in run.stdout
    assert "digraph layers {" in run.stdout
    assert run.targets == []  # no engine for an offline command


def test_changed_layers_lists_touched_layers_and_downstream(small_repo: SmallRepo) -> None:
    base = small_repo.commit("base")
    (small_repo.root / "stacks" / "compute" / "extra.py").write_text("X = 1\n")
    git(small_repo.root, "add", "-A")
    git(small_repo.root, "commit", "-q", "-m", "compute change")
    run = Run(small_repo.root, InMemoryEngine(), "http://127.0.0.1:9")

    assert run("changed-layers", "--base", base) == ExitCode.OK
    assert run.stdout.split() == ["compute", "api", "observability"]
    run.out = make_console()
    assert run("changed-layers", "--base", base, "--json") == ExitCode.OK
    assert json.loads(run.stdout) == ["compute", "api", "observability"]


def test_changed_layers_for_a_new_branch_is_every_layer(small_repo: SmallRepo) -> None:
    small_repo.commit("base")
    run = Run(small_repo.root, InMemoryEngine(), "http://127.0.0.1:9")
    assert run("changed-layers", "--base", "0" * 40) == ExitCode.OK
    assert run.stdout.split() == list(MANIFEST.order)


def test_changed_layers_with_an_unknown_base_asks_for_history(small_repo: SmallRepo) -> None:
    small_repo.commit("base")
    run = Run(small_repo.root, InMemoryEngine(), "http://127.0.0.1:9")
    assert run("changed-layers", "--base", "f" * 40) == ExitCode.UNAVAILABLE
    assert "fetch-depth: 0" in run.stderr


def test_missing_cli_stops_with_one_paragraph_and_exit_2(
    small_repo: SmallRepo, monkeypatch: pytest.MonkeyPatch, listening_emulator: str
) -> None:
    """The real engine factory, with no `pulumi` on PATH and no internet for the installer."""
    small_repo.commit("initial")
    real_which = shutil.which

    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name == "pulumi" else real_which(name, *args, **kwargs)

    def offline_install(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(shutil, "which", which)
    monkeypatch.setattr(auto.PulumiCommand, "install", offline_install)
    err = Console(file=io.StringIO(), width=100, force_terminal=False)

    code = main(
        ["deploy-all"],
        repo_root=small_repo.root,
        console=make_console(),
        error_console=err,
        environ={"AWS_ENDPOINT_URL": listening_emulator},
    )

    assert code == ExitCode.UNAVAILABLE
    text = console_text(err)
    paragraph = " ".join(text.split())
    assert text.strip().count("\n\n") == 0
    assert "Traceback" not in text
    assert paragraph.startswith("error: The Pulumi CLI ")
    assert f"--version {automation.sdk_version()}" in paragraph
    assert "https://www.pulumi.com/docs/install/" in paragraph
    assert not (small_repo.root / "build").exists()


def test_the_security_baseline_runs_with_every_engine_command(run: Run, tmp_path: Path) -> None:
    extra = tmp_path / "packs" / "extra"
    extra.mkdir(parents=True)
    (extra / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (run.root / "team-pack").mkdir()
    (run.root / "team-pack" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    assert run("deploy-all") == 0
    assert run("preview-all", "--policy-pack", str(extra)) == ExitCode.OK
    # A relative pack is the repository's: the CLI would resolve it from stacks/<layer>.
    assert run("preview-all", "--policy-pack", "team-pack") == ExitCode.OK
    baseline = str(run.root / "policy")
    assert run.policy_packs == [
        [baseline],
        [baseline, str(extra)],
        [baseline, str((run.root / "team-pack").resolve())],
    ]


def test_a_policy_pack_that_is_not_there_stops_the_run(run: Run) -> None:
    assert run("preview-all", "--policy-pack", "no-such-pack") == ExitCode.UNAVAILABLE
    # The console wraps long lines: compare the words.
    assert "holds no PulumiPolicy.yaml" in " ".join(run.stderr.split())
    assert run.engine.calls == []


def test_the_local_target_refuses_when_no_emulator_answers(run: Run) -> None:
    code = run("deploy-all", environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert code == 2
    assert "nothing answers there" in run.stderr
    assert "nox -s local -- --emulator-only" in run.stderr
    assert run.engine.calls == []


def test_deploys_refuse_on_the_preflight_and_previews_only_report_it(run: Run) -> None:
    assert run("deploy-all") == 0
    assert run("deploy", "security") == 0
    assert run("preview-all") == 0
    assert run.preflights == [
        (list(MANIFEST.order), True),
        (["security"], True),
        (list(MANIFEST.order), False),
    ]


def test_skip_preflight_runs_none(run: Run) -> None:
    assert run("deploy-all", "--skip-preflight") == 0
    assert run.preflights == []
