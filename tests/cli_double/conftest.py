"""Small Pulumi projects to run the CLI double with, and a way to call it."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PulumiCli

PASSPHRASE = "correct horse battery staple"

PRODUCER = '''
"""A bucket, a table (deletion protection configurable), a Secrets Manager secret (a fixed name
or a prefix) and a secret output; it fails on request."""
import pulumi
import pulumi_aws as aws

config = pulumi.Config()
bucket = aws.s3.Bucket("bucket", bucket=f"producer-{pulumi.get_stack()}")
aws.dynamodb.Table(
    "table",
    name=f"producer-{pulumi.get_stack()}",
    hash_key="id",
    attributes=[{"name": "id", "type": "S"}],
    billing_mode="PAY_PER_REQUEST",
    deletion_protection_enabled=config.get_bool("protect_table") or False,
)
fixed_name = config.get("secret_name")
aws.secretsmanager.Secret(
    "secret",
    name=fixed_name,
    name_prefix=None if fixed_name else f"producer-{pulumi.get_stack()}-",
    recovery_window_in_days=7,
)
if config.get_bool("fail"):
    raise pulumi.RunError("the producer was told to fail")
pulumi.export("bucket_name", bucket.bucket)
pulumi.export("greeting", config.get("greeting"))
pulumi.export("token", pulumi.Output.secret(config.get("token") or "none"))
'''

CONSUMER = '''
"""Reads the producer's bucket name through a StackReference."""
import pulumi
import pulumi_aws as aws

stack = pulumi.get_stack()
producer = pulumi.StackReference("producer", stack_name=f"organization/producer/{stack}")
aws.s3.Bucket("copy", bucket=producer.require_output("bucket_name").apply(lambda n: f"{n}-copy"))
pulumi.export("copied", producer.require_output("bucket_name"))
pulumi.export("token_seen", producer.get_output("token"))
'''


@dataclass
class Project:
    """A project directory and the environment its CLI calls run with."""

    cli: PulumiCli
    directory: Path
    env: dict[str, str]

    def __call__(self, *args: str, **overrides: str) -> Any:
        return self.cli.run(*args, cwd=self.directory, env={**self.env, **overrides})

    def stack(self, name: str = "dev") -> str:
        return f"organization/{self.directory.name}/{name}"

    def settings(self, name: str = "dev") -> str:
        return (self.directory / f"Pulumi.{name}.yaml").read_text(encoding="utf-8")

    def checkpoint(self, name: str = "dev") -> dict[str, Any]:
        path = self.cli.backend / ".pulumi" / "stacks" / self.directory.name / f"{name}.json"
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document


ProjectFactory = Callable[[str, str], Project]


@pytest.fixture
def project(pulumi_cli: PulumiCli, tmp_path: Path) -> ProjectFactory:
    """Write a project (Pulumi.yaml and __main__.py) and return how to run the CLI in it."""

    def make(name: str, program: str) -> Project:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "Pulumi.yaml").write_text(
            textwrap.dedent(
                f"""\
                name: {name}
                runtime: python
                config:
                  greeting:
                    type: string
                    default: hello
                """
            ),
            encoding="utf-8",
        )
        (directory / "__main__.py").write_text(program, encoding="utf-8")
        env = {
            "PULUMI_BACKEND_URL": pulumi_cli.backend_url,
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        }
        return Project(pulumi_cli, directory, env)

    return make


@pytest.fixture
def producer(project: ProjectFactory) -> Project:
    return project("producer", PRODUCER)
