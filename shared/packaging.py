"""Byte-for-byte reproducible deployment archives for the functions under lambdas/.

The same sources always give the same zip (sorted entries, fixed timestamps and modes), so
the archive's SHA-256 changes only when the code does and an unchanged function is never
redeployed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from shared.manifest import REPO_ROOT

LAMBDAS_DIR = REPO_ROOT / "lambdas"
# The folders under lambdas/ the compute layer deploys, one function each.
FUNCTIONS = ("s3_processor", "api_handler")
BUILD_DIR = REPO_ROOT / "build" / "lambda"

# The earliest timestamp a zip entry can hold; any fixed value makes builds reproducible.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


class PackagingError(RuntimeError):
    """The function's source folder is missing or empty."""


@dataclass(frozen=True)
class FunctionArchive:
    function: str
    path: Path
    sha256_base64: str
    sha256_hex: str
    size_bytes: int


def _source_files(source_dir: Path) -> list[Path]:
    files = [
        path
        for path in source_dir.rglob("*")
        if path.is_file()
        and not EXCLUDED_PARTS.intersection(path.relative_to(source_dir).parts)
        and path.suffix not in EXCLUDED_SUFFIXES
    ]
    return sorted(files, key=lambda path: path.relative_to(source_dir).as_posix())


def build_archive(
    function: str, *, lambdas_dir: Path = LAMBDAS_DIR, build_dir: Path = BUILD_DIR
) -> FunctionArchive:
    """Zip lambdas/<function>/ into build/lambda/<function>.zip, reproducibly."""
    source_dir = lambdas_dir / function
    files = _source_files(source_dir) if source_dir.is_dir() else []
    if not files:
        raise PackagingError(
            f"no source files for function {function!r} in {source_dir}; the compute layer "
            "packages each folder under lambdas/ as one function"
        )
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{function}.zip"
    # A private temporary name: parallel builds of the same function never share a file.
    partial = build_dir / f".{function}.{os.getpid()}.{uuid.uuid4().hex}.partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(source_dir).as_posix(), FIXED_ZIP_TIME)
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
    )
