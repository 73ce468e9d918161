"""Where the layers are deployed: the backend, the environment of every CLI call, the secrets
provider and the configuration each stack gets.

`local` (the default) keeps state in a file backend inside the repository (`.pulumi-state/`,
git-ignored) and encrypts stack secrets with LOCAL_PASSPHRASE, a published constant: it
protects nothing and exists only so the CLI can run unattended against the local emulator
target. `aws` uses whatever backend the user is logged in to (`pulumi login`) and refuses to
run without an explicit passphrase or secrets provider and without AWS credentials.

Neither target writes into the work tree, so an update's recorded commit is exactly what ran:
- the local target runs the CLI in a private workspace per layer under its state directory
  (`.pulumi-state/workspaces/<layer>`: a Pulumi.yaml whose `main` is the layer's program, and
  the stack settings files it creates), so `--stack X` leaves no stacks/*/Pulumi.X.yaml;
- the aws target runs the CLI in stacks/<layer>, where the stacks' committed settings files
  are the configuration; it never creates a stack there (creating one writes its settings file,
  which is the owner's to create and commit) and passes `--region` to each operation in a
  temporary copy of those settings (`--config-file`) instead of rewriting them.

`Target.stack_config` is the extension point for per-target stack configuration: the local
target points the AWS provider at the embedded emulator (`nox -s local -- --emulator-only`,
or any emulator named by AWS_ENDPOINT_URL, such as LocalStack) and refuses to run when nothing
answers there, so the local target can never reach a real AWS account; it also sets what a
throwaway stack needs to be destroyed (EMULATOR_STACK_SETTINGS).

Stacks are named `<org>/<project>/<stack>`; the organization comes from the backend (the
engine asks it, see automation.py), or from `--org` / PULUMI_ORG on Pulumi Cloud.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.manifest import Layer
from tooling.local.emulator import (
    DEFAULT_EMULATOR_URL,
    EMULATED_SERVICES,
    EMULATOR_CREDENTIALS,
    EMULATOR_REGION,
    emulator_answers,
)

LOCAL_STACK = "local"
STATE_DIRNAME = ".pulumi-state"

# Local-only passphrase for the file backend of the `local` target. It is public (it is in
# this file and the README), so it protects nothing: the local target's state and secrets
# are throwaway data for the emulator. Never use the local target for a real account.
LOCAL_PASSPHRASE = "local-target-only-this-protects-nothing"  # noqa: S105 (documented public)

# What a throwaway emulator stack sets so `destroy_all` can delete it: the idempotency table's
# deletion protection would make DeleteTable refuse ("can't be deleted while
# DeletionProtectionEnabled is set to True"), and a bucket holding objects (uploads, results,
# access logs) cannot be deleted without force_destroy. Layer name -> key -> value.
EMULATOR_STACK_SETTINGS: Mapping[str, Mapping[str, str]] = {
    "storage": {"table_deletion_protection": "false", "force_destroy": "true"},
}

PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
AWS_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class UnavailableError(Exception):
    """The orchestrator cannot run here; the message is one paragraph saying what to do."""


class RefusedError(Exception):
    """A guard refused the operation; the message names what blocks it."""


@dataclass(frozen=True)
class ConfigEntry:
    """A stack configuration value the target sets before every operation.

    Its key is a config path (`aws:region`, `aws:endpoints[0].s3`), set with `--path`.
    """

    value: str
    secret: bool = False


def _credentials_from_environment(environ: Mapping[str, str]) -> str | None:
    for variable in AWS_CREDENTIAL_VARIABLES:
        if environ.get(variable):
            return variable
    return None


def probe_aws_credentials(environ: Mapping[str, str]) -> str | None:
    """Where AWS credentials come from (a short description), or None when there are none.

    The environment variables are checked first because they are what CI sets; otherwise
    botocore's own resolution chain (shared files, SSO, credential_process, instance roles)
    is asked, which is the same chain the AWS provider follows.
    """
    found = _credentials_from_environment(environ)
    if found:
        return found
    try:
        import botocore.session
    except ImportError:
        return None
    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        return None
    return str(getattr(credentials, "method", "botocore"))


@dataclass(frozen=True)
class Target:
    """Base of the deployment targets; subclasses say where state and secrets live."""

    repo_root: Path
    # The organization of the stacks when the user named one (--org, PULUMI_ORG); None asks
    # the backend (file and S3 backends always say `organization`).
    org: str | None = None

    name = "target"
    # Destructive commands need --yes when this is True.
    needs_confirmation = True
    # Whether the account behind the target has quotas worth checking before a deploy.
    has_account_limits = True
    # Whether the orchestrator may create a stack that does not exist yet (see the module).
    creates_stacks = False

    def backend_url(self) -> str | None:
        """The backend every CLI call uses; None means the user's current login."""
        return None

    def secrets_provider(self) -> str | None:
        """The secrets provider for `stack init`; None means the CLI's default."""
        return None

    def environment(self) -> dict[str, str]:
        """Variables added to every CLI call's environment."""
        env = {"PULUMI_SKIP_UPDATE_CHECK": "true"}
        backend = self.backend_url()
        if backend:
            env["PULUMI_BACKEND_URL"] = backend
        return env

    def stack_config(self, layer: Layer) -> dict[str, ConfigEntry]:
        """Configuration the target gives the layer's stack (extension point).

        Layers read their upstream stacks in their own stack's organization, which the engine
        tells every program (pulumi.get_organization()), so the organization needs no config.
        """
        return {}

    def workspace_dir(self, layer: Layer) -> Path | None:
        """Where the CLI runs for the layer, when not in stacks/<layer> (None: there)."""
        return None

    def check(self, environ: Mapping[str, str]) -> None:
        """Raise UnavailableError (one paragraph) when this target cannot be used from `environ`."""

    def prepare(self) -> None:
        """Create whatever the backend needs on disk before the first CLI call."""

    def aws_client(self, service: str, region: str | None) -> Any:
        """A boto3 client for the account the stacks deploy to (checks before a deploy)."""
        import boto3

        return boto3.session.Session(region_name=region).client(service)


