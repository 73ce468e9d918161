"""`nox -s preflight -- --stack S [--target aws|local]`: check before the first resource is created.

Prints one row per check (pass / warn / fail / skip, with the fix) and writes
build/preflight-report.json. Exit codes: 0 nothing failed (warnings allowed), 1 a check failed,
2 could not start (bad usage). `deploy_all`, `deploy` and `rollback` run the same checks first
and refuse (exit 3) on a failure unless given --skip-preflight; `preview_all` reports them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from shared.manifest import MANIFEST, REPO_ROOT
from tooling.orchestrator.cli import stack_name_of
from tooling.orchestrator.targets import TARGETS, UnavailableError, make_target
from tooling.preflight.checks import PREFLIGHT_REPORT, preflight_context, run_preflight


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nox -s preflight --", description=__doc__)
    parser.add_argument("--stack", help="the environment (default on the local target: local)")
    parser.add_argument("--target", choices=TARGETS, default="local", help="default: local")
    parser.add_argument("--org", help="Pulumi organization of the stacks (default $PULUMI_ORG)")
    parser.add_argument("--region", help="the region to deploy to (default: the stacks')")
    parser.add_argument(
        "--layers", nargs="+", choices=MANIFEST.order, help="only what these layers need"
    )
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = console or Console()
    try:
        stack = stack_name_of(args.stack, args.target)
        target = make_target(
            args.target,
            REPO_ROOT,
            org=args.org,
            region=args.region,
            emulator_url=os.environ.get("AWS_ENDPOINT_URL"),
        )
    except UnavailableError as problem:
        out.print(f"error: {problem}", markup=False, highlight=False)
        return 2
    layers = [MANIFEST.layer(name) for name in args.layers or MANIFEST.order]
    checklist = run_preflight(preflight_context(target, stack, REPO_ROOT, layers))
    checklist.print(out, checklist.save(REPO_ROOT / "build" / PREFLIGHT_REPORT))
    return 0 if checklist.passed else 1


if __name__ == "__main__":
    sys.exit(main())
