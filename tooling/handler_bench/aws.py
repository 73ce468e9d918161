"""AWS for the benchmark: moto's server in a child process, credentials that can reach only it,
and the resources the handlers use, created as the handler tests create them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]

from shared.manifest import REPO_ROOT
from tooling.function_fixtures import (
    LOCATION,
    create_idempotency_table,
    create_secret,
    create_upload_bucket,
)

API_KEY = "bench-api-key"  # a dummy secret for the local moto server only

# tooling.local.emulator's server, in a child process so that its threads and the objects it
# stores stay out of the measuring process; it serves until its stdin closes.
_SERVER_SCRIPT = """
import sys
from tooling.local.emulator import moto_server
with moto_server(port=0) as emulator:
    print(emulator.endpoint_url, flush=True)
    sys.stdin.read()
"""


def dummy_aws_env(endpoint: str | None) -> dict[str, str]:
    """Credentials and region that can only ever reach the local moto server."""
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": LOCATION.region,
        "AWS_REGION": LOCATION.region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


@contextmanager
def moto_server_process() -> Iterator[str]:
    """moto's server in a child process on a free port; yields its endpoint URL."""
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", _SERVER_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=REPO_ROOT,
        env={**os.environ, **dummy_aws_env(None)},
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        if not endpoint.startswith("http://"):
            raise RuntimeError("the moto server did not start (is moto[server] installed?)")
        yield endpoint
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def client(service: str) -> Any:
    """A client of the moto server the environment points at (AWS_ENDPOINT_URL)."""
    return boto3.session.Session().client(service)


def create_resources() -> str:
    """The bucket, table and secret the storage and security layers create; the secret's ARN."""
    create_upload_bucket(client("s3"))
    create_idempotency_table(client("dynamodb"))
    return create_secret(client("secretsmanager"), API_KEY)
