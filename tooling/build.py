"""`nox -s build`: build every function's archive from the tree, and report each one.

The archives are what the layers deploy (`shared.packaging.built_archive`): the programs never
build, so a deploy ships exactly the bytes built here, the same on any machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from shared.packaging import (
    FUNCTIONS,
    ArchiveMismatchError,
    FunctionArchive,
    build_archive,
    built_archive,
)


def build_archives(functions: Sequence[str] = FUNCTIONS) -> list[FunctionArchive]:
    return [build_archive(function) for function in functions]


def ensure_built(functions: Sequence[str] = FUNCTIONS) -> list[FunctionArchive]:
    """The archives as built, building only those missing or stale: what the tests, the
    benchmark and the local environment run the layer programs with."""
    archives = []
    for function in functions:
        try:
            archives.append(built_archive(function))
        except ArchiveMismatchError:
            archives.append(build_archive(function))
    return archives


def build_all() -> int:
    table = Table(title="Function archives (build/lambda): what the layers deploy")
    for column in ("function", "archive", "size", "wheels", "sha256", "sources sha256"):
        table.add_column(column)
    for archive in build_archives():
        table.add_row(
            archive.function,
            str(archive.path.relative_to(archive.path.parents[2])),
            f"{archive.size_bytes / 1024:.1f} KiB",
            str(archive.dependency_count),
            archive.sha256_hex[:16],
            archive.source_digest[:16],
        )
    # Wide enough for one line per archive, also when the output is not a terminal (nox, CI).
    console = Console(width=max(shutil.get_terminal_size(fallback=(120, 40)).columns, 110))
    console.print(table)
    console.print(
        "No bytecode: an archive's bytes depend on the tree alone (see README, Function "
        "archives, for what that costs a cold start)."
    )
    return 0
