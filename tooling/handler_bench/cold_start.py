"""Cold start: a fresh interpreter importing each function from its archive's layout.

Each function is laid out as its archive is (its folder, lambdas/common's modules at the root,
the bundled packages) and imported read-only (`python -B`), as on Lambda, whose code directory
cannot be written; with bytecode compiled as the build compiles it, and without any. This
machine's Python stands in for the runtime's.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyperf

from shared.manifest import REPO_ROOT
from shared.packaging import COMMON_FOLDER, LAMBDAS_DIR, compile_bytecode

# The bundled runtime dependencies (lambdas/*/requirements.txt), copied from this environment.
BUNDLED_PACKAGES = ("aws_lambda_powertools", "jmespath", "typing_extensions")

_IMPORT_SCRIPT = """
import time
start = time.perf_counter()
import {module}
print(time.perf_counter() - start)
"""


@dataclass(frozen=True)
class ColdStart:
    wall_ms: float  # interpreter start plus import, as a fresh process sees it
    import_ms: float  # the import statement alone


def _benchmark(name: str, seconds: list[float]) -> pyperf.Benchmark:
    # pyperf refuses a zero: an import faster than the clock's tick counts as a nanosecond.
    values = [max(value, 1e-9) for value in seconds]
    metadata = {"name": name, "unit": "second", "loops": 1}
    run = pyperf.Run(values, metadata=metadata, collect_metadata=False)
    return pyperf.Benchmark([run])


def _cold_start(
    module: str, cwd: Path, env: Mapping[str, str], runs: int, *, read_only: bool = False
) -> ColdStart:
    command = [sys.executable]
    if read_only:
        command.append("-B")  # as in Lambda, where the code directory is read-only
    command += ["-c", _IMPORT_SCRIPT.format(module=module) if module else "print(0.0)"]
    walls, imports = [], []
    for attempt in range(runs + 1):
        start = time.perf_counter()
        completed = subprocess.run(  # noqa: S603 (our own interpreter)
            command, cwd=cwd, env=dict(env), capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - start
        if attempt:  # the first run only writes bytecode caches (where allowed)
            walls.append(wall)
            imports.append(float(completed.stdout.strip().splitlines()[-1]))
    return ColdStart(
        wall_ms=_benchmark(f"{module}-wall", walls).median() * 1000,
        import_ms=_benchmark(f"{module}-import", imports).median() * 1000,
    )


def archive_layout(function: str, into: Path, *, bytecode: bool) -> Path:
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


def cold_starts(
    runs: int, base_env: Mapping[str, str], environments: Mapping[str, Mapping[str, str]]
) -> dict[str, ColdStart]:
    """The interpreter alone, `import boto3` alone, and each function from its archive layout
    (`environments` by function folder, over `base_env`)."""
    results = {
        "interpreter": _cold_start("", REPO_ROOT, base_env, runs),
        "boto3": _cold_start("boto3", REPO_ROOT, base_env, runs),
    }
    layouts = (
        ("api", "api_handler", True),
        ("processor", "s3_processor", True),
        ("api_no_bytecode", "api_handler", False),
    )
    for key, function, bytecode in layouts:
        env = {**base_env, **environments[function]}
        with tempfile.TemporaryDirectory() as scratch:
            root = archive_layout(function, Path(scratch), bytecode=bytecode)
            results[key] = _cold_start("handler", root, env, runs, read_only=True)
    return results
