"""Benchmark of the two Lambda handlers, printed as one table with a verdict per target.

Measured side by side in one run (`nox -s bench`, or `python -m tooling.handler_bench`):

- warm per-call latency of each API route, and of a bare handler that only returns a JSON body
  (the floor); targets: GET /health within 20x and POST /process (secret cached) within 30x;
- S3 processor throughput on small objects, and the S3 and DynamoDB round trips per object;
- peak memory growth while the processor handles a 256 MiB object; target: under 32 MiB;
- cold start (interpreter start plus handler import) of each function, against
  `import boto3` alone; target: the API handler imports no slower than boto3.

AWS is moto's server in a child process on 127.0.0.1, so requests cross a real HTTP connection
and the large object lives in the server's memory, not in the measuring process. The 256 MiB
object is generated and uploaded as a stream and processed in a fresh child process, so the
measured growth is the handler's own (resident set high-water mark and tracemalloc peak).
Latency is timed per call with the routes interleaved, so load from other processes on the
machine affects the floor and the routes alike. This is a benchmark, not a test: it reports.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import importlib.util
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, quote_plus

import boto3  # type: ignore[import-untyped, unused-ignore]
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped, unused-ignore]
from rich.console import Console
from rich.table import Table

from shared.manifest import REPO_ROOT
from shared.naming import (
    IDEMPOTENCY_KEY_ATTRIBUTE,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    RESULTS_PREFIX,
    UPLOAD_PREFIX,
    AwsLocation,
    ResourceNames,
)
from shared.packaging import COMMON_FOLDER, LAMBDAS_DIR, compile_bytecode
from tooling.local.functions import LambdaContext, load_handler

# moto's default account, so the names are the ones shared.naming gives a real deployment.
NAMES = ResourceNames("dev", AwsLocation("aws", "us-east-1", "123456789012"))
API_KEY = "bench-api-key"  # a dummy secret for the local moto server only

HEALTH_TARGET_RATIO = 20.0
PROCESS_TARGET_RATIO = 30.0
LARGE_GROWTH_TARGET_MIB = 32.0
MIB = 1024 * 1024

# The bundled runtime dependencies (requirements.txt), copied into the archive layouts whose
# cold start is measured.
BUNDLED_PACKAGES = ("aws_lambda_powertools", "jmespath", "typing_extensions")

_SERVER_SCRIPT = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # serve until the benchmark closes our stdin
server.stop()
"""

_COLD_IMPORT_SCRIPT = """
import time
start = time.perf_counter()
import {module}
print(time.perf_counter() - start)
"""


# Environment and AWS


def _dummy_aws_env(endpoint: str | None) -> dict[str, str]:
    """Credentials and region that can only ever reach the local moto server."""
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": NAMES.location.region,
        "AWS_REGION": NAMES.location.region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


# Each function's environment as the compute layer sets it (stacks/compute/__main__.py), for
# NAMES; tests/lambdas/conftest.py loads the functions with the same.
PROCESSOR_ENV = {
    "BUCKET_NAME": NAMES.upload_bucket,
    "UPLOAD_PREFIX": UPLOAD_PREFIX,
    "RESULTS_PREFIX": RESULTS_PREFIX,
    "IDEMPOTENCY_TABLE_NAME": NAMES.idempotency_table,
    "IDEMPOTENCY_TTL_SECONDS": "86400",
    "POWERTOOLS_SERVICE_NAME": "s3-processor",
    "POWERTOOLS_METRICS_NAMESPACE": NAMES.prefix,
    "AWS_LAMBDA_FUNCTION_NAME": NAMES.s3_processor_function,
}
# Without SECRET_ARN, which is known once the secret exists (see _api_env).
API_ENV = {
    "BUCKET_NAME": NAMES.upload_bucket,
    "RESULTS_PREFIX": RESULTS_PREFIX,
    "SECRET_CACHE_SECONDS": "300",
    "CORS_ALLOWED_ORIGINS": "https://app.example.com",
    "MAX_BODY_BYTES": "1048576",
    "APP_VERSION": "bench",
    "POWERTOOLS_SERVICE_NAME": "api-handler",
    "POWERTOOLS_METRICS_NAMESPACE": NAMES.prefix,
    "AWS_LAMBDA_FUNCTION_NAME": NAMES.api_handler_function,
}


def _api_env(secret_arn: str) -> dict[str, str]:
    return {**API_ENV, "SECRET_ARN": secret_arn}


