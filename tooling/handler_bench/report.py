"""The benchmark's report: its numbers, their verdicts, one table, and the same as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyperf
from rich.console import Console
from rich.table import Table

from tooling.handler_bench.cold_start import ColdStart
from tooling.handler_bench.latency import Latency
from tooling.handler_bench.memory import GROWTH_TARGET_MIB, LargeObject
from tooling.handler_bench.processor import Throughput

HEALTH_TARGET_RATIO = 20.0
PROCESS_TARGET_RATIO = 30.0


@dataclass
class Report:
    started: str
    machine: str
    latency: dict[str, Latency]
    throughput: Throughput
    large: LargeObject | None
    cold: dict[str, ColdStart]
    verdicts: dict[str, bool] = field(default_factory=dict)

    def judge(self) -> None:
        """Set each target's verdict."""
        floor = self.latency["floor"].p50_us
        self.verdicts = {
            "health": self.latency["health"].p50_us <= HEALTH_TARGET_RATIO * floor,
            "process": self.latency["process"].p50_us <= PROCESS_TARGET_RATIO * floor,
            "cold": self.cold["api"].import_ms <= self.cold["boto3"].import_ms,
        }
        if self.large is not None:
            self.verdicts["large"] = self.large.meets_target

    @property
    def missed(self) -> list[str]:
        return sorted(name for name, ok in self.verdicts.items() if not ok)


def machine(benchmark: pyperf.Benchmark) -> str:
    """The machine a benchmark ran on, from the metadata pyperf collected with it."""
    metadata = benchmark.get_metadata()
    return ", ".join(
        str(part)
        for part in (
            metadata.get("platform"),
            metadata.get("cpu_model_name"),
            f"{metadata.get('cpu_count')} cores",
            f"Python {metadata.get('python_version')}",
        )
        if part
    )


def _verdict(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]FAIL[/red]"


def render(report: Report, console: Console) -> None:
    floor = report.latency["floor"].p50_us
    table = Table(
        title=f"Lambda handler benchmark, {report.started}",
        caption=report.machine,
        show_lines=False,
    )
    table.add_column("Measure")
    table.add_column("Result", justify="right")
    table.add_column("Target", justify="right")
    table.add_column("Verdict", justify="center")

    rows = [
        ("floor", "Warm: bare JSON handler (floor)", None, ""),
        ("health", "Warm: GET /health", HEALTH_TARGET_RATIO, "health"),
        ("process", "Warm: POST /process, secret cached", PROCESS_TARGET_RATIO, "process"),
        ("objects", "Warm: GET /objects/{key+} (one S3 GET)", None, ""),
        ("not_found", "Warm: 404 unknown route", None, ""),
    ]
    for key, label, target, verdict_key in rows:
        latency = report.latency[key]
        ratio = latency.p50_us / floor
        result = f"p50 {latency.p50_us:,.1f} us ({ratio:,.1f}x), p99 {latency.p99_us:,.1f} us"
        target_text = f"<= {target:.0f}x floor" if target else ""
        verdict = _verdict(report.verdicts[verdict_key]) if verdict_key else ""
        table.add_row(label, result, target_text, verdict)

    throughput = report.throughput
    table.add_row(
        f"Processor: {throughput.objects} small objects",
        f"{throughput.objects_per_second:,.0f} objects/s ({throughput.ms_per_object:.1f} ms each)",
        "",
        "",
    )
    for label, trips in (
        ("Processor: round trips per object", throughput.first_version),
        ("Processor: per duplicate delivery", throughput.duplicate),
        ("Processor: per new version of a key", throughput.new_version),
        ("Processor: per older version delivered late", throughput.late_older_version),
    ):
        operations = ", ".join(f"{name} {sends:.1f}" for name, sends in trips.s3_operations.items())
        table.add_row(
            label,
            f"S3 {trips.s3:.1f}{f' ({operations})' if operations else ''}, "
            f"DynamoDB {trips.dynamodb:.1f}",
            "",
            "",
        )
    if report.large is not None:
        large = report.large
        table.add_row(
            f"Processor: {large.size_mib} MiB object, peak memory growth",
            f"RSS +{large.rss_growth_mib:.1f} MiB ({large.rss_base_mib:.0f} to "
            f"{large.rss_peak_mib:.0f} MiB), "
            f"tracemalloc peak +{large.tracemalloc_peak_mib:.1f} MiB, {large.seconds:.1f} s, "
            f"SHA-256 {'ok' if large.sha256_matches else 'WRONG'}",
            f"< {GROWTH_TARGET_MIB:.0f} MiB",
            _verdict(report.verdicts["large"]),
        )
    cold = report.cold
    for key, label in (
        ("interpreter", "Cold: interpreter alone"),
        ("boto3", "Cold: import boto3 alone"),
        ("api", "Cold: API handler, archive with .pyc"),
        ("processor", "Cold: S3 processor, archive with .pyc"),
        ("api_no_bytecode", "Cold: API handler, archive without .pyc"),
    ):
        start = cold[key]
        cold_target = ""
        verdict = ""
        if key == "api":
            cold_target = f"import <= boto3 ({cold['boto3'].import_ms:.0f} ms)"
            verdict = _verdict(report.verdicts["cold"])
        table.add_row(
            label,
            f"{start.wall_ms:,.0f} ms wall, import {start.import_ms:,.0f} ms",
            cold_target,
            verdict,
        )
    console.print(table)


def to_json(report: Report) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if hasattr(value, "__dataclass_fields__"):
            return {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    result: dict[str, Any] = plain(report)
    return result
