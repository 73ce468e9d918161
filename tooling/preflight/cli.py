"""What the preflight asks the Pulumi CLI, behind an interface a test substitutes.

Only read-only commands are run: `pulumi version`, `pulumi plugin ls --json`, `pulumi whoami
--json` and `pulumi org get-default`, in the target's environment (its backend and passphrase), so a
preflight never creates, selects or changes a stack. Nothing is installed here: a missing CLI is
a failed check whose fix says how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tooling.orchestrator.automation import cli_cache_root, sdk_version

# Seconds a read-only CLI command may take; `whoami` against Pulumi Cloud is a network call.
TIMEOUT_S = 60


@dataclass(frozen=True)
class Identity:
    """Who the CLI is logged in as, and where (`pulumi whoami --json`, as the Automation API's
    `who_am_i` reads it)."""

    user: str
    url: str
    organizations: tuple[str, ...] = ()

    @property
    def self_managed(self) -> bool:
        """A DIY backend (file, S3, GCS, Azure Blob): stacks are `organization/<project>/...`."""
        return self.url.startswith(("file://", "s3://", "gs://", "azblob://"))


class PulumiCli(Protocol):
    def version(self) -> str | None:
        """The CLI's version (without the leading v), or None when there is no CLI."""
        ...

    def plugins(self) -> list[Mapping[str, Any]]:
        """`pulumi plugin ls --json`: name, kind and version of each installed plugin."""
        ...

    def whoami(self) -> Identity:
        """The login; raises CliError when the CLI is not logged in to the backend."""
        ...

    def default_org(self) -> str:
        """`pulumi org get-default`: the login's default organization, as the CLI prints it."""
        ...


class CliError(Exception):
    """A CLI command failed; the message is its first error line."""


class CliMissingError(CliError):
    """There is no Pulumi CLI to ask."""


@dataclass
class InstalledCli:
    """The `pulumi` the orchestrator would use: on PATH, else the one cached under the repo."""

    repo_root: Path
    environment: Mapping[str, str] = field(default_factory=dict)

    def executable(self) -> str | None:
        on_path = shutil.which("pulumi")
        if on_path:
            return on_path
        cached = cli_cache_root(self.repo_root, sdk_version()) / "bin" / "pulumi"
        return str(cached) if cached.exists() else None

    def _run(self, *args: str) -> str:
        executable = self.executable()
        if executable is None:
            raise CliMissingError("the Pulumi CLI is not installed")
        completed = subprocess.run(  # noqa: S603 (a fixed command line, no shell)
            [executable, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env={**os.environ, **self.environment},
            check=False,
        )
        if completed.returncode != 0:
            lines = [line for line in completed.stderr.splitlines() if line.strip()]
            raise CliError(lines[-1] if lines else f"exit code {completed.returncode}")
        return completed.stdout

    def version(self) -> str | None:
        if self.executable() is None:
            return None
        return self._run("version").strip().removeprefix("v")

    def plugins(self) -> list[Mapping[str, Any]]:
        listed = json.loads(self._run("plugin", "ls", "--json") or "[]")
        return [plugin for plugin in listed if isinstance(plugin, dict)]

    def whoami(self) -> Identity:
        answer = json.loads(self._run("whoami", "--json"))
        return Identity(
            user=str(answer.get("user", "")),
            url=str(answer.get("url", "")),
            organizations=tuple(str(org) for org in answer.get("organizations") or ()),
        )

    def default_org(self) -> str:
        return self._run("org", "get-default").strip()
