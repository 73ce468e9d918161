"""Deployment archives of the functions under lambdas/: built once, deployed as built.

`nox -s build` (`build_archive`) zips, for each function the manifest declares
(`Layer.functions`), its folder lambdas/<function>/ (the archive's root), the modules of
lambdas/common/*.py beside them (the function's own file wins on a name clash), and the files
of the wheels its requirements.txt pins, by version and by hash: pure-Python wheels, extracted
as they are (never boto3: the Lambda runtime ships it). The archive's bytes are a function of
the git tree alone: sorted entries, fixed timestamps and modes, no bytecode (the README's
"Function archives" gives the measured cold-start cost of that choice), wheels checked against
their pinned hashes; so two clean clones give the same bytes on any machine, whatever
interpreters are on PATH.

The archive's zip comment records the SHA-256 of the sources it was built from
(`source_digest`). The layer programs never build or install anything: `built_archive` reads
build/lambda/<function>.zip and refuses, naming `nox -s build`, when it is missing or no longer
matches the tree.
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

from shared.manifest import MANIFEST, REPO_ROOT

LAMBDAS_DIR = REPO_ROOT / "lambdas"
# The functions the layers package, in manifest order (each is the folder lambdas/<name>/).
FUNCTIONS = tuple(function.name for function in MANIFEST.functions)
# lambdas/common/ is not a function: its *.py files are copied into every function's archive.
COMMON_FOLDER = "common"
# Lambda's current Python runtimes, newest first.
SUPPORTED_RUNTIMES = ("python3.13", "python3.12")
BUILD_DIR = REPO_ROOT / "build" / "lambda"
DEPENDENCY_CACHE_DIR = REPO_ROOT / "build" / "lambda-deps"
REQUIREMENTS_FILE = "requirements.txt"
# The functions run on arm64 (Graviton); pip picks wheels for that platform and the newest
# runtime's Python (only pure-Python wheels are accepted, so either runtime gets the same).
LAMBDA_PLATFORM = "manylinux2014_aarch64"
DEFAULT_PYTHON_VERSION = "3.13"
# Bumped when the archive's layout changes, so archives built the old way no longer match.
ARCHIVE_FORMAT = "archive-format-2"
SOURCE_COMMENT_PREFIX = "serverless-platform sources sha256="

# The earliest timestamp a zip entry can hold; any fixed value makes builds reproducible.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
# Never taken from a source tree or a wheel: caches there are stale or from another
# interpreter, and the archive ships no bytecode.
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
# Where the code is on Lambda; compiled code objects name their files under it (the
# benchmark compiles an archive's layout to measure what bytecode would save).
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
    # SHA-256 of the sources it was built from (`source_digest`), also its zip comment.
    source_digest: str


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


def compile_bytecode(root: Path, interpreter: str) -> None:
    """Compile every .py under `root` into __pycache__/ beside it, deterministically.

    Archives ship no bytecode; the benchmark uses this to measure the cold start they would
    have with it.

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


def source_digest(function: str, *, lambdas_dir: Path = LAMBDAS_DIR) -> str:
    """SHA-256 of everything in the tree that goes into the function's archive: its files, the
    common modules and its pinned requirements (names and bytes, in archive order)."""
    digest = hashlib.sha256(f"{ARCHIVE_FORMAT}\0".encode())
    for name, path in sorted(_code_entries(function, lambdas_dir).items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    requirements = lambdas_dir / function / REQUIREMENTS_FILE
    if requirements.is_file():
        digest.update(b"requirements\0" + requirements.read_bytes())
    return digest.hexdigest()


def _code_entries(function: str, lambdas_dir: Path) -> dict[str, Path]:
    """Archive name -> source file, for the function's own files and the common modules."""
    if function == COMMON_FOLDER:
        raise PackagingError(
            f"lambdas/{COMMON_FOLDER}/ is not a function: its modules are packaged into every "
            "function's archive"
        )
    source_dir = lambdas_dir / function
    files = _source_files(source_dir) if source_dir.is_dir() else []
    if not files:
        raise PackagingError(
            f"no source files for function {function!r} in {source_dir}; each function the "
            "manifest declares is the folder lambdas/<function>/"
        )
    entries = {path.relative_to(source_dir).as_posix(): path for path in files}
    for path in _common_files(lambdas_dir):
        # The function's own module of the same name wins over the common one.
        entries.setdefault(path.name, path)
    return entries


def pinned_wheels(requirements: Path, cache_dir: Path = DEPENDENCY_CACHE_DIR) -> list[Path]:
    """The wheels `requirements` pins, downloaded once into a folder named after its bytes.

    Only pure-Python wheels are accepted: their files are the same for every platform and
    Python version, which is what makes the archive's bytes a function of the tree alone.
    """
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    target = cache_dir / key
    if not target.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--require-hashes", "--implementation", "cp",
            "--platform", LAMBDA_PLATFORM, "--python-version", DEFAULT_PYTHON_VERSION,
            "--dest", str(staging), "--requirement", str(requirements),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise PackagingError(
                f"could not download the wheels {requirements} pins: {' / '.join(detail)}. "
                "Check that PyPI is reachable and that every pin has its --hash."
            )
        try:
            staging.rename(target)
        except OSError:
            # Another build downloaded the same pins first; its wheels are identical.
            shutil.rmtree(staging, ignore_errors=True)
    wheels = sorted(target.glob("*.whl"))
    impure = [wheel.name for wheel in wheels if not wheel.name.endswith("-py3-none-any.whl")]
    if impure:
        raise PackagingError(
            f"{', '.join(impure)} {'is' if len(impure) == 1 else 'are'} not pure-Python: its "
            "files would depend on the runtime's platform and Python version. Pin a "
            "py3-none-any wheel, or extend the build to choose wheels per runtime."
        )
    return wheels


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            info.filename: archive.read(info)
            for info in archive.infolist()
            if not info.is_dir()
            and not EXCLUDED_PARTS.intersection(info.filename.split("/"))
            and Path(info.filename).suffix not in EXCLUDED_SUFFIXES
        }