@contextlib.contextmanager
def _patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _moto_server() -> Iterator[str]:
    """moto's server in a child process; yields its endpoint URL."""
    env = {**os.environ, **_dummy_aws_env(None)}
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", _SERVER_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError("the moto server did not start (is moto[server] installed?)")
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_upload_bucket(s3: Any) -> str:
    """The upload bucket, versioned as the storage layer creates it; returns its name."""
    s3.create_bucket(Bucket=NAMES.upload_bucket)
    s3.put_bucket_versioning(
        Bucket=NAMES.upload_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    return NAMES.upload_bucket


def create_idempotency_table(dynamodb: Any) -> str:
    """The idempotency table with the storage layer's key and TTL attributes; returns its name."""
    dynamodb.create_table(
        TableName=NAMES.idempotency_table,
        KeySchema=[{"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": IDEMPOTENCY_KEY_ATTRIBUTE, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=NAMES.idempotency_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": IDEMPOTENCY_TTL_ATTRIBUTE},
    )
    return NAMES.idempotency_table


def _create_resources() -> str:
    """The bucket, table and secret the storage and security layers create; returns the ARN."""
    session = boto3.session.Session()
    create_upload_bucket(session.client("s3"))
    create_idempotency_table(session.client("dynamodb"))
    secret = session.client("secretsmanager").create_secret(
        Name=f"{NAMES.secret_name_prefix}bench", SecretString=json.dumps({"api_key": API_KEY})
    )
    arn: str = secret["ARN"]
    return arn


# Loading handlers and calling them as Lambda does


@functools.cache
def _devnull() -> io.TextIOBase:
    """Where the handlers' logs and metrics go during the benchmark (open for the process)."""
    return Path(os.devnull).open("w")


def _context(function_name: str) -> LambdaContext:
    """The Lambda context the handlers and Powertools read, for a one-minute invocation."""
    return LambdaContext(
        function_name=function_name,
        invoked_function_arn=NAMES.function_arn(function_name),
        log_group_name="",
        function_version="1",
        memory_limit_in_mb=256,
        log_stream_name="bench",
        timeout_seconds=60.0,
    )


def _load_handler(function: str, env: Mapping[str, str]) -> ModuleType:
    """Import lambdas/<function>/handler.py as Lambda does (tooling.local's loader: the folder
    and lambdas/common as the root). The function's environment stays set for its calls (so
    the loader need not set it for the import), and its logs go to os.devnull."""
    os.environ.update(env)
    # Powertools' logger keeps the stream it finds at import: the handlers log to devnull.
    with contextlib.redirect_stdout(_devnull()):
        return load_handler(function, {})


def _api_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API proxy event (payload 1.0) as API Gateway sends it."""
    all_headers = {
        "Accept": "application/json",
        "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "bench/1.0",
        "X-Forwarded-For": "192.0.2.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    return {
        "resource": "/objects/{key+}" if path.startswith("/objects/") else path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/prod{path}",
            "accountId": NAMES.location.account_id,
            "stage": "prod",
            "requestId": "bench-request-id",
            "identity": {"sourceIp": "192.0.2.10"},
            "apiId": "abcdef1234",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _s3_event(key: str, version_id: str) -> dict[str, Any]:
    """A one-record ObjectCreated notification, key URL-encoded as S3 sends it."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": NAMES.location.region,
                "eventName": "ObjectCreated:Put",
                "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper()},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {
                        "name": NAMES.upload_bucket,
                        "arn": f"arn:aws:s3:::{NAMES.upload_bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "versionId": version_id,
                        "sequencer": uuid.uuid4().hex[:18].upper(),
                    },
                },
            }
        ]
    }


def _bare_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The floor: a handler that only returns a JSON body."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"status": "ok"}),
    }


# Measurements


@dataclass(frozen=True)
class Latency:
    p50_us: float
    p99_us: float
    calls: int


def _interleaved_latency(
    candidates: Mapping[str, tuple[Callable[..., Any], dict[str, Any], int]],
    context: Any,
    rounds: int,
) -> dict[str, Latency]:
    """Per-call latency, each candidate timed in short blocks taken in turn over many rounds."""
    samples: dict[str, list[int]] = {name: [] for name in candidates}
    clock = time.perf_counter_ns
    with contextlib.redirect_stdout(_devnull()):
        for handler, event, block in candidates.values():
            for _ in range(max(block, 20)):  # warm: caches filled, code paths loaded
                handler(event, context)
        for _ in range(rounds):
            for name, (handler, event, block) in candidates.items():
                timings = samples[name]
                for _ in range(block):
                    start = clock()
                    handler(event, context)
                    timings.append(clock() - start)
    results = {}
    for name, timings in samples.items():
        ordered = sorted(timings)
        results[name] = Latency(
            p50_us=statistics.median(ordered) / 1000,
            p99_us=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000,
            calls=len(ordered),
        )
    return results


