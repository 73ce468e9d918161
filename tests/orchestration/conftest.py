"""Fixtures for the orchestrator tests: an in-memory engine, an orchestrator whose console
and reports go to temporary places, and a real git repository with a small manifest."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import textwrap
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from shared.manifest import MANIFEST, REPO_ROOT, Manifest
from tooling.gitrepo import GitRepo
from tooling.orchestrator.cli import main
from tooling.orchestrator.engine import Engine
from tooling.orchestrator.fingerprint import RepoSources
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import Orchestrator, Preflight
from tooling.orchestrator.render import RichRenderer
from tooling.orchestrator.targets import AwsTarget, LocalTarget, Target


def make_console() -> Console:
    return Console(file=io.StringIO(), width=200, force_terminal=False, color_system=None)


def console_text(console: Console) -> str:
    stream = console.file
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


class CliRun:
    """Calls the orchestrator's main() in a throwaway repository, with the engines and the
    preflight a subclass gives, and keeps what it printed."""

    def __init__(self, root: Path, emulator_url: str) -> None:
        self.root = root
        self.emulator_url = emulator_url
        self.out = make_console()
        self.err = make_console()

    def factory(self, target: Target, stack: str, policy_packs: Sequence[str]) -> Engine:
        raise NotImplementedError

    def preflight(self, target: Target, stack: str, console: Console, root: Path) -> Preflight:
        raise NotImplementedError

    def __call__(self, *argv: str, environ: dict[str, str] | None = None) -> int:
        return main(
            list(argv),
            repo_root=self.root,
            engine_factory=self.factory,
            preflight_factory=self.preflight,
            console=self.out,
            error_console=self.err,
            environ={"AWS_ENDPOINT_URL": self.emulator_url} if environ is None else environ,
        )

    @property
    def stdout(self) -> str:
        return console_text(self.out)

    @property
    def stderr(self) -> str:
        return console_text(self.err)


@dataclass
class Harness:
    """An orchestrator over an in-memory engine, with what the tests look at."""

    engine: InMemoryEngine
    orchestrator: Orchestrator
    console: Console
    build_dir: Path
    sleeps: list[float] = field(default_factory=list)

    @property
    def output(self) -> str:
        return console_text(self.console)


HarnessFactory = Callable[..., Harness]


@pytest.fixture
def harness(tmp_path: Path) -> HarnessFactory:
    """Build a Harness; by default the real manifest, the local target and this repository."""

    def build(
        *,
        manifest: Manifest = MANIFEST,
        target: Target | None = None,
        repo: GitRepo | None = None,
        engine: InMemoryEngine | None = None,
        stack: str = "local",
    ) -> Harness:
        console = make_console()
        sleeps: list[float] = []
        repository = repo or GitRepo(REPO_ROOT)
        memory = engine or InMemoryEngine(manifest, stack=stack)
        build_dir = tmp_path / "build"
        orchestrator = Orchestrator(
            memory,
            stack=stack,
            target=target or LocalTarget(repo_root=repository.root),
            repo=repository,
            manifest=manifest,
            renderer=RichRenderer(console),
            build_dir=build_dir,
            sleep=sleeps.append,
            # A test's own repository is fingerprinted as it is; the real one as simulated.
            sources=RepoSources(repo) if repo is not None else memory.sources,
        )
        return Harness(memory, orchestrator, console, build_dir, sleeps)

    return build


@pytest.fixture
def aws_target(tmp_path: Path) -> AwsTarget:
    return AwsTarget(repo_root=tmp_path, credentials_probe=lambda _: "test")


GIT = shutil.which("git") or "git"


def git(root: Path, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 (the test's own git commands)
        [
            GIT,
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def manifest_source(
    security_outputs: Sequence[str] = ("kms_key_arn", "kms_alias_name"),
    storage_reads: Sequence[str] = ("kms_key_arn",),
    compute_reads: Sequence[str] = ("kms_key_arn",),
) -> str:
    """A three-layer shared/manifest.py, built on the real classes."""
    promised = ", ".join(f'"{key}": OutputSpec("{key}")' for key in security_outputs)
    return textwrap.dedent(
        f"""
        from shared.manifest import Layer, Manifest, OutputSpec

        MANIFEST = Manifest(
            layers=(
                Layer(name="security", owner="@t", description="keys", outputs={{{promised}}}),
                Layer(
                    name="storage",
                    owner="@t",
                    description="bucket",
                    outputs={{"s3_bucket_name": OutputSpec("bucket")}},
                    consumes={{"security": {tuple(storage_reads)!r}}},
                ),
                Layer(
                    name="compute",
                    owner="@t",
                    description="functions",
                    outputs={{"function_name": OutputSpec("function")}},
                    consumes={{
                        "security": {tuple(compute_reads)!r},
                        "storage": ("s3_bucket_name",),
                    }},
                ),
            )
        )
        """
    )


def load_manifest(source: str) -> Manifest:
    module = types.ModuleType("_test_manifest")
    exec(compile(source, "manifest", "exec"), module.__dict__)  # noqa: S102 (test source)
    manifest = module.__dict__["MANIFEST"]
    assert isinstance(manifest, Manifest)
    return manifest


@dataclass
class SmallRepo:
    """A git repository with shared/manifest.py and one program per layer, per commit."""

    root: Path
    commits: list[str] = field(default_factory=list)

    def commit(self, label: str, manifest: str = "") -> str:
        (self.root / "shared").mkdir(exist_ok=True)
        (self.root / "shared" / "manifest.py").write_text(manifest or manifest_source())
        for layer in ("security", "storage", "compute"):
            program = self.root / "stacks" / layer / "__main__.py"
            program.parent.mkdir(parents=True, exist_ok=True)
            program.write_text(f'"""{layer} program at {label}."""\n')
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", label)
        sha = git(self.root, "rev-parse", "HEAD")
        self.commits.append(sha)
        return sha

    @property
    def repo(self) -> GitRepo:
        return GitRepo(self.root)


@pytest.fixture
def small_repo(tmp_path: Path) -> SmallRepo:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    return SmallRepo(root)


@pytest.fixture
def small_manifest() -> Manifest:
    return load_manifest(manifest_source())


@pytest.fixture
def listening_emulator() -> Iterator[str]:
    """A URL where something accepts connections, as a running emulator does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
