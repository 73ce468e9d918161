"""The orchestration benchmark (issue 13): `nox -s bench_orchestration`, or
`python -m tooling.orchestrator.bench [--update-seconds S] [--json]`.

It drives the real orchestrator over the in-memory engine, whose every update sleeps
`--update-seconds` (a stand-in for the minutes a real `pulumi up` takes; the default keeps
the whole benchmark under ten seconds), and measures:

(a) a no-op deploy_all right after a full deploy: every fingerprint equals the one its last
    update recorded, so the engine runs no update and the wall time is the orchestration's
    own overhead (target: 0 updates, under 1 s for five layers), against the always-run loop
    a plain `pulumi up` per layer is (measured as deploy_all --force: 5 updates);
(b) a change to the API handler only (compute's code and archives, SimulatedSources.edit):
    1 update when compute's outputs do not change; 2 when they do, since the api layer reads
    one of them (compute's program then exports a new value: InMemoryEngine.set_program);
    observability reads neither, so it never runs;
(c) three environments deployed from scratch with --concurrency 3 (target: within 1.2x the
    wall time of one environment), against the same three one after the other.

Engine updates are counted from the engines' recorded calls, so they are exact and the same on
every machine; wall times are this machine's. The exit code is 1 when an engine-update target
is missed (that is a regression), else 0: a missed wall-time target shows as "no" in the
table but depends on the machine's load, so it is for a person to judge.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.manifest import MANIFEST, REPO_ROOT
from shared.packaging import PackagingError
from tooling.gitrepo import GitRepo
from tooling.orchestrator.environments import run_environments
from tooling.orchestrator.fingerprint import RepoSources, Sources
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import Orchestrator
from tooling.orchestrator.render import Renderer, RichRenderer
from tooling.orchestrator.targets import LocalTarget

DEFAULT_UPDATE_SECONDS = 0.2
# Issue 13's targets.
NO_OP_OVERHEAD_TARGET_S = 1.0
CONCURRENT_RATIO_TARGET = 1.2
ENVIRONMENTS = ("dev", "staging", "prod")
# Columns of the table when the output is not a terminal.
LOG_WIDTH = 120
# The compute output the api layer reads and observability does not (shared/manifest.py).
OUTPUT_API_READS = "api_handler_alias_invoke_arn"


@dataclass(frozen=True)
class Measurement:
    """One row of the table. A baseline has no target: it is measured for comparison."""

    scenario: str
    engine_updates: int
    wall_s: float
    target: str
    expected_updates: int | None = None
    max_wall_s: float | None = None

    @property
    def baseline(self) -> bool:
        return self.expected_updates is None and self.max_wall_s is None

    @property
    def updates_met(self) -> bool:
        return self.expected_updates is None or self.engine_updates == self.expected_updates

    @property
    def met(self) -> bool | None:
        if self.baseline:
            return None
        in_time = self.max_wall_s is None or self.wall_s <= self.max_wall_s
        return self.updates_met and in_time

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "wall_s": round(self.wall_s, 3), "met": self.met}


class Bench:
    """Builds orchestrators over in-memory engines whose updates take `update_seconds`; their
    reports go under `work_dir` and their drawing to a console nobody reads (drawing is part of
    the overhead measured, as on a real run)."""

    def __init__(self, work_dir: Path, update_seconds: float) -> None:
        self.work_dir = work_dir
        self.update_seconds = update_seconds
        self.repo = GitRepo(REPO_ROOT)
        self.target = LocalTarget(repo_root=REPO_ROOT)
        self.console = Console(file=io.StringIO(), width=120)
        self.engines: list[InMemoryEngine] = []

    def engine(self, stack: str) -> InMemoryEngine:
        engine = InMemoryEngine(stack=stack)
        engine.update_seconds = self.update_seconds
        self.engines.append(engine)
        return engine

    def over(
        self,
        engine: InMemoryEngine,
        *,
        sources: Sources | None = None,
        renderer: Renderer | None = None,
        build_dir: Path | None = None,
    ) -> Orchestrator:
        """An orchestrator over `engine`; fingerprints read `sources` (default: simulated)."""
        return Orchestrator(
            engine,
            stack=engine.stack,
            target=self.target,
            repo=self.repo,
            renderer=renderer or RichRenderer(self.console),
            build_dir=build_dir or self.work_dir / engine.stack,
            sources=sources or engine.sources,
        )

    def deployment(
        self, stack: str, renderer: Renderer | None = None, build_dir: Path | None = None
    ) -> tuple[InMemoryEngine, Orchestrator]:
        """A new engine for `stack` and the orchestrator over it."""
        engine = self.engine(stack)
        return engine, self.over(engine, renderer=renderer, build_dir=build_dir)

    def orchestrator(
        self, stack: str, renderer: Renderer | None = None, build_dir: Path | None = None
    ) -> Orchestrator:
        return self.deployment(stack, renderer, build_dir)[1]

    def updates(self) -> int:
        """Engine updates so far, over every engine this bench built."""
        return sum(len(engine.operations("up")) for engine in self.engines)

    def measure(self, action: Callable[[], object]) -> tuple[int, float]:
        """The engine updates `action` ran and its wall time."""
        before = self.updates()
        started = time.perf_counter()
        action()
        return self.updates() - before, time.perf_counter() - started


def no_op_deploy(bench: Bench) -> list[Measurement]:
    """(a) deploy_all right after a full deploy, and the always-run loop (--force)."""
    orchestrator = bench.orchestrator("noop")
    orchestrator.deploy_all()
    updates, wall = bench.measure(orchestrator.deploy_all)
    forced_updates, forced_wall = bench.measure(lambda: orchestrator.deploy_all(force=True))
    layers = len(MANIFEST.order)
    return [
        Measurement(
            "(a) no-op deploy_all after a full deploy",
            updates,
            wall,
            f"0 updates, overhead < {NO_OP_OVERHEAD_TARGET_S:g} s",
            expected_updates=0,
            max_wall_s=NO_OP_OVERHEAD_TARGET_S,
        ),
        Measurement(
            "(a) always-run loop (deploy_all --force)",
            forced_updates,
            forced_wall,
            f"baseline: {layers} updates, every run",
        ),
    ]


CHECKOUT_NO_OP = "(a) no-op, fingerprints of this checkout"


def no_op_on_this_checkout(bench: Bench) -> list[Measurement]:
    """(a) again with the fingerprints a real run computes: every file under the layers' code
    paths hashed and the built archives read, by a new run (which has no digests cached)."""
    target = f"0 updates, overhead < {NO_OP_OVERHEAD_TARGET_S:g} s"
    try:
        for layer in MANIFEST.layers:
            RepoSources(bench.repo).archives(layer)
    except PackagingError:
        # Unbuilt archives make every layer unfingerprintable, so it would always run.
        return [Measurement(CHECKOUT_NO_OP, 0, 0.0, "not measured: build first (nox -s build)")]
    engine = bench.engine("checkout")
    bench.over(engine, sources=RepoSources(bench.repo)).deploy_all()
    updates, wall = bench.measure(bench.over(engine, sources=RepoSources(bench.repo)).deploy_all)
    return [
        Measurement(
            CHECKOUT_NO_OP,
            updates,
            wall,
            target,
            expected_updates=0,
            max_wall_s=NO_OP_OVERHEAD_TARGET_S,
        )
    ]


def handler_change(bench: Bench) -> list[Measurement]:
    """(b) the API handler changes: compute runs, and api only when a value it reads changed."""
    engine, orchestrator = bench.deployment("handler")
    orchestrator.deploy_all()

    # A new handler whose deployment leaves compute's outputs as they were.
    engine.sources.edit("compute", archives=True)
    same_updates, same_wall = bench.measure(orchestrator.deploy_all)

    # A new handler whose deployment changes the value the api layer integrates with. The
    # program export is what changes the output; set_program also edits compute's code.
    current = engine.outputs("compute")
    engine.sources.edit("compute", archives=True)
    engine.set_program(
        "compute",
        {
            **{key: value.value for key, value in current.items()},
            OUTPUT_API_READS: f"{current[OUTPUT_API_READS].value}:2",
        },
        secret=tuple(key for key, value in current.items() if value.secret),
    )
    changed_updates, changed_wall = bench.measure(orchestrator.deploy_all)
    return [
        Measurement(
            "(b) API handler change, same outputs",
            same_updates,
            same_wall,
            "1 update (compute)",
            expected_updates=1,
        ),
        Measurement(
            "(b) API handler change, api's input changed",
            changed_updates,
            changed_wall,
            "2 updates (compute, api)",
            expected_updates=2,
        ),
    ]


def environments(bench: Bench) -> list[Measurement]:
    """(c) three environments from scratch: one alone, all three at once, one after another."""
    layers = len(MANIFEST.order)
    single = bench.orchestrator("single")
    one_updates, one_wall = bench.measure(single.deploy_all)

    def deploy(stacks: Sequence[str], concurrency: int, run_dir: Path) -> None:
        run_environments(
            stacks,
            operation="deploy_all",
            command=lambda orchestrator: orchestrator.deploy_all().exit_code,
            orchestrator_for=bench.orchestrator,
            build_root=run_dir,
            concurrency=concurrency,
            console=bench.console,
        )

    count = len(ENVIRONMENTS)
    together_updates, together_wall = bench.measure(
        lambda: deploy(ENVIRONMENTS, count, bench.work_dir / "concurrent")
    )
    apart_updates, apart_wall = bench.measure(
        lambda: deploy(ENVIRONMENTS, 1, bench.work_dir / "sequential")
    )
    within = CONCURRENT_RATIO_TARGET * one_wall
    return [
        Measurement("(c) one environment", one_updates, one_wall, f"reference: {layers} updates"),
        Measurement(
            f"(c) {count} environments, --concurrency {count}",
            together_updates,
            together_wall,
            f"<= {CONCURRENT_RATIO_TARGET:g}x one environment ({within:.2f} s)",
            expected_updates=count * layers,
            max_wall_s=within,
        ),
        Measurement(
            f"(c) {count} environments, one after another",
            apart_updates,
            apart_wall,
            f"baseline: ~{count}x one environment",
        ),
    ]


SCENARIOS: tuple[Callable[[Bench], list[Measurement]], ...] = (
    no_op_deploy,
    no_op_on_this_checkout,
    handler_change,
    environments,
)


def run_all(update_seconds: float) -> list[Measurement]:
    """Every scenario, each on engines of its own."""
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-orchestration-") as directory:
        for scenario in SCENARIOS:
            bench = Bench(Path(directory) / scenario.__name__, update_seconds)
            measurements.extend(scenario(bench))
    return measurements


def no_op_line(measurements: Sequence[Measurement]) -> str:
    """The summary line: the no-op deploy_all against the always-run loop."""
    no_op, always = measurements[0], measurements[1]
    return (
        f"no-op deploy_all: {no_op.engine_updates} engine updates, {no_op.wall_s:.2f} s "
        f"(always-run loop: {always.engine_updates} updates, {always.wall_s:.2f} s)"
    )


def table(measurements: Sequence[Measurement], update_seconds: float) -> Table:
    result = Table(
        title=f"orchestration benchmark · in-memory engine · {update_seconds:g} s per update",
        title_justify="left",
    )
    result.add_column("scenario", no_wrap=True)
    result.add_column("engine updates", justify="right")
    result.add_column("wall time", justify="right")
    result.add_column("target", no_wrap=True)
    result.add_column("met?")
    for row in measurements:
        met = row.met
        result.add_row(
            row.scenario,
            str(row.engine_updates),
            f"{row.wall_s:.2f} s",
            row.target,
            Text("-", style="dim")
            if met is None
            else Text("yes", style="green")
            if met
            else Text("no", style="bold red"),
        )
    return result


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tooling.orchestrator.bench",
        description="Engine updates and wall time of change-aware deploys (issue 13).",
    )
    parser.add_argument(
        "--update-seconds",
        type=float,
        default=DEFAULT_UPDATE_SECONDS,
        metavar="S",
        help=f"simulated duration of one engine update (default {DEFAULT_UPDATE_SECONDS:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args(argv)
    if args.update_seconds < 0:
        parser.error("--update-seconds cannot be negative")
    out = console or Console()
    if console is None and not out.is_terminal:
        # A log or a pasted table is read later: 80 columns would fold every scenario's name.
        out = Console(width=LOG_WIDTH)
    measurements = run_all(args.update_seconds)
    if args.json:
        document = {
            "update_seconds": args.update_seconds,
            "summary": no_op_line(measurements),
            "measurements": [row.to_json() for row in measurements],
        }
        out.print(json.dumps(document, indent=2), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(table(measurements, args.update_seconds))
        out.print(no_op_line(measurements), markup=False, highlight=False)
    return 0 if all(row.updates_met for row in measurements) else 1


if __name__ == "__main__":
    sys.exit(main())
