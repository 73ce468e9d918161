"""`nox -s preflight` end to end on an empty emulator: a table, a JSON report, an exit code."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from rich.console import Console

from shared.manifest import REPO_ROOT
from tooling.local.emulator import moto_server
from tooling.preflight.__main__ import main


@pytest.mark.skipif(
    shutil.which("pulumi") is not None, reason="asserts what happens without the Pulumi CLI"
)
def test_without_the_cli_the_tool_checks_fail_and_the_account_checks_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with moto_server(0) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
        out = io.StringIO()
        code = main(["--target", "local"], console=Console(file=out, width=250))
    text = out.getvalue()
    assert code == 1, text
    report = json.loads((REPO_ROOT / "build" / "preflight-report.json").read_text())
    verdicts = {check["name"]: check["verdict"] for check in report["checks"]}
    assert verdicts["Pulumi CLI"] == "fail"
    assert verdicts["Pulumi backend"] == "skip"
    assert verdicts["AWS account and region"] == "pass"
    assert verdicts["Lambda concurrency"] == "skip"
    for name in ("API Gateway logging role", "bucket names", "function archives"):
        assert verdicts[name] == "pass", (name, text)
    assert "curl -fsSL https://get.pulumi.com" in " ".join(text.split())


def test_a_bad_stack_name_cannot_start() -> None:
    out = io.StringIO()
    assert main(["--target", "local", "--stack", "Not_Valid"], console=Console(file=out)) == 2
    assert "is not 1-12 lowercase letters" in out.getvalue()