class _CallCounter:
    """Counts the HTTP sends of one client (retries included), by operation."""

    def __init__(self, client: Any) -> None:
        self.sends: dict[str, int] = {}
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service}", self)

    def __call__(self, request: Any, **kwargs: Any) -> None:
        operation = str(kwargs.get("event_name", "")).rsplit(".", 1)[-1]
        self.sends[operation] = self.sends.get(operation, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.sends.values())

    def reset(self) -> None:
        self.sends.clear()


@dataclass(frozen=True)
class Throughput:
    objects: int
    objects_per_second: float
    ms_per_object: float
    s3_calls_per_object: float
    s3_operations: dict[str, int]
    dynamodb_calls_per_object: float
    duplicate_s3_calls_per_object: float
    duplicate_dynamodb_calls_per_object: float


def _processor_throughput(processor: ModuleType, count: int, size: int) -> Throughput:
    s3 = boto3.session.Session().client("s3")
    body = os.urandom(size)
    events = []
    for index in range(count):
        key = f"{UPLOAD_PREFIX}bench/small {index:05d}.csv"
        version = s3.put_object(Bucket=NAMES.upload_bucket, Key=key, Body=body)["VersionId"]
        events.append(_s3_event(key, version))
    s3_calls = _CallCounter(processor.s3_client)
    dynamodb_calls = _CallCounter(processor.persistence_store.client)
    context = _context(NAMES.s3_processor_function)
    with contextlib.redirect_stdout(_devnull()):
        # One warm-up object outside the count: first use of each client loads its models.
        processor.lambda_handler(events[0], context)
        s3_calls.reset()
        dynamodb_calls.reset()
        start = time.perf_counter()
        for event in events[1:]:
            processor.lambda_handler(event, context)
        elapsed = time.perf_counter() - start
        processed = len(events) - 1
        s3_total, s3_operations, dynamodb_total = (
            s3_calls.total,
            dict(s3_calls.sends),
            dynamodb_calls.total,
        )
        s3_calls.reset()
        dynamodb_calls.reset()
        for event in events[1:]:  # at-least-once delivery: every event again
            processor.lambda_handler(event, context)
    return Throughput(
        objects=processed,
        objects_per_second=processed / elapsed,
        ms_per_object=elapsed / processed * 1000,
        s3_calls_per_object=s3_total / processed,
        s3_operations=s3_operations,
        dynamodb_calls_per_object=dynamodb_total / processed,
        duplicate_s3_calls_per_object=s3_calls.total / processed,
        duplicate_dynamodb_calls_per_object=dynamodb_calls.total / processed,
    )


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
    s3 = boto3.session.Session().client("s3")
    s3.upload_fileobj(
        reader,
        NAMES.upload_bucket,
        key,
        Config=TransferConfig(multipart_chunksize=16 * MIB, use_threads=False),
    )
    version: str = s3.head_object(Bucket=NAMES.upload_bucket, Key=key)["VersionId"]
    return key, version, reader.sha256.hexdigest()