@dataclass(frozen=True)
class LocalTarget(Target):
    """File backend in the repository, local-only passphrase, AWS at the local emulator."""

    name = "local"
    needs_confirmation = False
    # An emulator has no concurrency quota (moto does not even serve Lambda's GetAccountSettings).
    has_account_limits = False
    # Its stacks are throwaway, and their settings live in its private workspaces.
    creates_stacks = True

    emulator_url: str = DEFAULT_EMULATOR_URL
    emulator_probe: Callable[[str], bool] = field(
        default=emulator_answers, compare=False, repr=False
    )

    @property
    def state_dir(self) -> Path:
        return self.repo_root / STATE_DIRNAME

    def backend_url(self) -> str:
        return f"file://{self.state_dir}"

    def environment(self) -> dict[str, str]:
        env = super().environment()
        # See LOCAL_PASSPHRASE: a documented constant, because this state is throwaway.
        env["PULUMI_CONFIG_PASSPHRASE"] = LOCAL_PASSPHRASE
        # The emulator's dummy credentials and endpoint replace any real ones in the shell, so
        # nothing run for the local target can reach an AWS account.
        env.update(
            AWS_ACCESS_KEY_ID=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            AWS_SECRET_ACCESS_KEY=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            AWS_ENDPOINT_URL=self.emulator_url,
        )
        return env

    def stack_config(self, layer: Layer) -> dict[str, ConfigEntry]:
        config = super().stack_config(layer)
        # The provider refuses to start without a region; the local stack has no
        # Pulumi.local.yaml of its own to carry one.
        config["aws:region"] = ConfigEntry(EMULATOR_REGION)
        for service in EMULATED_SERVICES:
            config[f"aws:endpoints[0].{service}"] = ConfigEntry(self.emulator_url)
        # Emulators have no credential, account or instance-metadata service to consult,
        # and serve buckets by path, not by virtual host.
        for flag in (
            "skipCredentialsValidation",
            "skipRequestingAccountId",
            "skipMetadataApiCheck",
            "s3UsePathStyle",
        ):
            config[f"aws:{flag}"] = ConfigEntry("true")
        config["aws:accessKey"] = ConfigEntry(EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"])
        config["aws:secretKey"] = ConfigEntry(
            EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], secret=True
        )
        for key, value in EMULATOR_STACK_SETTINGS.get(layer.name, {}).items():
            config[f"{layer.project}:{key}"] = ConfigEntry(value)
        return config

    def workspace_dir(self, layer: Layer) -> Path:
        # Under the git-ignored state directory: stack settings files made here never show in
        # `git status`, whatever the stack is called.
        return self.state_dir / "workspaces" / layer.name

    def check(self, environ: Mapping[str, str]) -> None:
        if not self.emulator_probe(self.emulator_url):
            raise UnavailableError(
                f"The local target deploys to the embedded AWS emulator at {self.emulator_url}, "
                "and nothing answers there. Start it in another terminal with "
                "`nox -s local -- --emulator-only` (it keeps running until Ctrl-C), or set "
                "AWS_ENDPOINT_URL to another emulator such as LocalStack. The local target "
                "never deploys to a real AWS account: use --target aws for that."
            )

    def prepare(self) -> None:
        # The file backend does not create its own directory.
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def aws_client(self, service: str, region: str | None) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=EMULATOR_REGION,
        ).client(service, endpoint_url=self.emulator_url)


