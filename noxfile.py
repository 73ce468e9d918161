"""Developer and CI entry points. Each session is a line or two; the work lives in tooling/.

`nox -l` lists them; `nox -s tests` is what CI runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

nox.needs_version = ">=2026.10.20"
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

PYTHON = "3.11"


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=False)
def dev(session: nox.Session) -> None:
    """Create .venv with everything: what `pulumi up` in stacks/<layer> runs with."""
    session.run(sys.executable, "-m", "venv", ".venv")
    session.run(".venv/bin/python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (every layer under Pulumi mocks, handlers on moto)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check formatting, lint and types (ruff, mypy; each stack program on its own)."""
    _install(session)
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    session.run("mypy", "shared", "tooling", "tests", "noxfile.py")
    # Every stack program is a module named __main__, so each is checked on its own.
    for program in sorted(Path("stacks").glob("*/__main__.py")):
        session.run("mypy", str(program))


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Regenerate README's layer diagram, outputs and config reference from the code."""
    _install(session)
    session.run("python", "-m", "tooling", "docs", *session.posargs)


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Package each function under lambdas/ into a reproducible zip and report its size."""
    _install(session)
    session.run("python", "-m", "tooling", "build")
