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
    """Check formatting, lint and types (ruff, mypy; each stack program and function apart)."""
    _install(session)
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    session.run("mypy", "shared", "tooling", "policy", "tests", "noxfile.py")
    # Every stack program is a module named __main__, so each is checked on its own.
    for program in sorted(Path("stacks").glob("*/__main__.py")):
        session.run("mypy", str(program))
    # Every function folder is an archive root with its own `handler` module, and imports
    # lambdas/common's modules from that root, so each is checked on its own.
    for handler in sorted(Path("lambdas").glob("*/handler.py")):
        folder = handler.parent
        session.run("mypy", str(folder), env={"MYPYPATH": f"{folder}:lambdas/common"})
    session.run("mypy", "lambdas/common", env={"MYPYPATH": "lambdas/common"})


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Regenerate README's layer diagram, outputs and config reference from the code."""
    _install(session)
    session.run("python", "-m", "tooling", "docs", *session.posargs)


@nox.session(python=PYTHON)
def synth(session: nox.Session) -> None:
    """Synthesize every layer offline: inventory, policy verdicts, IAM lint; `-- --diff REF`."""
    _install(session)
    session.run("python", "-m", "tooling.synth", *session.posargs)


@nox.session(python=PYTHON, default=False)
def local(session: nox.Session) -> None:
    """Run the whole application on this machine (moto + in-process handlers); -- --smoke."""
    _install(session)
    session.run("python", "-m", "tooling.local", *session.posargs)


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Package each function under lambdas/ into a reproducible zip and report its size."""
    _install(session)
    session.run("python", "-m", "tooling", "build")


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Measure handler latency, throughput, memory and cold start; print the table."""
    _install(session)
    session.run("python", "-m", "tooling.handler_bench", *session.posargs)


# Deployment sessions: tooling/orchestrator does the work; options go after `--`
# (--stack, --target local|aws, ...). Exit codes are listed in the README.
def _orchestrate(session: nox.Session, command: str) -> None:
    _install(session)
    session.run("python", "-m", "tooling.orchestrator", command, *session.posargs)


@nox.session(python=PYTHON, default=False)
def deploy_all(session: nox.Session) -> None:
    """Deploy every layer in order, fail-fast, report in build/ (-- --resume: retry the rest)."""
    _orchestrate(session, "deploy-all")


@nox.session(python=PYTHON, default=False)
def deploy(session: nox.Session) -> None:
    """Deploy one layer: -- <layer> (refused while an upstream was never deployed)."""
    _orchestrate(session, "deploy")


@nox.session(python=PYTHON, default=False)
def preview_all(session: nox.Session) -> None:
    """Preview every layer in order (exit 0 no changes, 4 changes, 1 error)."""
    _orchestrate(session, "preview-all")


@nox.session(python=PYTHON, default=False)
def destroy_all(session: nox.Session) -> None:
    """Destroy every layer in reverse order (-- --yes off the local target)."""
    _orchestrate(session, "destroy-all")


@nox.session(python=PYTHON, default=False)
def destroy(session: nox.Session) -> None:
    """Destroy one layer: -- <layer> [--cascade] (refused while a downstream layer exists)."""
    _orchestrate(session, "destroy")


@nox.session(python=PYTHON, default=False)
def rollback(session: nox.Session) -> None:
    """Redeploy one layer from an earlier revision: -- <layer> [--to <git-ref> | --steps N]."""
    _orchestrate(session, "rollback")


@nox.session(python=PYTHON, default=False)
def graph(session: nox.Session) -> None:
    """Print the layer graph and the keys passed between layers (Mermaid and DOT)."""
    _orchestrate(session, "graph")


@nox.session(python=PYTHON, default=False)
def outputs(session: nox.Session) -> None:
    """Show every layer's outputs in one table, secrets masked."""
    _orchestrate(session, "outputs")


@nox.session(python=PYTHON, default=False)
def status(session: nox.Session) -> None:
    """Show each layer's last update (time, commit, result) and stale consumers."""
    _orchestrate(session, "status")
