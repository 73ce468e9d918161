"""How the orchestrator's runs, reports, status and outputs are drawn.

The orchestrator decides (orchestrator.py, plan.py) and hands what it decided to a `Renderer`:
the plan before a run, progress while each layer runs, the report after it, and the status
and outputs views. `RichRenderer` draws them with rich on a console; a test, or a caller
that wants JSON only, passes another renderer. Nothing here decides anything.

Progress may be reported from several threads at once (drift refreshes layers concurrently):
`start` and `finish` may be called for different layers in any interleaving. Every line is one
`Console.print`, which rich renders and writes under its own lock, so lines never mix; each
engine line carries its layer's name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from shared.manifest import MANIFEST
from tooling.orchestrator.engine import DriftedResource, OutputSink
from tooling.orchestrator.plan import Intent, Plan
from tooling.orchestrator.report import (
    RAN,
    CombinedReport,
    EnvironmentResult,
    LayerResult,
    OutputsView,
    RunReport,
    Status,
    StatusView,
)

STATUS_STYLES: Mapping[Status, str] = {
    Status.SUCCEEDED: "green",
    Status.UNCHANGED: "dim",
    Status.FAILED: "bold red",
    Status.SKIPPED: "yellow",
    Status.REFUSED: "red",
    Status.CHANGES: "cyan",
    Status.WAITING: "yellow",
    Status.NOT_DEPLOYED: "cyan",
    Status.DESTROYED: "magenta",
    Status.ABSENT: "dim",
    Status.IN_SYNC: "green",
    Status.DRIFTED: "bold yellow",
}


class RunProgress(Protocol):
    """Progress of one run: a layer starts (its engine lines go to the sink), then finishes."""

    def start(self, index: int, layer: str) -> OutputSink: ...

    def finish(self, row: LayerResult) -> None: ...


class Renderer(Protocol):
    """What the orchestrator shows; every method only draws."""

    def progress(self, verb: str, total: int) -> AbstractContextManager[RunProgress]:
        """Entered for the length of a run."""
        ...

    def plan(self, plan: Plan) -> None: ...

    def report(self, report: RunReport, path: Path | None) -> None: ...

    def status(self, view: StatusView) -> None: ...

    def outputs(self, view: OutputsView) -> None: ...


class CombinedRenderer(Protocol):
    """Draws the combined report of a run over several environments (environments.py)."""

    def environments(self, report: CombinedReport, path: Path | None) -> None: ...


def format_changes(changes: Mapping[str, int]) -> str:
    """`create 3, update 1` (unchanged resources left out); `none` when nothing changes."""
    if not changes:
        return "-"
    moved = [f"{op} {count}" for op, count in changes.items() if op != "same" and count]
    return ", ".join(moved) if moved else "none"


def format_duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


def describe_drift(resource: DriftedResource) -> str:
    """`aws:sqs/queue:Queue dead-letter-queue: deleted outside Pulumi`, or which properties
    differ."""
    what = f"{resource.type} {resource.name}"
    if resource.change == "delete":
        return f"{what}: deleted outside Pulumi"
    if resource.properties:
        verb = "differs" if len(resource.properties) == 1 else "differ"
        return f"{what}: {', '.join(resource.properties)} {verb} from the cloud"
    return f"{what}: differs from the cloud"


def format_drift(drifted: Sequence[DriftedResource]) -> str:
    return "; ".join(describe_drift(resource) for resource in drifted)


def row_note(row: LayerResult) -> str:
    """The row's note with why it retried, which outputs changed and whether it was carried."""
    parts = [row.note] if row.note else []
    if row.drift:
        parts.insert(0, format_drift(row.drift))
    if row.reason:
        parts.insert(0, f"{'ran' if row.ran else 'not run'}: {row.reason}")
    if row.retried:
        parts.append(f"retried once after {row.retried}")
    if row.outputs_changed:
        parts.append(f"outputs changed: {', '.join(row.outputs_changed)}")
    if row.carried_over:
        parts.append("from the previous run")
    return "; ".join(parts)


