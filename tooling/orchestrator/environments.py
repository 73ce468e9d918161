"""Several environments at once: `deploy-all` and `preview-all` with `--stacks dev,staging,prod`.

An environment is a stack name shared by every layer (the README's "Stacks of one environment
share a name across layers"). Each one gets its own engine and its own Orchestrator, built one
after the other in the calling thread before anything runs: the real engine resolves (and may
install) the Pulumi CLI when it is created, which must not happen several times at once, and a
problem there concerns every environment, so the run stops before starting any (exit 2).

Each environment has its own build directory, `build/environments/<stack>/`, where its run
report and its preflight's report go, so concurrent runs never overwrite each other's files and
`--resume` resumes each environment's own last run. Then each environment's whole chain (the
same deploy_all or preview_all that `--stack` runs, preflight included) runs in a worker
thread, at most `concurrency` at once. Threads suffice: an environment's time is spent waiting
on the Pulumi CLI's processes, and its engine and orchestrator are used by its thread only.

Fail-fast stays per environment: a failed layer stops what is downstream of it in its own
environment only, and a refusal or an error that stops one environment (its preflight failed,
it has nothing to resume) is reported for it while the others carry on.

The combined report (`build/environments/combined-deploy-report.json`, or
`combined-preview-report.json`, and a table) holds each environment's exit code and its own
report. The whole run's exit code is the worst of the environments' codes, in the order
EXIT_PRECEDENCE gives.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from tooling.gitrepo import GitError
from tooling.orchestrator.orchestrator import ExitCode, Orchestrator
from tooling.orchestrator.render import CombinedRenderer, Renderer, RichRenderer
from tooling.orchestrator.report import REPORT_FILES, CombinedReport, EnvironmentResult
from tooling.orchestrator.targets import RefusedError, UnavailableError

DEFAULT_ENVIRONMENT_CONCURRENCY = 3

# Under build/: one directory per environment, and the combined reports beside them (a stack
# name has no dot, so it never collides with a report's file name).
ENVIRONMENTS_DIRNAME = "environments"

# Worst first. A failed layer (1) may have left an environment half-updated, which matters most;
# an environment that could not start (2) and one a guard refused (3) changed nothing, and a
# broken set-up is worse than a guard doing its job; a preview's pending changes (4) are news,
# not a problem; 0 only when every environment succeeded. The same order a single run uses
# where its codes meet (a failure outranks a refusal, and a preview error its changes).
EXIT_PRECEDENCE: tuple[ExitCode, ...] = (
    ExitCode.FAILED,
    ExitCode.UNAVAILABLE,
    ExitCode.REFUSED,
    ExitCode.CHANGES,
    ExitCode.OK,
)

# Given a stack, the renderer its runs draw with and its build directory: its orchestrator.
OrchestratorFactory = Callable[[str, Renderer, Path], Orchestrator]
# Runs one environment's command (deploy_all or preview_all) and returns its exit code.
EnvironmentCommand = Callable[[Orchestrator], int]


def add_options(parser: argparse.ArgumentParser, operation: str) -> None:
    """`--stacks` and `--concurrency` on a command that runs the orchestrator's `operation`."""
    parser.add_argument(
        "--stacks",
        metavar="S1,S2,...",
        help="run several environments at once, each stack's chain in its own thread, "
        "fail-fast per environment, with one combined report (not with --stack)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="with --stacks: environments running at once "
        f"(default {DEFAULT_ENVIRONMENT_CONCURRENCY})",
    )
    parser.set_defaults(environments_operation=operation)


def requested_stacks(args: argparse.Namespace, check: Callable[[str], str]) -> list[str] | None:
    """The stacks `--stacks` names, each checked with `check` (the stack-name rule); None when
    the command runs one stack. UnavailableError (exit 2) on any bad input."""
    if not hasattr(args, "environments_operation"):
        return None  # a command without --stacks (its own --concurrency, if any, is not ours)
    listed: str | None = args.stacks
    concurrency: int | None = args.concurrency
    if listed is None:
        if concurrency is not None:
            raise UnavailableError(
                "--concurrency caps how many environments of --stacks run at once; name them "
                "with --stacks, for example --stacks dev,staging,prod --concurrency 2."
            )
        return None
    if args.stack is not None:
        raise UnavailableError(
            f"--stack {args.stack} and --stacks {listed} are mutually exclusive: use --stack for "
            "one environment, or list every environment in --stacks."
        )
    stacks = [name.strip() for name in listed.split(",")]
    if not all(stacks):
        raise UnavailableError(
            f"--stacks {listed!r} has an empty stack name: list the stacks separated by commas "
            "and nothing else, for example --stacks dev,staging,prod."
        )
    repeated = sorted({name for name in stacks if stacks.count(name) > 1})
    if repeated:
        raise UnavailableError(
            f"--stacks names {', '.join(repeated)} more than once: two runs of one stack at "
            "the same time would contend for its lock. Name each environment once."
        )
    for name in stacks:
        check(name)
    if concurrency is not None and concurrency < 1:
        raise UnavailableError(
            f"--concurrency {concurrency}: at least one environment must run at a time."
        )
    return stacks


