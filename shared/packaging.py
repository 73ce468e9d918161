"""Byte-for-byte reproducible deployment archives for the functions under lambdas/.

Each lambdas/<function>/ folder is the archive root. Every archive also carries the modules of
lambdas/common/*.py at its root, next to the function's own files (the function's own file wins
on a name clash): code both functions need lives there once. The folder's `requirements.txt`
lists the pinned runtime dependencies, installed as arm64 wheels for the function's Python
version (never boto3: the Lambda runtime ships it).

Lambda's code directory is read-only, so the runtime cannot cache what it compiles: without
bytecode in the archive, every cold start compiles every imported module again (for the API
handler, about three times the import time). When an interpreter of the target version is on
PATH (`python3.13` for the python3.13 runtime), the archive's Python files are compiled with it
into `__pycache__/` (hash-based, unchecked .pyc: no timestamps). When there is none, the
archive has no bytecode and `FunctionArchive.bytecode` says so; stale caches in the source tree
are never packaged either way.

The same sources, requirements and bytecode interpreter always give the same zip (sorted
entries, fixed timestamps and modes, deterministic .pyc), so the archive's SHA-256 changes only
when the code or a pin does and an unchanged function is never redeployed. (An archive built
where the target interpreter is available differs from one built where it is not.)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from shared.manifest import REPO_ROOT

LAMBDAS_DIR = REPO_ROOT / "lambdas"
# The folders under lambdas/, one function each: the compute layer deploys the first two,
# the security layer the secret's rotation function.
FUNCTIONS = ("s3_processor", "api_handler", "secret_rotation")
# lambdas/common/ is not a function: its *.py files are copied into every function's archive.
COMMON_FOLDER = "common"
# Lambda's current Python runtimes, newest first.
SUPPORTED_RUNTIMES = ("python3.13", "python3.12")
BUILD_DIR = REPO_ROOT / "build" / "lambda"
DEPENDENCY_CACHE_DIR = REPO_ROOT / "build" / "lambda-deps"
REQUIREMENTS_FILE = "requirements.txt"
# The functions run on arm64 (Graviton); wheels are chosen for that platform.
LAMBDA_PLATFORM = "manylinux2014_aarch64"
DEFAULT_PYTHON_VERSION = "3.13"

# The earliest timestamp a zip entry can hold; any fixed value makes builds reproducible.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
# Never taken from a source tree: caches there are stale or from another interpreter. The
# archive's own bytecode is compiled afresh (see compile_bytecode).
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
# Where the code is on Lambda; compiled code objects name their files under it.
LAMBDA_TASK_ROOT = "/var/task"


class PackagingError(RuntimeError):
    """The function's source folder is missing or empty, or its dependencies did not install."""


@dataclass(frozen=True)
class FunctionArchive:
    function: str
    path: Path
    sha256_base64: str
    sha256_hex: str
    size_bytes: int
    dependency_count: int
    python_version: str = DEFAULT_PYTHON_VERSION
    # Whether the archive holds .pyc files compiled by a python<python_version> interpreter.
    bytecode: bool = False

    @property
    def bytecode_status(self) -> str:
        """A few words for a report: whether cold starts will have to compile the code."""
        if self.bytecode:
            return f"yes (python{self.python_version})"
        return f"NONE: no python{self.python_version} here"


def _source_files(source_dir: Path) -> list[Path]:
    files = [
        path
        for path in source_dir.rglob("*")
        if path.is_file()
        and path.name != REQUIREMENTS_FILE
        and not EXCLUDED_PARTS.intersection(path.relative_to(source_dir).parts)
        and path.suffix not in EXCLUDED_SUFFIXES
    ]
    return sorted(files, key=lambda path: path.relative_to(source_dir).as_posix())


def _common_files(lambdas_dir: Path) -> list[Path]:
    """lambdas/common/*.py: the modules every function archive carries at its root."""
    return sorted((lambdas_dir / COMMON_FOLDER).glob("*.py"), key=lambda path: path.name)


def bytecode_interpreter(python_version: str) -> str | None:
    """The `python<version>` on PATH, when it runs and is that version; None otherwise.

    A launcher that exists but cannot run that version (a pyenv shim for a version that is
    installed but not selected) counts as absent. The answer is kept per version and PATH:
    every program run packages several functions, and each probe starts an interpreter.
    """
    return _probe_interpreter(python_version, os.environ.get("PATH", os.defpath))


