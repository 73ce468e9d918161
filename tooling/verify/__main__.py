"""`nox -s verify -- --stack S [--target aws|local]`: prove a deployed environment works.

Runs the acceptance journey (tooling/verify/journey.py) against the environment `--stack` on the
aws target (its endpoints and names read from the layers' outputs), or against the running
`nox -s local` with `--target local`. Prints one row per step and writes
build/verify-report.json. Exit codes: 0 every step passed (warnings allowed), 1 a step failed,
2 could not start (no CLI or credentials, the environment is not deployed or not running).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from shared.manifest import REPO_ROOT
from tooling.orchestrator.cli import automation_engine, stack_name_of
from tooling.orchestrator.targets import TARGETS, UnavailableError, make_target
from tooling.verify.deployment import (
    Deployment,
    DeploymentUnavailableError,
    aws_deployment,
    local_deployment,
)
from tooling.verify.journey import DEFAULT_TIMEOUT_S, VERIFY_REPORT, run_verify


def _deployment(args: argparse.Namespace) -> Deployment:
    if args.target == "local":
        return local_deployment()
    stack = stack_name_of(args.stack, args.target)
    target = make_target(
        "aws",
        REPO_ROOT,
        org=args.org,
        region=args.region,
        emulator_url=os.environ.get("AWS_ENDPOINT_URL"),
    )
    target.check(os.environ)
    engine = automation_engine(target, stack, [])
    return aws_deployment(engine, stack, getattr(target, "region", None))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nox -s verify --", description=__doc__)
    parser.add_argument("--stack", help="the environment (required on the aws target)")
    parser.add_argument("--target", choices=TARGETS, default="local", help="default: local")
    parser.add_argument("--org", help="Pulumi organization of the stacks (default $PULUMI_ORG)")
    parser.add_argument("--region", help="the region the stacks are in (default: AWS_REGION)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for the upload's result (default {DEFAULT_TIMEOUT_S:.0f})",
    )
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = console or Console()
    try:
        deployment = _deployment(args)
    except (UnavailableError, DeploymentUnavailableError) as problem:
        out.print(f"error: {problem}", markup=False, highlight=False)
        return 2
    checklist = run_verify(deployment, timeout_s=args.timeout)
    checklist.print(out, checklist.save(REPO_ROOT / "build" / VERIFY_REPORT))
    return 0 if checklist.passed else 1


if __name__ == "__main__":
    sys.exit(main())
