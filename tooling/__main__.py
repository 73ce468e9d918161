"""Command line for the repository's tooling: `python -m tooling <command>`.

nox sessions call these commands, so each session stays a line or two and the logic lives
here, importable and tested.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tooling import docs


def _docs(args: argparse.Namespace) -> int:
    if args.check:
        current = docs.README.read_text(encoding="utf-8")
        owners = docs.CODEOWNERS.read_text(encoding="utf-8")
        if docs.render(current) != current or docs.codeowners() != owners:
            print(
                "README.md's generated sections or .github/CODEOWNERS are stale: run "
                "`nox -s docs`.",
                file=sys.stderr,
            )
            return 1
        print("README.md's generated sections and .github/CODEOWNERS are current.")
        return 0
    for name, changed in (
        ("README.md", docs.update_readme()),
        (".github/CODEOWNERS", docs.update_codeowners()),
    ):
        print(f"{name} updated." if changed else f"{name} already current.")
    return 0


def _build(args: argparse.Namespace) -> int:
    from tooling.build import build_all

    return build_all()


def _lock(args: argparse.Namespace) -> int:
    from tooling.lock import write_constraints

    write_constraints(Path(args.path))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling")
    commands = parser.add_subparsers(dest="command", required=True)
    docs_parser = commands.add_parser("docs", help="regenerate README sections from the code")
    docs_parser.add_argument("--check", action="store_true", help="fail if they are stale")
    docs_parser.set_defaults(run=_docs)
    build_parser = commands.add_parser("build", help="package each function under lambdas/")
    build_parser.set_defaults(run=_build)
    lock_parser = commands.add_parser(
        "lock", help="write every installed package's version to a constraints file"
    )
    lock_parser.add_argument("path", help="the constraints file to write")
    lock_parser.set_defaults(run=_lock)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