def environments_dir(build_root: Path) -> Path:
    """Where a run over several environments keeps its reports."""
    return build_root / ENVIRONMENTS_DIRNAME


def environment_build_dir(build_root: Path, stack: str) -> Path:
    """An environment's own build directory: its run report and its preflight's go there."""
    return environments_dir(build_root) / stack


def worst_exit_code(codes: Iterable[int]) -> ExitCode:
    """The exit code of a run over several environments: the worst of theirs."""
    present = set(codes)
    for code in EXIT_PRECEDENCE:
        if code in present:
            return code
    return ExitCode.OK


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _run_one(
    stack: str,
    orchestrator: Orchestrator,
    command: EnvironmentCommand,
    error_console: Console,
    clock: Callable[[], float],
) -> EnvironmentResult:
    """One environment's chain; what stops it is reported, never raised to the others."""
    started = clock()
    problem = ""
    try:
        code = command(orchestrator)
    except RefusedError as refusal:
        code, problem = ExitCode.REFUSED, f"refused: {refusal}"
    except UnavailableError as error:
        code, problem = ExitCode.UNAVAILABLE, f"error: {error}"
    except GitError as error:
        code, problem = ExitCode.FAILED, f"error: {error}"
    except Exception as error:
        # A bug met in one environment must not lose the others' reports: it fails this one.
        code, problem = ExitCode.FAILED, f"unexpected {type(error).__name__}: {error}"
        error_console.print(traceback.format_exc(), markup=False, highlight=False)
    if problem:
        error_console.print(f"{stack} · {problem}", markup=False, highlight=False)
    report = orchestrator.last_report
    path = orchestrator.build_dir / REPORT_FILES[report.operation] if report else None
    return EnvironmentResult(
        stack,
        int(code),
        duration_s=clock() - started,
        report=report,
        report_path=str(path) if path else None,
        problem=problem,
    )


def run_environments(
    stacks: Sequence[str],
    *,
    operation: str,
    command: EnvironmentCommand,
    orchestrator_for: OrchestratorFactory,
    build_root: Path,
    concurrency: int,
    console: Console,
    error_console: Console | None = None,
    renderer: CombinedRenderer | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CombinedReport:
    """Run `command` on every stack, at most `concurrency` at once; save and draw the combined
    report. The stacks are checked already (requested_stacks)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    # Every line of a run is prefixed with its stack, padded so the columns line up; no live
    # spinner, since rich shows one live display at a time on a console.
    width = max(len(stack) for stack in stacks)
    orchestrators = {
        stack: orchestrator_for(
            stack,
            RichRenderer(console, label=stack.ljust(width), spinner=False),
            environment_build_dir(build_root, stack),
        )
        for stack in stacks
    }
    first = orchestrators[stacks[0]]
    combined = CombinedReport(
        operation=operation,
        target=first.target.name,
        commit=first.repo.head(),
        concurrency=concurrency,
        layers=tuple(first.manifest.order),
        started_at=_now(),
    )
    errors = error_console or console
    started = clock()
    with ThreadPoolExecutor(
        max_workers=min(concurrency, len(stacks)), thread_name_prefix="environment"
    ) as pool:
        futures = [
            pool.submit(_run_one, stack, orchestrators[stack], command, errors, clock)
            for stack in stacks
        ]
        try:
            wait(futures)
        except KeyboardInterrupt:
            # Environments not started yet never start; the running ones see the interrupt
            # through their CLI processes, and leaving the pool waits for them.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    combined.environments = [future.result() for future in futures]
    combined.duration_s = clock() - started
    combined.finished_at = _now()
    combined.exit_code = worst_exit_code(result.exit_code for result in combined.environments)
    path = combined.save(environments_dir(build_root))
    (renderer or RichRenderer(console)).environments(combined, path)
    return combined