def _status_kib(field_name: str) -> int | None:
    """A field of /proc/self/status in KiB (Linux), or None elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    return None


def _measure_large_in_this_process(
    key: str, version: str, warm_key: str, warm_version: str
) -> dict[str, Any]:
    """Child-process side of the large-object measurement; prints one JSON line."""
    processor = _load_handler("s3_processor", PROCESSOR_ENV)
    context = _context(NAMES.s3_processor_function)
    with contextlib.redirect_stdout(_devnull()):
        processor.lambda_handler(_s3_event(warm_key, warm_version), context)
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
        counts = processor.lambda_handler(_s3_event(key, version), context)
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


def _large_object(size: int, endpoint: str) -> LargeObject:
    s3 = boto3.session.Session().client("s3")
    warm_key = f"{UPLOAD_PREFIX}bench/warm-up.bin"
    warm_version = s3.put_object(Bucket=NAMES.upload_bucket, Key=warm_key, Body=b"warm-up")[
        "VersionId"
    ]
    key, version, expected_sha256 = _upload_large(size)
    env = {**os.environ, **_dummy_aws_env(endpoint), **PROCESSOR_ENV}
    completed = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [
            sys.executable,
            "-m",
            "tooling.handler_bench",
            "--measure-large",
            key,
            version,
            warm_key,
            warm_version,
        ],
        cwd=REPO_ROOT,
        env=env,
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


@dataclass(frozen=True)
class ColdStart:
    wall_ms: float  # interpreter start plus import, as a fresh process sees it
    import_ms: float  # the import statement alone


def _cold_start(
    module: str, cwd: Path, env: Mapping[str, str], runs: int, *, read_only: bool = False
) -> ColdStart:
    command = [sys.executable]
    if read_only:
        command.append("-B")  # as in Lambda, where the code directory is read-only
    command += ["-c", _COLD_IMPORT_SCRIPT.format(module=module) if module else "print(0.0)"]
    full_env = {**os.environ, **env}
    walls, imports = [], []
    for attempt in range(runs + 1):
        start = time.perf_counter()
        completed = subprocess.run(  # noqa: S603 (our own interpreter)
            command, cwd=cwd, env=full_env, capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - start
        if attempt:  # the first run only writes bytecode caches (where allowed)
            walls.append(wall * 1000)
            imports.append(float(completed.stdout.strip().splitlines()[-1]) * 1000)
    return ColdStart(wall_ms=statistics.median(walls), import_ms=statistics.median(imports))


def _archive_layout(function: str, into: Path, *, bytecode: bool) -> Path:
    """The function's archive layout: its folder, lambdas/common's modules and the bundled
    packages (copied from this environment), with bytecode compiled as shared/packaging does
    (this interpreter standing in for the runtime's) or without any .pyc."""
    root = into / function
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(LAMBDAS_DIR / function, root, ignore=ignore)
    for common in sorted((LAMBDAS_DIR / COMMON_FOLDER).glob("*.py")):
        if not (root / common.name).exists():  # the function's own module wins
            shutil.copy2(common, root / common.name)
    for package in BUNDLED_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{package} is not installed; install the dev dependencies")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, root / package, ignore=ignore)
        else:
            shutil.copy2(origin, root / origin.name)
    if bytecode:
        compile_bytecode(root, sys.executable)
    return root


def _cold_starts(runs: int, secret_arn: str) -> dict[str, ColdStart]:
    aws = _dummy_aws_env(None)
    api_env = {**aws, **_api_env(secret_arn)}
    processor_env = {**aws, **PROCESSOR_ENV}
    results = {
        "interpreter": _cold_start("", REPO_ROOT, aws, runs),
        "boto3": _cold_start("boto3", REPO_ROOT, aws, runs),
    }
    # Each function from its archive's layout, read-only as on Lambda.
    layouts = (
        ("api", "api_handler", api_env, True),
        ("processor", "s3_processor", processor_env, True),
        ("api_no_bytecode", "api_handler", api_env, False),
    )
    for key, function, env, bytecode in layouts:
        with tempfile.TemporaryDirectory() as scratch:
            root = _archive_layout(function, Path(scratch), bytecode=bytecode)
            results[key] = _cold_start("handler", root, env, runs, read_only=True)
    return results


# Report


@dataclass
class Report:
    started: str
    machine: str
    latency: dict[str, Latency]
    throughput: Throughput
    large: LargeObject | None
    cold: dict[str, ColdStart]
    verdicts: dict[str, bool] = field(default_factory=dict)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    total_kib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        total_kib = int(Path("/proc/meminfo").read_text().split()[1])
    if total_kib:
        memory = f", {total_kib / MIB:.0f} GiB RAM"
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, "
        f"{os.cpu_count()} cores{memory}, Python {platform.python_version()}"
    )


def _verdict(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]FAIL[/red]"


