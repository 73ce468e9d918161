"""The orchestration benchmark's scenarios do what issue 13 measures: the engine updates they
count are exact, so they are asserted here; their wall times are for the benchmark to print."""

from __future__ import annotations

import json
from pathlib import Path

from shared.manifest import MANIFEST
from tests.orchestration.conftest import console_text, make_console
from tooling.orchestrator import bench
from tooling.orchestrator.bench import Bench

LAYERS = len(MANIFEST.order)


def updates(measurements: list[bench.Measurement]) -> list[int]:
    return [row.engine_updates for row in measurements]


def test_a_no_op_deploy_all_runs_no_update_and_the_always_run_loop_runs_every_layer(
    tmp_path: Path,
) -> None:
    assert updates(bench.no_op_deploy(Bench(tmp_path, 0))) == [0, LAYERS]


def test_a_no_op_deploy_all_on_this_checkout_runs_no_update(tmp_path: Path) -> None:
    # The suite builds the archives first (tests/conftest.py), so every layer is fingerprinted.
    (row,) = bench.no_op_on_this_checkout(Bench(tmp_path, 0))
    assert (row.engine_updates, row.expected_updates) == (0, 0)


def test_an_api_handler_change_runs_compute_and_api_only_when_api_reads_a_change(
    tmp_path: Path,
) -> None:
    assert updates(bench.handler_change(Bench(tmp_path, 0))) == [1, 2]


def test_which_layers_an_api_handler_change_runs(tmp_path: Path) -> None:
    runner = Bench(tmp_path, 0)
    bench.handler_change(runner)
    (engine,) = runner.engines
    ups = [layer for _, layer in engine.operations("up")]
    # The full deploy, then compute alone, then compute and api; observability never again.
    assert ups == [*MANIFEST.order, "compute", "compute", "api"]


def test_three_environments_each_deploy_every_layer_together_and_apart(tmp_path: Path) -> None:
    count = len(bench.ENVIRONMENTS)
    assert updates(bench.environments(Bench(tmp_path, 0))) == [
        LAYERS,
        count * LAYERS,
        count * LAYERS,
    ]


def test_every_update_target_is_met_and_the_no_op_line_leads_with_the_count() -> None:
    console = make_console()
    assert bench.main(["--update-seconds", "0"], console=console) == 0
    text = console_text(console)
    assert text.splitlines()[-1].startswith("no-op deploy_all: 0 engine updates, ")
    assert "(always-run loop: 5 updates, " in text


def test_json_output_holds_every_measurement() -> None:
    console = make_console()
    assert bench.main(["--json", "--update-seconds", "0"], console=console) == 0
    document = json.loads(console_text(console))
    assert document["summary"].startswith("no-op deploy_all: 0 engine updates")
    rows = document["measurements"]
    assert [row["engine_updates"] for row in rows] == [0, 5, 0, 1, 2, 5, 15, 15]
    assert all(
        row["engine_updates"] == row["expected_updates"]
        for row in rows
        if row["expected_updates"] is not None
    )


def test_a_missed_update_target_is_not_met_and_a_baseline_has_no_verdict() -> None:
    missed = bench.Measurement("x", 1, 0.0, "0 updates", expected_updates=0, max_wall_s=1.0)
    assert (missed.updates_met, missed.met) == (False, False)
    slow = bench.Measurement("x", 0, 2.0, "0 updates", expected_updates=0, max_wall_s=1.0)
    assert (slow.updates_met, slow.met) == (True, False)
    assert bench.Measurement("x", 5, 1.0, "baseline").met is None
