"""`nox -s build`: package every function and report each archive."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from shared.packaging import FUNCTIONS, build_archive


def build_all() -> int:
    table = Table(title="Function archives (build/lambda)")
    for column in ("function", "archive", "size", "sha256"):
        table.add_column(column)
    for function in FUNCTIONS:
        archive = build_archive(function)
        table.add_row(
            function,
            str(archive.path.relative_to(archive.path.parents[2])),
            f"{archive.size_bytes / 1024:.1f} KiB",
            archive.sha256_hex[:16],
        )
    Console().print(table)
    return 0
