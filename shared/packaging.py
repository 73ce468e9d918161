"""Byte-for-byte reproducible deployment archives for the functions under lambdas/.

Each lambdas/<function>/ folder is the archive root; its `requirements.txt` lists the pinned
runtime dependencies, installed as arm64 wheels for the function's Python version (never boto3:
the Lambda runtime ships it). The same sources and requirements always give the same zip
(sorted entries, fixed timestamps and modes, no bytecode), so the archive's SHA-256 changes
only when the code or a pin does and an unchanged function is never redeployed.
"""

from __future__ import annotations

import base64
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
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


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


def _source_files(source_dir: Path) -> list[Path]:
    files = [
        path
        for path in source_dir.rglob("*")
        if path.name != REQUIREMENTS_FILE
        if path.is_file()
        and not EXCLUDED_PARTS.intersection(path.relative_to(source_dir).parts)
        and path.suffix not in EXCLUDED_SUFFIXES
    ]
    return sorted(files, key=lambda path: path.relative_to(source_dir).as_posix())


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
    """Zip lambdas/<function>/ and its pinned dependencies into build/lambda/<function>.zip."""
    source_dir = lambdas_dir / function
    files = _source_files(source_dir) if source_dir.is_dir() else []
    if not files:
        raise PackagingError(
            f"no source files for function {function!r} in {source_dir}; the compute layer "
            "packages each folder under lambdas/ as one function"
        )
    entries = {path.relative_to(source_dir).as_posix(): path for path in files}
    requirements = source_dir / REQUIREMENTS_FILE
    dependency_count = 0
    if requirements.is_file() and requirements.read_text(encoding="utf-8").strip():
        dependencies = installed_dependencies(requirements, python_version, cache_dir)
        dependency_files = _source_files(dependencies)
        dependency_count = len({p.relative_to(dependencies).parts[0] for p in dependency_files})
        for path in dependency_files:
            # The function's own modules win over a dependency's file of the same name.
            entries.setdefault(path.relative_to(dependencies).as_posix(), path)
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{function}.zip"
    # A private temporary name: parallel builds of the same function never share a file.
    partial = build_dir / f".{function}.{os.getpid()}.{uuid.uuid4().hex}.partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            entry = zipfile.ZipInfo(name, FIXED_ZIP_TIME)
            entry.external_attr = FILE_MODE
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, entries[name].read_bytes())
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
    )
