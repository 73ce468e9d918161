"""Fixtures that run the real layer programs under the Pulumi SDK's mocks, and the Pulumi CLI
double (tests/support/pulumi_cli_double) that the real Automation API path runs against."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.naming import AwsLocation, ResourceNames
from tests.support.pulumi_cli_double import BIN_DIR
from tests.support.pulumi_cli_double.aws_account import ACCOUNT_VARIABLE, Account
from tests.support.pulumi_cli_double.server import DoubleServer
from tooling.build import ensure_built
from tooling.mock_engine import PLACEHOLDER_LOCATION, LayerRun, MockResource, run_all_layers


@pytest.fixture(scope="session", autouse=True)
def function_archives() -> None:
    """What `nox -s build` makes before anything deploys: the layer programs read these
    archives and never build. (Downloads the pinned wheels once, into build/lambda-deps.)"""
    ensure_built()


@pytest.fixture(scope="session")
def chain() -> dict[str, LayerRun]:
    """All five layers, run once in manifest order with default configuration."""
    return run_all_layers()


@pytest.fixture(scope="session")
def names() -> ResourceNames:
    return ResourceNames("dev", PLACEHOLDER_LOCATION)


@pytest.fixture(scope="session")
def location() -> AwsLocation:
    return PLACEHOLDER_LOCATION


def policy_of(resource: MockResource, key: str = "policy") -> dict[str, Any]:
    """A policy document input, parsed; fails with the resource's name if it is not JSON."""
    raw = resource.inputs[key]
    assert isinstance(raw, str), f"{resource.name}.{key} is not a JSON string: {raw!r}"
    document: dict[str, Any] = json.loads(raw)
    return document


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class PulumiCli:
    """The Pulumi CLI double, first on PATH for one test, and its file backend."""

    backend: Path
    home: Path
    account: Path

    @property
    def backend_url(self) -> str:
        return f"file://{self.backend}"

    def cloud(self) -> Account:
        """The double's AWS account: what a test changes or deletes behind Pulumi's back."""
        return Account.at(self.account)

    def run(
        self, *args: str, cwd: Path, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`pulumi <args>` run as a user runs it: the executable found on PATH."""
        executable = shutil.which("pulumi")
        assert executable is not None
        return subprocess.run(  # noqa: S603 (the double, found on PATH)
            [executable, *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )


@pytest.fixture
def pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PulumiCli]:
    """Put the CLI double first on PATH, served from this process (see server.py), with a
    file backend, PULUMI_HOME and the double's AWS account memory in temporary directories.

    The interpreter's own directory follows it on PATH, so `#!/usr/bin/env python3` finds a
    Python with the suite's packages when the executable runs a command itself.
    """
    socket_dir = Path(tempfile.mkdtemp(prefix="pulumi-double-"))
    server = DoubleServer(socket_dir / "cli.sock")
    server.start()
    backend = tmp_path / "backend"
    backend.mkdir()
    cli = PulumiCli(backend, tmp_path / "pulumi-home", tmp_path / "aws-account.json")
    path = os.pathsep.join([str(BIN_DIR), str(Path(sys.executable).parent), os.environ["PATH"]])
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv("PULUMI_DOUBLE_SOCKET", str(server.socket_path))
    monkeypatch.setenv("PULUMI_HOME", str(cli.home))
    monkeypatch.setenv(ACCOUNT_VARIABLE, str(cli.account))
    for variable in (
        "PULUMI_BACKEND_URL",
        "PULUMI_ACCESS_TOKEN",
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
        "PULUMI_SKIP_CONFIRMATIONS",
    ):
        monkeypatch.delenv(variable, raising=False)
    try:
        yield cli
    finally:
        server.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