def _render(report: Report, console: Console) -> None:
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
    operations = ", ".join(
        f"{name} {count / throughput.objects:.1f}"
        for name, count in sorted(throughput.s3_operations.items())
    )
    table.add_row(
        f"Processor: {throughput.objects} small objects",
        f"{throughput.objects_per_second:,.0f} objects/s ({throughput.ms_per_object:.1f} ms each)",
        "",
        "",
    )
    table.add_row(
        "Processor: round trips per object",
        f"S3 {throughput.s3_calls_per_object:.1f} ({operations}), "
        f"DynamoDB {throughput.dynamodb_calls_per_object:.1f}",
        "",
        "",
    )
    table.add_row(
        "Processor: per duplicate delivery",
        f"S3 {throughput.duplicate_s3_calls_per_object:.1f}, "
        f"DynamoDB {throughput.duplicate_dynamodb_calls_per_object:.1f}",
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
            f"< {LARGE_GROWTH_TARGET_MIB:.0f} MiB",
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


def _to_json(report: Report) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if hasattr(value, "__dataclass_fields__"):
            return {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    result: dict[str, Any] = plain(report)
    return result


# Entry point


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="handler_bench", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
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
    parser.add_argument(
        "--measure-large",
        nargs=4,
        metavar=("KEY", "VERSION", "WARM_KEY", "WARM_VERSION"),
        help=argparse.SUPPRESS,
    )
    return parser.parse_args(argv)


def _run(args: argparse.Namespace, console: Console) -> Report:
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with _moto_server() as endpoint, _patched_environ(_dummy_aws_env(endpoint)):
        console.log(f"moto server at {endpoint}")
        secret_arn = _create_resources()
        api = _load_handler("api_handler", _api_env(secret_arn))
        processor = _load_handler("s3_processor", PROCESSOR_ENV)

        # A result for GET /objects, written by the processor itself.
        s3 = boto3.session.Session().client("s3")
        key = f"{UPLOAD_PREFIX}bench/served object.csv"
        version = s3.put_object(Bucket=NAMES.upload_bucket, Key=key, Body=b"a,b\n1,2\n")[
            "VersionId"
        ]
        with contextlib.redirect_stdout(_devnull()):
            processor.lambda_handler(_s3_event(key, version), _context(NAMES.s3_processor_function))

        encoded_key = quote(key, safe="")
        console.log("warm latency")
        json_headers = {"Content-Type": "application/json"}
        process_body = json.dumps({"name": "bench", "data": {"a": 1, "b": [1, 2, 3], "c": "x"}})
        # GET /objects costs an HTTP round trip to moto per call: fewer calls keep it short.
        object_block = max(1, args.block // 10)
        latency = _interleaved_latency(
            {
                "floor": (_bare_handler, _api_event("GET", "/health"), args.block),
                "health": (api.lambda_handler, _api_event("GET", "/health"), args.block),
                "process": (
                    api.lambda_handler,
                    _api_event("POST", "/process", body=process_body, headers=json_headers),
                    args.block,
                ),
                "objects": (
                    api.lambda_handler,
                    # Percent-encoded, as a REST API delivers path and pathParameters.
                    _api_event(
                        "GET", f"/objects/{encoded_key}", path_parameters={"key": encoded_key}
                    ),
                    object_block,
                ),
                "not_found": (api.lambda_handler, _api_event("GET", "/nothing"), args.block),
            },
            _context(NAMES.api_handler_function),
            args.rounds,
        )

        console.log(f"processor throughput ({args.objects} objects)")
        throughput = _processor_throughput(processor, args.objects + 1, args.object_bytes)

        large = None
        if not args.skip_large:
            console.log(f"{args.large_mib} MiB object (upload, then a fresh process)")
            large = _large_object(args.large_mib * MIB, endpoint)

    console.log("cold starts")
    cold = _cold_starts(args.cold_runs, secret_arn)

    floor = latency["floor"].p50_us
    report = Report(
        started=started,
        machine=_machine(),
        latency=latency,
        throughput=throughput,
        large=large,
        cold=cold,
    )
    report.verdicts = {
        "health": latency["health"].p50_us <= HEALTH_TARGET_RATIO * floor,
        "process": latency["process"].p50_us <= PROCESS_TARGET_RATIO * floor,
        "cold": cold["api"].import_ms <= cold["boto3"].import_ms,
    }
    if large is not None:
        report.verdicts["large"] = (
            large.sha256_matches and large.rss_growth_mib < LARGE_GROWTH_TARGET_MIB
        )
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.measure_large:
        key, version, warm_key, warm_version = args.measure_large
        print(json.dumps(_measure_large_in_this_process(key, version, warm_key, warm_version)))
        return 0

    # Wide enough for one line per measure, also when the output is not a terminal (nox, CI).
    console = Console(width=max(shutil.get_terminal_size(fallback=(140, 40)).columns, 130))
    report = _run(args, console)
    _render(report, console)
    missed = sorted(name for name, ok in report.verdicts.items() if not ok)
    if missed:
        console.print(f"Targets missed: {', '.join(missed)}")
    else:
        console.print("All targets met.")
    if args.json:
        args.json.write_text(json.dumps(_to_json(report), indent=2) + "\n", encoding="utf-8")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
