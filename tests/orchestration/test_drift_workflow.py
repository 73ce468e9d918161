"""The scheduled drift workflow: daily and by hand, OIDC and pinned actions as in layers.yml, a
drift command the orchestrator accepts, a failed job on drift and the report kept."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.manifest import REPO_ROOT
from tooling.orchestrator.cli import build_parser

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
DRIFT = WORKFLOWS / "drift.yml"
BASH = shutil.which("bash") or "/bin/bash"


def _load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _job() -> dict[str, Any]:
    job: dict[str, Any] = _load(DRIFT)["jobs"]["drift"]
    return job


def _steps() -> dict[str, dict[str, Any]]:
    return {step.get("name", step.get("uses", "")): step for step in _job()["steps"]}


def _refresh_step() -> dict[str, Any]:
    return _steps()["Refresh every layer preview-only"]


def test_it_runs_daily_and_on_demand() -> None:
    # PyYAML reads the bare key `on` as the boolean True.
    triggers = _load(DRIFT)[True]
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    (schedule,) = triggers["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month, weekday) == ("*", "*", "*")
    assert minute.isdigit() and hour.isdigit()


def test_aws_is_reached_through_oidc_with_the_deploy_workflows_pinned_action() -> None:
    text = DRIFT.read_text(encoding="utf-8")
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert _load(DRIFT)["permissions"] == {}
    assert _job()["permissions"] == {"contents": "read", "id-token": "write"}
    names = list(_steps())
    assume = _steps()["Assume the deploy role (OIDC)"]
    assert assume["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert names.index("Assume the deploy role (OIDC)") < names.index(
        "Refresh every layer preview-only"
    )
    # The same actions, at the same commits, as the deploy workflow.
    deploy_steps = _load(WORKFLOWS / "layers.yml")["jobs"]["layers"]["steps"]
    deploy_uses = {step["uses"] for step in deploy_steps if "uses" in step}
    for step in _job()["steps"]:
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{action} is pinned by {ref!r}"
            assert step["uses"] in deploy_uses, f"{action} differs from layers.yml's pin"
    checkout = next(s for s in _job()["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["persist-credentials"] is False


def test_each_stack_of_the_matrix_runs_nox_drift_on_the_aws_target() -> None:
    assert _job()["strategy"]["fail-fast"] is False
    assert "vars.DRIFT_STACKS" in _job()["strategy"]["matrix"]["stack"]
    step = _refresh_step()
    assert step["env"]["STACK"] == "${{ matrix.stack }}"
    assert step["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    (line,) = [line for line in step["run"].splitlines() if "nox -s drift" in line]
    session_args = line.split(" -- ", 1)[1].replace('"$STACK"', "dev")
    args = build_parser().parse_args(["drift", *shlex.split(session_args)])
    assert (args.command, args.target, args.stack) == ("drift", "aws", "dev")


@pytest.mark.parametrize(("code", "annotated"), [(0, False), (4, True), (1, False), (2, False)])
def test_drift_fails_the_job_with_an_annotation_and_other_codes_pass_through(
    tmp_path: Path, code: int, annotated: bool
) -> None:
    # The step's script, with a `python` that answers like `nox -s drift` would.
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(f"#!{BASH}\nexit {code}\n")
    fake.chmod(0o755)
    done = subprocess.run(  # noqa: S603 (bash running the workflow's own step)
        [BASH, "-e", "-c", _refresh_step()["run"]],
        env={"PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "STACK": "dev"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == code
    assert ("::error title=Drift on stack dev::" in done.stdout) is annotated


def test_the_report_is_kept_whatever_happened() -> None:
    kept = _steps()["Keep the drift report"]
    assert kept["if"] == "always()"
    assert kept["with"]["path"] == "build/drift-report.json"
    assert kept["with"]["name"] == "drift-report-${{ matrix.stack }}"
