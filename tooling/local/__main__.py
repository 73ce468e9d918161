"""`nox -s local`: run the application on this machine; `-- --smoke` runs the verify journey.

While it runs, build/local/environment.json tells `nox -s verify -- --target local` where
everything is (the layers' outputs with the local endpoints); `--smoke` runs that same journey
against the environment it starts, then stops it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from rich.console import Console
from rich.panel import Panel

from tooling.local.api_gateway import DEFAULT_API_PORT
from tooling.local.emulator import DEFAULT_EMULATOR_PORT, PortInUseError, moto_server
from tooling.local.environment import LocalEnvironment, local_environment
from tooling.verify.deployment import LOCAL_ENVIRONMENT_FILE, write_local_environment
from tooling.verify.journey import run_verify

# The local processor runs in-process and starts at once: a result takes well under a second.
SMOKE_TIMEOUT_S = 30.0


def _instructions(env: LocalEnvironment) -> str:
    resources = env.resources
    bucket, endpoint, api = resources.bucket_name, env.emulator_url, env.api_url
    sign = "curl -s --aws-sigv4 aws:amz:us-east-1:execute-api --user local:local"
    aws = "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --region us-east-1"
    body = '{"name": "demo", "data": {"n": 1}}'
    return "\n".join(
        [
            f"API (stage prod):   {api}",
            f"AWS emulator:       {endpoint}  (moto; any credentials, region us-east-1)",
            f"Upload bucket:      {bucket}  (uploads/ triggers the processor)",
            f"Dead-letter queue:  {resources.dead_letter_queue_url}",
            "",
            "Try it from another terminal:",
            f"  curl -s {api}/health",
            f"  {aws} --endpoint-url {endpoint} \\",
            f"      s3 cp README.md s3://{bucket}/uploads/readme.md",
            f"  {sign} {api}/objects/uploads%2Freadme.md",
            f"  {sign} -H 'Content-Type: application/json' \\",
            f"      -d '{body}' {api}/process",
            "",
            f"  python -c \"import boto3; s3 = boto3.client('s3', endpoint_url='{endpoint}',",
            "      region_name='us-east-1', aws_access_key_id='local',",
            "      aws_secret_access_key='local'); print(s3.list_buckets()['Buckets'])\"",
            "",
            "Routes other than GET /health need a SigV4 signature (any credentials): the local API",
            "checks that a caller signs, as the deployed API does, but does not verify signatures.",
            "Object keys go in the path percent-encoded, `/` included (urllib.parse.quote(key,",
            "safe='')), as a REST API delivers them to the function.",
            "",
            "Check it end to end from another terminal: nox -s verify -- --target local",
            "Press Ctrl-C to stop; everything is in memory and is gone when it stops.",
        ]
    )


def _emulator_only(port: int, out: Console) -> int:
    """Only the emulator, empty, for `nox -s deploy_all` (the local target) to deploy into."""
    with moto_server(port) as emulator:
        out.print(
            Panel(
                "\n".join(
                    [
                        f"AWS emulator: {emulator.endpoint_url} (moto, empty)",
                        "",
                        "Deploy every layer into it from another terminal:",
                        "  nox -s deploy_all"
                        if port == DEFAULT_EMULATOR_PORT
                        else f"  AWS_ENDPOINT_URL={emulator.endpoint_url} nox -s deploy_all",
                        "",
                        "An emulator runs no Lambda code and serves no API stage:",
                        "`nox -s local` runs the application itself. Ctrl-C stops the emulator",
                        "and its resources are gone (the local stacks' state then refers to",
                        "nothing: run `nox -s destroy_all` first, or delete .pulumi-state/).",
                    ]
                ),
                title="Emulator running",
            )
        )
        threading.Event().wait()
    return 0


def _stop_on_terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nox -s local --", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--smoke", action="store_true", help="run the verify journey against it, then stop"
    )
    mode.add_argument(
        "--emulator-only",
        action="store_true",
        help="start only the empty emulator, for `nox -s deploy_all` to deploy into",
    )
    parser.add_argument(
        "--api-port", type=int, default=DEFAULT_API_PORT, help="0 picks a free port"
    )
    parser.add_argument(
        "--emulator-port", type=int, default=DEFAULT_EMULATOR_PORT, help="0 picks a free port"
    )
    args = parser.parse_args(argv)
    out = console or Console()
    # The handlers log JSON lines to stdout; keep third-party chatter out of them.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        if args.emulator_only:
            return _emulator_only(args.emulator_port, out)
        with local_environment(api_port=args.api_port, emulator_port=args.emulator_port) as env:
            if args.smoke:
                checklist = run_verify(env.deployment(), timeout_s=SMOKE_TIMEOUT_S, poll_s=0.2)
                checklist.print(out)
                return 0 if checklist.passed else 1
            write_local_environment(
                LOCAL_ENVIRONMENT_FILE,
                stack=env.resources.names.environment,
                emulator_url=env.emulator_url,
                outputs=env.outputs(),
                version=env.resources.api_environment["APP_VERSION"],
            )
            # `kill` (SIGTERM) stops it as Ctrl-C does, so it removes what it published.
            previous = signal.signal(signal.SIGTERM, _stop_on_terminate)
            try:
                out.print(Panel(_instructions(env), title="Local environment running"))
                threading.Event().wait()
            finally:
                signal.signal(signal.SIGTERM, previous)
                # Nothing answers there any more: verify must not find it.
                LOCAL_ENVIRONMENT_FILE.unlink(missing_ok=True)
    except PortInUseError as busy:
        out.print(f"[red]error:[/] {busy}", highlight=False)
        return 2
    except KeyboardInterrupt:
        out.print("Stopped; the emulator's data is gone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