def build_archive(
    function: str,
    *,
    lambdas_dir: Path = LAMBDAS_DIR,
    build_dir: Path = BUILD_DIR,
    cache_dir: Path = DEPENDENCY_CACHE_DIR,
) -> FunctionArchive:
    """Zip lambdas/<function>/, lambdas/common/*.py and the files of the function's pinned
    wheels into build/lambda/<function>.zip (see the module's docstring)."""
    contents = {
        name: path.read_bytes() for name, path in _code_entries(function, lambdas_dir).items()
    }
    requirements = lambdas_dir / function / REQUIREMENTS_FILE
    wheels: list[Path] = []
    if requirements.is_file() and requirements.read_text(encoding="utf-8").strip():
        wheels = pinned_wheels(requirements, cache_dir)
        for wheel in wheels:
            for name, data in _wheel_files(wheel).items():
                # The function's own modules win over a dependency's file of the same name.
                contents.setdefault(name, data)
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{function}.zip"
    # A private temporary name: parallel builds of the same function never share a file.
    partial = build_dir / f".{function}.{os.getpid()}.{uuid.uuid4().hex}.partial"
    digest = source_digest(function, lambdas_dir=lambdas_dir)
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(contents):
            entry = zipfile.ZipInfo(name, FIXED_ZIP_TIME)
            entry.external_attr = FILE_MODE
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, contents[name])
        archive.comment = f"{SOURCE_COMMENT_PREFIX}{digest}".encode()
    # Replace atomically so a concurrent reader never sees half an archive.
    partial.replace(target)
    return _described(function, target, digest, dependency_count=len(wheels))


def _described(function: str, path: Path, digest: str, *, dependency_count: int) -> FunctionArchive:
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).digest()
    return FunctionArchive(
        function=function,
        path=path,
        sha256_base64=base64.b64encode(sha256).decode(),
        sha256_hex=sha256.hex(),
        size_bytes=len(data),
        dependency_count=dependency_count,
        source_digest=digest,
    )


class ArchiveMismatchError(PackagingError):
    """The built archive is missing or was built from other sources than the tree's."""


def built_archive(
    function: str, *, lambdas_dir: Path = LAMBDAS_DIR, build_dir: Path = BUILD_DIR
) -> FunctionArchive:
    """The archive `nox -s build` made for `function`, checked against the tree: what a layer
    program deploys. Raises ArchiveMismatchError, naming the command to run, otherwise."""
    path = build_dir / f"{function}.zip"
    expected = source_digest(function, lambdas_dir=lambdas_dir)
    if not path.is_file():
        raise ArchiveMismatchError(
            f"{path} does not exist: the layers deploy archives built beforehand, from the "
            "tree, never during a deployment. Build them with `nox -s build`."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            comment = archive.comment.decode(errors="replace")
            wheels = {name.split("/")[0] for name in archive.namelist() if ".dist-info/" in name}
    except zipfile.BadZipFile:
        comment, wheels = "", set()
    if comment != f"{SOURCE_COMMENT_PREFIX}{expected}":
        raise ArchiveMismatchError(
            f"{path} was not built from the current lambdas/{function}/, lambdas/common/ and "
            "requirements (the sources changed since, or it was built elsewhere): rebuild it "
            "with `nox -s build`."
        )
    return _described(function, path, expected, dependency_count=len(wheels))
