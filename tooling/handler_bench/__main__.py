"""`nox -s bench` (`python -m tooling.handler_bench`): run every measure, print the table."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from rich.console import Console

import tooling.handler_bench
from shared.naming import UPLOAD_PREFIX
from tooling.function_fixtures import (
    NAMES,
    api_environment,
    api_event,
    lambda_context,
    object_path,
    processor_environment,
)
from tooling.handler_bench import aws, cold_start, latency, memory, processor
from tooling.handler_bench.report import Report, machine, render, to_json
from tooling.local.functions import load_handler, temporary_environment

MIB = memory.MIB


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    doc = tooling.handler_bench.__doc__ or ""
    parser = argparse.ArgumentParser(prog="handler_bench", description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds (default 40)")
    parser.add_argument(
        "--block", type=int, default=50, help="calls per route per round (default 50)"
    )
    parser.add_argument("--objects", type=int, default=200, help="small objects (default 200)")
    parser.add_argument("--object-bytes", type=int, default=1024, help="small object size")
    parser.add_argument("--large-mib", type=int, default=256, help="large object size in MiB")
    parser.add_argument("--skip-large", action="store_true", help="skip the large object")
    parser.add_argument("--cold-runs", type=int, default=7, help="fresh processes per import")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (default: report)"
    )
    return parser.parse_args(argv)


def _load(function: str, environment: dict[str, str]) -> ModuleType:
    """Import a function as tooling.local does; its logs go to os.devnull (Powertools' logger
    keeps the stream it finds at import)."""
    with contextlib.redirect_stdout(_DEVNULL):
        return load_handler(function, environment)


_DEVNULL = Path(os.devnull).open("w")  # noqa: SIM115 (where the handlers print, for the run)


def _run(args: argparse.Namespace, console: Console) -> Report:
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    processor_env = processor_environment()
    with (
        aws.moto_server_process() as endpoint,
        temporary_environment(
            # The processor's environment stays set: it reads some of it (its name) per event.
            {**aws.dummy_aws_env(endpoint), **processor_env}
        ),
    ):
        console.log(f"moto server at {endpoint}")
        secret_arn = aws.create_resources()
        api_env = api_environment(secret_arn)
        api = _load("api_handler", api_env)
        s3_processor = _load("s3_processor", {})

        # A result for GET /objects, written by the processor itself.
        key = f"{UPLOAD_PREFIX}bench/served object.csv"
        s3 = aws.client("s3")
        version = s3.put_object(Bucket=NAMES.upload_bucket, Key=key, Body=b"a,b\n1,2\n")
        with contextlib.redirect_stdout(_DEVNULL):
            s3_processor.lambda_handler(
                processor.upload_event(key, version["VersionId"]),
                lambda_context(NAMES.s3_processor_function),
            )

        console.log("warm latency")
        json_headers = {"Content-Type": "application/json"}
        process_body = json.dumps({"name": "bench", "data": {"a": 1, "b": [1, 2, 3], "c": "x"}})
        block = args.block
        candidates = {
            "floor": latency.Candidate(latency.bare_handler, api_event("GET", "/health"), block),
            "health": latency.Candidate(api.lambda_handler, api_event("GET", "/health"), block),
            "process": latency.Candidate(
                api.lambda_handler,
                api_event("POST", "/process", body=process_body, headers=json_headers),
                block,
            ),
            # GET /objects costs an HTTP round trip to moto per call: fewer keep it short.
            "objects": latency.Candidate(
                api.lambda_handler, api_event("GET", object_path(key)), max(1, block // 10)
            ),
            "not_found": latency.Candidate(api.lambda_handler, api_event("GET", "/nothing"), block),
        }
        with contextlib.redirect_stdout(_DEVNULL):
            benchmarks = latency.interleaved(
                candidates, lambda_context(NAMES.api_handler_function), args.rounds
            )

        console.log(f"processor throughput ({args.objects} objects)")
        with contextlib.redirect_stdout(_DEVNULL):
            throughput = processor.throughput(s3_processor, args.objects, args.object_bytes)

        large = None
        if not args.skip_large:
            console.log(f"{args.large_mib} MiB object (upload, then a fresh process)")
            large = memory.large_object(args.large_mib * MIB, endpoint)

    console.log("cold starts")
    environments = {"api_handler": api_env, "s3_processor": processor_env}
    cold = cold_start.cold_starts(
        args.cold_runs, {**os.environ, **aws.dummy_aws_env(None)}, environments
    )

    report = Report(
        started=started,
        machine=machine(benchmarks["floor"]),
        latency={name: latency.latency(benchmark) for name, benchmark in benchmarks.items()},
        throughput=throughput,
        large=large,
        cold=cold,
    )
    report.judge()
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # Wide enough for one line per measure, also when the output is not a terminal (nox, CI).
    console = Console(width=max(shutil.get_terminal_size(fallback=(140, 40)).columns, 130))
    report = _run(args, console)
    render(report, console)
    if report.missed:
        console.print(f"Targets missed: {', '.join(report.missed)}")
    else:
        console.print("All targets met.")
    if args.json:
        args.json.write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")
    return 1 if args.strict and report.missed else 0


if __name__ == "__main__":
    sys.exit(main())
