"""The GitHub Actions workflow calls commands the orchestrator has, with options it accepts."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from shared.manifest import REPO_ROOT
from tooling.orchestrator.cli import build_parser
from tooling.preflight.__main__ import build_parser as build_preflight_parser
from tooling.verify.__main__ import build_parser as build_verify_parser

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "layers.yml"
# What the workflow's variables hold at run time, for parsing its command lines.
SAMPLE_ENV = {"$PULUMI_STACK": "dev", "$LAYERS": "storage compute", '"$BASE"': "0" * 40}


def _workflow() -> dict[Any, Any]:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow()["jobs"]["layers"]["steps"]
    return steps


def _orchestrator_commands() -> list[list[str]]:
    commands = []
    for step in _steps():
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            if "tooling.orchestrator" not in line:
                continue
            command = line.split("-m tooling.orchestrator", 1)[1]
            command = re.sub(r"\)\"$", "", command.strip())
            for variable, value in SAMPLE_ENV.items():
                command = command.replace(variable, value)
            commands.append(shlex.split(command.replace('"', "")))
    return commands


def test_it_runs_on_pull_requests_and_on_pushes_to_main() -> None:
    # PyYAML reads the bare key `on` as the boolean True.
    triggers = _workflow()[True]
    assert set(triggers) == {"pull_request", "push"}
    assert triggers["push"]["branches"] == ["main"]
    for paths in (triggers["pull_request"]["paths"], triggers["push"]["paths"]):
        assert {"stacks/**", "shared/**", "pyproject.toml", "lambdas/**"} <= set(paths)


def test_every_orchestrator_command_in_it_parses() -> None:
    commands = _orchestrator_commands()
    assert [command[0] for command in commands] == ["changed-layers", "preview-all", "deploy-all"]
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        if args.command != "changed-layers":
            assert (args.target, args.stack) == ("aws", "dev")
            assert args.layers == ["storage", "compute"]


def test_preview_treats_pending_changes_as_success_and_deploy_runs_only_on_push() -> None:
    steps = {step.get("name"): step for step in _steps()}
    preview = steps["Preview the touched layers"]
    deploy = steps["Deploy the touched layers in order"]
    assert "github.event_name == 'pull_request'" in preview["if"]
    assert '"$code" -eq 4' in preview["run"]
    assert "github.event_name == 'push'" in deploy["if"]
    for step in (preview, deploy):
        assert set(step["env"]) >= {"PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"}
        assert step["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


def test_aws_is_reached_through_oidc_with_no_stored_keys() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    job = _workflow()["jobs"]["layers"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert _workflow()["permissions"] == {}
    steps = {step.get("name"): index for index, step in enumerate(_steps())}
    assume = _steps()[steps["Assume the deploy role (OIDC)"]]
    assert assume["uses"].startswith("aws-actions/configure-aws-credentials@")
    assert assume["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    # The role is assumed before anything talks to AWS.
    assert (
        steps["Assume the deploy role (OIDC)"]
        < steps["Preflight the account for the touched layers"]
    )


def test_every_action_is_pinned_by_commit_and_checkout_keeps_no_credentials() -> None:
    for step in _steps():
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert re.fullmatch(r"[0-9a-f]{40}", ref), (
                f"{action} is pinned by {ref!r}, not a commit"
            )
    checkout = next(
        step for step in _steps() if step.get("uses", "").startswith("actions/checkout@")
    )
    assert checkout["with"]["persist-credentials"] is False


def test_the_archives_are_built_once_kept_and_then_deployed() -> None:
    steps = {step.get("name"): index for index, step in enumerate(_steps())}
    build = _steps()[steps["Build the function archives once"]]
    assert build["run"] == ".venv/bin/python -m tooling build"
    kept = _steps()[steps["Keep the archives that are deployed"]]
    assert kept["with"]["path"] == "build/lambda/*.zip"
    assert steps["Build the function archives once"] < steps["Preview the touched layers"]
    assert steps["Build the function archives once"] < steps["Deploy the touched layers in order"]


def _commands_of(module: str) -> list[tuple[int, list[str]]]:
    """(step index, argv) of every `python -m <module>` line in the workflow."""
    found = []
    for index, step in enumerate(_steps()):
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            if f"-m {module}" not in line:
                continue
            command = line.split(f"-m {module}", 1)[1]
            for variable, value in SAMPLE_ENV.items():
                command = command.replace(variable, value)
            found.append((index, shlex.split(command.replace('"', ""))))
    return found


def test_the_preflight_runs_before_previews_and_deploys_and_verify_after_deploys() -> None:
    (preflight,) = _commands_of("tooling.preflight")
    (verify,) = _commands_of("tooling.verify")
    steps = {argv[0]: index for index, argv in _commands_of("tooling.orchestrator") if argv}
    assert preflight[0] < steps["preview-all"] < steps["deploy-all"] < verify[0]
    preflight_args = build_preflight_parser().parse_args(preflight[1])
    assert (preflight_args.target, preflight_args.stack) == ("aws", "dev")
    assert preflight_args.layers == ["storage", "compute"]
    verify_args = build_verify_parser().parse_args(verify[1])
    assert (verify_args.target, verify_args.stack) == ("aws", "dev")
    deploy = next(
        argv for _, argv in _commands_of("tooling.orchestrator") if argv[0] == "deploy-all"
    )
    # The preflight already ran in its own step with the same layers.
    assert "--skip-preflight" in deploy
    verify_step = _steps()[verify[0]]
    assert verify_step["if"] == "github.event_name == 'push' && steps.changed.outputs.layers != ''"