@dataclass(frozen=True)
class AwsTarget(Target):
    """A real AWS account, through the backend the user is logged in to."""

    name = "aws"
    needs_confirmation = True

    secrets_provider_url: str | None = None
    region: str | None = None
    credentials_probe: Callable[[Mapping[str, str]], str | None] = field(
        default=probe_aws_credentials, compare=False, repr=False
    )

    def secrets_provider(self) -> str | None:
        return self.secrets_provider_url

    def stack_config(self, layer: Layer) -> dict[str, ConfigEntry]:
        config = super().stack_config(layer)
        if self.region:
            config["aws:region"] = ConfigEntry(self.region)
        return config

    def check(self, environ: Mapping[str, str]) -> None:
        if self.secrets_provider_url is None and not any(
            variable in environ for variable in PASSPHRASE_VARIABLES
        ):
            raise UnavailableError(
                "The aws target needs an explicit way to encrypt stack secrets, and none was "
                "given: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the "
                "passphrase of your stacks, or pass --secrets-provider with the provider your "
                "stacks use (for example `default` for Pulumi Cloud, or "
                "`awskms://alias/<key>?region=<region>`). The local-only passphrase of the "
                "local target is never used for a real account."
            )
        if self.credentials_probe(environ) is None:
            raise UnavailableError(
                "The aws target needs AWS credentials and none were found: set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
                "temporary credentials), or AWS_PROFILE for a profile in ~/.aws/config "
                "(run `aws sso login --profile <name>` first for SSO), or run where an "
                "instance or container role is available. Use --target local to deploy to "
                "the local emulator instead."
            )


TARGETS = ("local", "aws")


def make_target(
    name: str,
    repo_root: Path,
    *,
    org: str | None = None,
    secrets_provider: str | None = None,
    region: str | None = None,
    emulator_url: str | None = None,
) -> Target:
    """The target called `name`; `org` defaults to $PULUMI_ORG on aws, else the backend's."""
    if name == "local":
        return LocalTarget(repo_root=repo_root, emulator_url=emulator_url or DEFAULT_EMULATOR_URL)
    if name == "aws":
        return AwsTarget(
            repo_root=repo_root,
            org=org or os.environ.get("PULUMI_ORG") or None,
            secrets_provider_url=secrets_provider,
            region=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        )
    raise ValueError(f"unknown target {name!r}; the targets are: {', '.join(TARGETS)}")