def report_table(report: RunReport) -> Table:
    """The report as a rich table."""
    commit = (report.commit or "no commit")[:12]
    table = Table(
        title=f"{report.operation} · stack {report.stack} · target {report.target} · {commit}",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("layer")
    table.add_column("result")
    table.add_column("duration", justify="right")
    table.add_column("resource changes")
    table.add_column("note", overflow="fold")
    for index, row in enumerate(report.layers, start=1):
        table.add_row(
            str(index),
            row.layer,
            Text(row.status.value, style=STATUS_STYLES[row.status]),
            format_duration(row.duration_s)
            if row.status in RAN and row.ran and not row.carried_over
            else "-",
            format_changes(row.resource_changes),
            Text(row_note(row)),
        )
    return table


INTENT_STYLES: Mapping[Intent, str] = {
    Intent.DEPLOY: "bold",
    Intent.CARRIED: "dim",
    Intent.NOT_SELECTED: "dim",
}


def plan_table(plan: Plan) -> Table:
    forced = " · --force" if plan.force else ""
    title = f"plan · {plan.operation} · stack {plan.stack} · target {plan.target}{forced}"
    table = Table(title=title, title_justify="left", min_width=len(title))
    for column in ("layer", "intent", "why"):
        table.add_column(column, overflow="fold")
    for row in plan.layers:
        table.add_row(
            row.layer, Text(row.intent.value, style=INTENT_STYLES[row.intent]), row.reason
        )
    return table


def status_table(view: StatusView) -> Table:
    table = Table(title=f"status · stack {view.stack} · target {view.target}")
    for column in ("layer", "deployed", "last update (UTC)", "operation", "commit", "stale"):
        table.add_column(column, overflow="fold")
    for row in view.layers:
        last = row.last
        stale = "; ".join(str(key) for key in row.stale)
        table.add_row(
            row.layer,
            "yes" if row.deployed else "no",
            last.started_at.strftime("%Y-%m-%d %H:%M") if last else "-",
            Text(f"{last.kind} {last.result}") if last else "-",
            (last.commit or "unrecorded")[:12] if last else "-",
            Text(f"stale: {stale}", style="yellow")
            if stale
            else ("up to date" if row.deployed else "-"),
        )
    return table


def outputs_table(view: OutputsView) -> Table:
    table = Table(title=f"outputs · stack {view.stack} · target {view.target}")
    for column in ("layer", "key", "value", "read by"):
        table.add_column(column, overflow="fold")
    shown = {row.layer for row in view.rows}
    for layer in view.layers:
        if layer not in shown:
            table.add_row(layer, "-", Text("(not deployed)", style="dim"), "")
            continue
        for row in (row for row in view.rows if row.layer == layer):
            value = Text(row.shown) if row.shown is not None else Text("(missing)", style="red")
            table.add_row(layer, row.key, value, ", ".join(row.readers))
    return table


# What an environment's exit code means (ExitCode, orchestrator.py), in the combined table.
EXIT_MEANINGS: Mapping[int, str] = {
    0: "ok",
    1: "failed",
    2: "could not start",
    3: "refused",
    4: "changes",
}
EXIT_STYLES: Mapping[int, str] = {0: "green", 1: "bold red", 2: "red", 3: "red", 4: "cyan"}


def environment_note(result: EnvironmentResult) -> str:
    """Why an environment stopped: its refusal or error, else its first failed or refused
    layer with that layer's note."""
    if result.problem:
        return result.problem
    if result.report is None:
        return ""
    for row in result.report.layers:
        if row.status in (Status.FAILED, Status.REFUSED) and not row.carried_over:
            return f"{row.layer} {row.status.value}: {row.note}"
    return ""


def combined_table(report: CombinedReport) -> Table:
    """A column per environment: each layer's result, then what the engine ran, how long it
    took and its exit code (layers down the side, as in a run's own report, so a few
    environments fit a terminal side by side)."""
    commit = (report.commit or "no commit")[:12]
    title = f"{report.operation} · target {report.target} · {commit}"
    # A title wraps at the table's width, and a single environment's table is narrow.
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("layer")
    for result in report.environments:
        table.add_column(result.stack)
    layer_rows = [
        {row.layer: row for row in result.report.layers} if result.report else {}
        for result in report.environments
    ]
    for index, layer in enumerate(report.layers, start=1):
        table.add_row(
            layer,
            *(
                Text(rows[layer].status.value, style=STATUS_STYLES[rows[layer].status])
                if layer in rows
                else Text("-", style="dim")
                for rows in layer_rows
            ),
            end_section=index == len(report.layers),
        )
    table.add_row("engine ran", *(str(len(result.engine_ran)) for result in report.environments))
    table.add_row(
        "duration", *(format_duration(result.duration_s) for result in report.environments)
    )
    table.add_row(
        "exit code",
        *(
            Text(
                f"{result.exit_code} {EXIT_MEANINGS.get(result.exit_code, '')}".strip(),
                style=EXIT_STYLES.get(result.exit_code, ""),
            )
            for result in report.environments
        ),
    )
    return table


class _ConsoleProgress:
    """A header per layer (i of n, elapsed), engine lines prefixed with the layer, and on a
    terminal a spinner with the run's elapsed time. Safe to call from several threads: the
    count of finished layers is kept under a lock, and each line is one print."""

    def __init__(
        self,
        console: Console,
        verb: str,
        total: int,
        clock: Callable[[], float],
        width: int,
        label: str,
    ) -> None:
        self.console = console
        self.verb = verb
        self.total = total
        self.clock = clock
        self.started = clock()
        self.width = width
        self.label = label
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.finished = 0
        self._lock = threading.Lock()

    def start(self, index: int, layer: str) -> OutputSink:
        elapsed = self.clock() - self.started
        headline = f"{self.label}layer {index} of {self.total}: {self.verb} {layer}"
        self.console.print(Text(f"▶ {headline} (elapsed {elapsed:.0f}s)", style="bold"))
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, description=headline)
        prefix = f"{self.label}{layer:>{self.width}} │ "

        def sink(line: str) -> None:
            self.console.print(Text.assemble((prefix, "dim"), line), soft_wrap=True)

        return sink

    def finish(self, row: LayerResult) -> None:
        with self._lock:
            self.finished += 1
            finished = self.finished
        note = "; ".join(part for part in (format_drift(row.drift), row.note) if part)
        self.console.print(
            Text.assemble(
                f"  {self.label}",
                (row.status.value, STATUS_STYLES[row.status]),
                f" {row.layer} in {row.duration_s:.1f}s",
                f": {note}" if note else "",
            )
        )
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=finished)


