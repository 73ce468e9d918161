"""`nox -s build`: package every function and report each archive."""

from __future__ import annotations

import shutil

from rich.console import Console
from rich.table import Table

from shared.packaging import FUNCTIONS, FunctionArchive, build_archive


def build_all() -> int:
    table = Table(title="Function archives (build/lambda)")
    for column in ("function", "archive", "size", "sha256", "python", "bytecode"):
        table.add_column(column)
    archives: list[FunctionArchive] = []
    for function in FUNCTIONS:
        archive = build_archive(function)
        archives.append(archive)
        table.add_row(
            function,
            str(archive.path.relative_to(archive.path.parents[2])),
            f"{archive.size_bytes / 1024:.1f} KiB",
            archive.sha256_hex[:16],
            archive.python_version,
            archive.bytecode_status,
        )
    # Wide enough for one line per archive, also when the output is not a terminal (nox, CI).
    console = Console(width=max(shutil.get_terminal_size(fallback=(120, 40)).columns, 110))
    console.print(table)
    missing = sorted({a.python_version for a in archives if not a.bytecode})
    if missing:
        versions = ", ".join(f"python{version}" for version in missing)
        console.print(
            f"No bytecode: {versions} is not on this machine's PATH, so the archives marked "
            "NONE hold source only and Lambda, whose code directory is read-only, compiles "
            "every module on each cold start (about 3x the import time for the API handler). "
            f"Build where {versions} is on PATH to ship .pyc files (the archive hash changes "
            "with it)."
        )
    return 0
