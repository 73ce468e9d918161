"""The processor's peak memory growth on one large object, measured in a fresh process.

The object is generated and uploaded as a stream, then processed in a child process
(`python -m tooling.handler_bench.memory`), so the growth measured is the handler's own:
the resident set's high-water mark (reset first, on Linux) and tracemalloc's peak.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped, unused-ignore]

from shared.manifest import REPO_ROOT
from shared.naming import RESULTS_PREFIX, UPLOAD_PREFIX
from tooling.function_fixtures import NAMES, lambda_context, processor_environment
from tooling.handler_bench.aws import client, dummy_aws_env
from tooling.handler_bench.processor import upload_event
from tooling.local.functions import load_handler

MIB = 1024 * 1024
GROWTH_TARGET_MIB = 32.0


@dataclass(frozen=True)
class LargeObject:
    size_mib: int
    seconds: float
    rss_growth_mib: float
    rss_base_mib: float
    rss_peak_mib: float
    rss_method: str
    tracemalloc_peak_mib: float
    sha256_matches: bool

    @property
    def meets_target(self) -> bool:
        return self.sha256_matches and self.rss_growth_mib < GROWTH_TARGET_MIB


class _PatternReader(io.RawIOBase):
    """`size` bytes of deterministic data, generated as read and hashed on the way."""

    def __init__(self, size: int) -> None:
        self._remaining = size
        self._block = hashlib.sha256(b"bench").digest() * (MIB // 32)
        self._counter = 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._remaining:
            size = self._remaining
        chunks = []
        while size > 0:
            # Vary each MiB so the object is not one block repeated.
            block = self._counter.to_bytes(8, "big") + self._block[8:]
            self._counter += 1
            chunk = block[: min(size, len(block))]
            chunks.append(chunk)
            size -= len(chunk)
        data = b"".join(chunks)
        self._remaining -= len(data)
        self.sha256.update(data)
        return data


def _upload_large(size: int) -> tuple[str, str, str]:
    """Stream `size` bytes to the upload bucket (multipart); returns key, version and hash."""
    key = f"{UPLOAD_PREFIX}bench/large-{size // MIB}MiB.bin"
    reader = _PatternReader(size)
    s3 = client("s3")
    s3.upload_fileobj(
        reader,
        NAMES.upload_bucket,
        key,
        Config=TransferConfig(multipart_chunksize=16 * MIB, use_threads=False),
    )
    version: str = s3.head_object(Bucket=NAMES.upload_bucket, Key=key)["VersionId"]
    return key, version, reader.sha256.hexdigest()


def large_object(size: int, endpoint: str) -> LargeObject:
    """Upload `size` bytes, have a fresh process handle them, and check the result's hash."""
    s3 = client("s3")
    warm_key = f"{UPLOAD_PREFIX}bench/warm-up.bin"
    warm_version = s3.put_object(Bucket=NAMES.upload_bucket, Key=warm_key, Body=b"warm-up")[
        "VersionId"
    ]
    key, version, expected_sha256 = _upload_large(size)
    completed = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", __name__, key, version, warm_key, warm_version],
        cwd=REPO_ROOT,
        env={**os.environ, **dummy_aws_env(endpoint), **processor_environment()},
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    result = s3.get_object(Bucket=NAMES.upload_bucket, Key=f"{RESULTS_PREFIX}{key}.json")
    document = json.loads(result["Body"].read())
    return LargeObject(
        size_mib=size // MIB,
        seconds=measured["seconds"],
        rss_growth_mib=measured["rss_growth_mib"],
        rss_base_mib=measured["rss_base_mib"],
        rss_peak_mib=measured["rss_peak_mib"],
        rss_method=measured["rss_method"],
        tracemalloc_peak_mib=measured["tracemalloc_peak_mib"],
        sha256_matches=measured["processed"] == 1 and document["sha256"] == expected_sha256,
    )


def _status_kib(field_name: str) -> int | None:
    """A field of /proc/self/status in KiB (Linux), or None elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    return None


def measure_in_this_process(
    key: str, version: str, warm_key: str, warm_version: str
) -> dict[str, Any]:
    """The child's side: process the warm-up object, then the large one, measuring memory."""
    devnull = Path(os.devnull).open("w")  # noqa: SIM115 (open for the process's life)
    with contextlib.redirect_stdout(devnull):  # the handler's logs and metrics
        processor = load_handler("s3_processor", {})
        context = lambda_context(NAMES.s3_processor_function)
        processor.lambda_handler(upload_event(warm_key, warm_version), context)
        # Reset the resident-set high-water mark to now (Linux), so growth is this object's.
        hwm_reset = False
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
            hwm_reset = True
        tracemalloc.start()
        traced_base, _ = tracemalloc.get_traced_memory()
        rss_base = _status_kib("VmRSS") or 0
        maxrss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        counts = processor.lambda_handler(upload_event(key, version), context)
        elapsed = time.perf_counter() - start
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    hwm = _status_kib("VmHWM") if hwm_reset else None
    peak_kib = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base_kib = rss_base if hwm is not None else maxrss_base
    return {
        "processed": counts.get("processed", 0),
        "seconds": elapsed,
        "rss_growth_mib": max(0, peak_kib - base_kib) / 1024,
        "rss_base_mib": base_kib / 1024,
        "rss_peak_mib": peak_kib / 1024,
        "rss_method": "VmHWM after reset" if hwm is not None else "ru_maxrss delta",
        "tracemalloc_peak_mib": (traced_peak - traced_base) / MIB,
    }


if __name__ == "__main__":
    print(json.dumps(measure_in_this_process(*sys.argv[1:5])))