@functools.cache
def _probe_interpreter(python_version: str, search_path: str) -> str | None:
    candidate = shutil.which(f"python{python_version}", path=search_path)
    if candidate is None:
        return None
    try:
        probe = subprocess.run(  # noqa: S603 (an interpreter found on PATH by its name)
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0 or probe.stdout.strip() != python_version:
        return None
    return candidate


def compile_bytecode(root: Path, interpreter: str) -> None:
    """Compile every .py under `root` into __pycache__/ beside it, deterministically.

    Hash-based unchecked .pyc carry no timestamp, and the runtime, which cannot write to its
    code directory, trusts them without reading the source again. Code objects name their files
    under LAMBDA_TASK_ROOT whatever `root` is, and a fixed hash seed keeps anything ordered by
    string hashes (set constants) the same on every build.
    """
    command = [
        interpreter, "-m", "compileall", "-q", "-o", "0",  # Lambda runs without -O
        "--invalidation-mode", "unchecked-hash",
        "-s", str(root), "-p", LAMBDA_TASK_ROOT, str(root),
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    # The .pyc must land inside the archive, under the name the runtime looks for.
    for name in ("PYTHONPYCACHEPREFIX", "PYTHONOPTIMIZE"):
        environment.pop(name, None)
    result = subprocess.run(  # noqa: S603 (the interpreter bytecode_interpreter vetted)
        command, capture_output=True, text=True, check=False, env=environment
    )
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise PackagingError(
            f"could not compile the archive's Python files with {interpreter}: {' / '.join(detail)}"
        )


def dependency_cache_key(requirements: Path, python_version: str) -> str:
    """Changes with any pin, the platform or the Python version, and with nothing else."""
    parts = [requirements.read_bytes(), LAMBDA_PLATFORM.encode(), python_version.encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def installed_dependencies(
    requirements: Path, python_version: str, cache_dir: Path = DEPENDENCY_CACHE_DIR
) -> Path:
    """A folder holding the requirements installed for Lambda, reused while the pins hold."""
    key = dependency_cache_key(requirements, python_version)
    target = cache_dir / key
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
        "--platform", LAMBDA_PLATFORM, "--python-version", python_version,
        "--target", str(staging), "--requirement", str(requirements),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise PackagingError(
            f"could not install the runtime dependencies in {requirements} for Python "
            f"{python_version} on {LAMBDA_PLATFORM}: {' / '.join(detail)}. Check that PyPI is "
            "reachable and that every pinned package has an arm64 or pure-Python wheel."
        )
    try:
        staging.rename(target)
    except OSError:
        # Another build installed the same pins first; its folder is identical.
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_archive(
    function: str,
    *,
    python_version: str = DEFAULT_PYTHON_VERSION,
    lambdas_dir: Path = LAMBDAS_DIR,
    build_dir: Path = BUILD_DIR,
    cache_dir: Path = DEPENDENCY_CACHE_DIR,
) -> FunctionArchive:
    """Zip lambdas/<function>/, lambdas/common/*.py and the function's pinned dependencies,
    with their bytecode when a python<python_version> is available, into
    build/lambda/<function>.zip."""
    if function == COMMON_FOLDER:
        raise PackagingError(
            f"lambdas/{COMMON_FOLDER}/ is not a function: its modules are packaged into every "
            "function's archive"
        )
    source_dir = lambdas_dir / function
    files = _source_files(source_dir) if source_dir.is_dir() else []
    if not files:
        raise PackagingError(
            f"no source files for function {function!r} in {source_dir}; the compute layer "
            "packages each folder under lambdas/ as one function"
        )
    entries = {path.relative_to(source_dir).as_posix(): path for path in files}
    for path in _common_files(lambdas_dir):
        # The function's own module of the same name wins over the common one.
        entries.setdefault(path.name, path)
    requirements = source_dir / REQUIREMENTS_FILE
    dependency_count = 0
    if requirements.is_file() and requirements.read_text(encoding="utf-8").strip():
        dependencies = installed_dependencies(requirements, python_version, cache_dir)
        dependency_files = _source_files(dependencies)
        dependency_count = len({p.relative_to(dependencies).parts[0] for p in dependency_files})
        for path in dependency_files:
            # The function's own modules win over a dependency's file of the same name.
            entries.setdefault(path.relative_to(dependencies).as_posix(), path)
    interpreter = bytecode_interpreter(python_version)
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{function}.zip"
    # A private temporary name: parallel builds of the same function never share a file.
    partial = build_dir / f".{function}.{os.getpid()}.{uuid.uuid4().hex}.partial"
    with tempfile.TemporaryDirectory(prefix=f".{function}.", dir=build_dir) as staging_name:
        # The archive's tree, laid out in a private folder so that it can be compiled.
        staging = Path(staging_name)
        for name, source in entries.items():
            destination = staging / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(source.read_bytes())
        if interpreter is not None:
            compile_bytecode(staging, interpreter)
        staged = sorted(
            (path.relative_to(staging).as_posix(), path)
            for path in staging.rglob("*")
            if path.is_file()
        )
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, path in staged:
                entry = zipfile.ZipInfo(name, FIXED_ZIP_TIME)
                entry.external_attr = FILE_MODE
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, path.read_bytes())
    # Replace atomically so a concurrent reader never sees half an archive.
    partial.replace(target)
    digest = hashlib.sha256(target.read_bytes()).digest()
    return FunctionArchive(
        function=function,
        path=target,
        sha256_base64=base64.b64encode(digest).decode(),
        sha256_hex=digest.hex(),
        size_bytes=target.stat().st_size,
        dependency_count=dependency_count,
        python_version=python_version,
        bytecode=interpreter is not None,
    )
