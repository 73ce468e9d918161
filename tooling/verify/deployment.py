"""A deployed environment as the verify journey reaches it: the layers' outputs and a way in.

Every endpoint and name the journey uses comes from the layers' outputs (the keys
shared/manifest.py promises), never from configuration typed a second time: on the aws target
from the stacks themselves, through the orchestrator's engine; on the local target from the file
`nox -s local` writes while it runs (build/local/environment.json), which holds the outputs the
five programs export with the local environment's own endpoints in place of AWS's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials

from shared.manifest import MANIFEST, REPO_ROOT
from shared.naming import LIVE_ALIAS
from tooling.api_client import EMULATOR_SIGNER
from tooling.local.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION, emulator_answers
from tooling.orchestrator.engine import Engine

# Written by `nox -s local` while it runs, removed when it stops.
LOCAL_ENVIRONMENT_FILE = REPO_ROOT / "build" / "local" / "environment.json"

# What the local environment does not run, by the name of the journey step that needs it.
LOCAL_NOT_EMULATED = frozenset({"WAF on the stage"})


class DeploymentUnavailableError(Exception):
    """The environment to verify cannot be reached; the message says what to do."""


@dataclass
class Deployment:
    target: str
    stack: str
    # layer -> output key -> value, as the stacks export them
    outputs: Mapping[str, Mapping[str, Any]]
    aws: Callable[[str], Any]
    # Credentials and region that sign the API calls (the caller's own on AWS).
    signer: tuple[Credentials, str]
    # The code version GET /health must report: the live alias's code, or the local build's.
    expected_version: Callable[[], str]
    not_emulated: frozenset[str] = field(default_factory=frozenset)

    def output(self, key: str) -> Any:
        """An output by its manifest key, from the layer that promises it."""
        layer = MANIFEST.producer_of(key).name
        try:
            return self.outputs[layer][key]
        except KeyError:
            raise DeploymentUnavailableError(
                f"the {layer} layer of stack {self.stack!r} exports no {key!r}: is it deployed? "
                f"(nox -s status -- --stack {self.stack})"
            ) from None


def version_of_code_sha256(code_sha256: str) -> str:
    """The version the API handler reports for the code Lambda holds.

    GET /health reports APP_VERSION, the first 12 hex digits of the archive's SHA-256
    (stacks/compute); Lambda reports the same digest of the deployed zip as base64 CodeSha256.
    """
    return base64.b64decode(code_sha256).hex()[:12]


def aws_deployment(engine: Engine, stack: str, region: str | None) -> Deployment:
    """The environment `stack` of the account the caller's credentials reach."""
    outputs = {
        layer: {key: value.value for key, value in engine.outputs(layer).items()}
        for layer in MANIFEST.order
    }
    missing = [layer for layer, values in outputs.items() if not values]
    if missing:
        raise DeploymentUnavailableError(
            f"stack {stack!r} has no outputs in layer(s) {', '.join(missing)}: deploy them first "
            f"(nox -s deploy_all -- --stack {stack} --target aws)"
        )
    session = boto3.session.Session(region_name=region)
    credentials = session.get_credentials()
    if credentials is None:
        raise DeploymentUnavailableError(
            "verify signs its API calls with your AWS credentials and none were found: set "
            "AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    signing_region = session.region_name or "us-east-1"

    def expected_version() -> str:
        client = session.client("lambda")
        function = outputs["compute"]["api_handler_function_name"]
        alias = client.get_alias(FunctionName=function, Name=LIVE_ALIAS)
        configuration = client.get_function_configuration(
            FunctionName=function, Qualifier=alias["FunctionVersion"]
        )
        return version_of_code_sha256(configuration["CodeSha256"])

    return Deployment(
        target="aws",
        stack=stack,
        outputs=outputs,
        aws=session.client,
        signer=(credentials.get_frozen_credentials(), signing_region),
        expected_version=expected_version,
    )


def write_local_environment(
    path: Path, *, stack: str, emulator_url: str, outputs: Mapping[str, Any], version: str
) -> Path:
    """What a running `nox -s local` tells `nox -s verify -- --target local`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "stack": stack,
        "emulator_url": emulator_url,
        "api_handler_version": version,
        "outputs": outputs,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def local_deployment(path: Path | None = None) -> Deployment:
    """The environment a running `nox -s local` serves."""
    path = path or LOCAL_ENVIRONMENT_FILE
    if not path.exists():
        raise DeploymentUnavailableError(
            f"no local environment is running ({path} is absent): start one with `nox -s local` "
            "in another terminal, then run `nox -s verify -- --target local` again"
        )
    document = json.loads(path.read_text(encoding="utf-8"))
    if not emulator_answers(document["emulator_url"]):
        raise DeploymentUnavailableError(
            f"{path} names an environment at {document['emulator_url']}, but nothing answers "
            "there any more (the `nox -s local` that wrote it was killed): start it again"
        )
    return local_deployment_from(
        document["stack"],
        document["emulator_url"],
        document["outputs"],
        document["api_handler_version"],
    )


def local_deployment_from(
    stack: str, emulator_url: str, outputs: Mapping[str, Mapping[str, Any]], version: str
) -> Deployment:
    session = boto3.session.Session(
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=EMULATOR_REGION,
    )
    return Deployment(
        target="local",
        stack=stack,
        outputs=outputs,
        aws=lambda service: session.client(service, endpoint_url=emulator_url),
        signer=EMULATOR_SIGNER,
        expected_version=lambda: version,
        not_emulated=LOCAL_NOT_EMULATED,
    )
