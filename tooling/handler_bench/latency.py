"""Warm per-call latency of handlers, timed interleaved; statistics are pyperf's.

Each candidate is timed call by call in short blocks taken in turn over many rounds, so load
from other processes on the machine reaches the floor and the routes alike and their ratio
stays steady (pyperf's own Runner times one benchmark after another, in worker processes: on a
shared machine the ratio moved more from run to run, see the README). The timings become
pyperf runs, whose median and percentiles the report reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyperf

Handler = Callable[[dict[str, Any], Any], Any]
# The first calls fill caches and load code paths; they are not timed.
WARM_UP_CALLS = 20


@dataclass(frozen=True)
class Candidate:
    handler: Handler
    event: dict[str, Any]
    block: int  # calls per round


@dataclass(frozen=True)
class Latency:
    p50_us: float
    p99_us: float
    calls: int


def bare_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The floor: a handler that only returns a JSON body."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"status": "ok"}),
    }


def interleaved(
    candidates: Mapping[str, Candidate], context: Any, rounds: int
) -> dict[str, pyperf.Benchmark]:
    """One pyperf benchmark per candidate: each value is one call's duration in seconds."""
    samples: dict[str, list[int]] = {name: [] for name in candidates}
    clock = time.perf_counter_ns
    for candidate in candidates.values():
        for _ in range(max(candidate.block, WARM_UP_CALLS)):
            candidate.handler(candidate.event, context)
    for _ in range(rounds):
        for name, candidate in candidates.items():
            timings = samples[name]
            handler, event = candidate.handler, candidate.event
            for _ in range(candidate.block):
                start = clock()
                handler(event, context)
                timings.append(clock() - start)
    return {
        name: pyperf.Benchmark(
            [
                pyperf.Run(
                    # pyperf refuses a zero: a call faster than the clock's tick counts as one.
                    [max(timing, 1) / 1e9 for timing in timings],
                    metadata={"name": name, "unit": "second", "loops": 1},
                )
            ]
        )
        for name, timings in samples.items()
    }


def latency(benchmark: pyperf.Benchmark) -> Latency:
    return Latency(
        p50_us=benchmark.median() * 1e6,
        p99_us=benchmark.percentile(99) * 1e6,
        calls=benchmark.get_nvalue(),
    )