class RichRenderer:
    """Draws on a rich console. `label` prefixes every progress line (the stack, when several
    environments run at once); `spinner` shows a live spinner on a terminal (off when several
    runs share the console, since rich shows one live display at a time)."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        layer_width: int | None = None,
        label: str = "",
        spinner: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.console = console or Console()
        self.layer_width = layer_width or max(len(name) for name in MANIFEST.order)
        self.label = f"{label} · " if label else ""
        self.spinner = spinner
        self.clock = clock or time.monotonic

    @contextmanager
    def progress(self, verb: str, total: int) -> Iterator[RunProgress]:
        progress = _ConsoleProgress(
            self.console, verb, total, self.clock, self.layer_width, self.label
        )
        if not (self.spinner and self.console.is_terminal):
            yield progress
            return
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as bar:
            progress.bar = bar
            progress.task = bar.add_task(verb, total=total)
            yield progress

    def plan(self, plan: Plan) -> None:
        self.console.print(plan_table(plan))

    def report(self, report: RunReport, path: Path | None) -> None:
        self.console.print(report_table(report))
        if path is not None:
            self.console.print(f"Report: {path} (exit code {report.exit_code})", markup=False)

    def status(self, view: StatusView) -> None:
        self.console.print(status_table(view))
        if view.stale_layers:
            self.console.print(
                "Stale consumers read upstream values that have changed since: redeploy them "
                f"in order (nox -s deploy -- {view.stale_layers[0]}), or run deploy_all.",
                markup=False,
            )

    def outputs(self, view: OutputsView) -> None:
        self.console.print(outputs_table(view))

    def environments(self, report: CombinedReport, path: Path | None) -> None:
        self.console.print(combined_table(report))
        for result in report.environments:
            note = environment_note(result)
            if note:
                self.console.print(Text.assemble((f"{result.stack}: ", "bold"), note))
        if path is not None:
            self.console.print(
                f"Combined report: {path} ({len(report.environments)} environments, at most "
                f"{report.concurrency} at once; exit code {report.exit_code}); each "
                f"environment's own report is in {path.parent}/<stack>/",
                markup=False,
            )
