"""Function archives are reproducible, contain the code, lambdas/common and the pinned
dependencies only, and the bytecode of the target Python version when it is available."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shared import packaging
from shared.packaging import PackagingError, build_archive, dependency_cache_key

# The running interpreter is the one target version these tests can compile for.
THIS_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PYC_TAG = sys.implementation.cache_tag  # cpython-311
# A version no machine has an interpreter for.
ABSENT_VERSION = "3.99"


@pytest.fixture(autouse=True)
def only_this_interpreter_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds `python<this version>` and nothing else, whatever the machine has."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / f"python{THIS_VERSION}").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def _function(root: Path, files: dict[str, str], folder_name: str = "fn") -> Path:
    folder = root / "lambdas" / folder_name
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "lambdas"


def _common(root: Path, files: dict[str, str]) -> Path:
    return _function(root, files, folder_name=packaging.COMMON_FOLDER)


def _names(archive: packaging.FunctionArchive) -> list[str]:
    with zipfile.ZipFile(archive.path) as zipped:
        return zipped.namelist()


def _read(archive: packaging.FunctionArchive, name: str) -> bytes:
    with zipfile.ZipFile(archive.path) as zipped:
        return zipped.read(name)


def _build(root: Path, **kwargs: Any) -> packaging.FunctionArchive:
    # Without bytecode unless a test asks for this interpreter's version.
    kwargs.setdefault("python_version", ABSENT_VERSION)
    return build_archive(
        "fn",
        lambdas_dir=root / "lambdas",
        build_dir=root / "build",
        cache_dir=root / "cache",
        **kwargs,
    )


def test_same_sources_give_the_same_bytes_whatever_the_timestamps(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n", "lib/util.py": "y = 2\n"})
    first = _build(tmp_path)
    first_bytes = first.path.read_bytes()
    for path in (tmp_path / "lambdas" / "fn").rglob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    again = _build(tmp_path)
    assert again.sha256_hex == first.sha256_hex
    assert again.path.read_bytes() == first_bytes
    with zipfile.ZipFile(again.path) as archive:
        assert archive.namelist() == ["handler.py", "lib/util.py"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_code_change_changes_the_hash(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n"})
    before = _build(tmp_path).sha256_base64
    _function(tmp_path, {"handler.py": "x = 2\n"})
    assert _build(tmp_path).sha256_base64 != before


def test_caches_bytecode_and_the_requirements_file_stay_out(tmp_path: Path) -> None:
    _function(
        tmp_path,
        {
            "handler.py": "x = 1\n",
            "__pycache__/handler.cpython-311.pyc": "",
            ".mypy_cache/x.json": "{}",
            "requirements.txt": "",
        },
    )
    with zipfile.ZipFile(_build(tmp_path).path) as archive:
        assert archive.namelist() == ["handler.py"]


def test_pinned_dependencies_are_bundled_beside_the_code(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "import tinylib\n", "requirements.txt": "tinylib==1.0\n"})
    requirements = tmp_path / "lambdas" / "fn" / "requirements.txt"
    # A populated cache folder is what a previous install left: no network is needed.
    installed = tmp_path / "cache" / dependency_cache_key(requirements, ABSENT_VERSION)
    (installed / "tinylib").mkdir(parents=True)
    (installed / "tinylib" / "__init__.py").write_text("VERSION = 1\n", encoding="utf-8")
    archive = _build(tmp_path)
    assert archive.dependency_count == 1
    with zipfile.ZipFile(archive.path) as zipped:
        assert zipped.namelist() == ["handler.py", "tinylib/__init__.py"]


def test_the_cache_key_follows_pins_and_python_version(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("a==1\n", encoding="utf-8")
    key_313 = dependency_cache_key(requirements, "3.13")
    assert dependency_cache_key(requirements, "3.12") != key_313
    requirements.write_text("a==2\n", encoding="utf-8")
    assert dependency_cache_key(requirements, "3.13") != key_313


def test_a_failed_install_names_the_file_and_what_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n", "requirements.txt": "missing==9\n"})
    calls: list[list[str]] = []

    def failing_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(PackagingError, match="No matching distribution") as raised:
        _build(tmp_path, python_version="3.13")
    assert "requirements.txt" in str(raised.value)
    assert "PyPI is reachable" in str(raised.value)
    (command,) = calls
    assert command[command.index("--platform") + 1] == "manylinux2014_aarch64"
    assert command[command.index("--python-version") + 1] == "3.13"
    assert "--no-deps" in command, "requirements.txt is a complete lock of pinned versions"
    assert not list((tmp_path / "cache").iterdir()), "a failed install leaves no cache entry"


def test_an_empty_function_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lambdas" / "fn").mkdir(parents=True)
    with pytest.raises(PackagingError, match="no source files for function 'fn'"):
        _build(tmp_path)


def test_common_modules_sit_at_the_archive_root_beside_the_function(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "import result_keys\n", "lib/util.py": "y = 2\n"})
    _common(
        tmp_path,
        {
            "result_keys.py": "RESULT = 1\n",
            "function_config.py": "CONFIG = 1\n",
            "README.md": "only *.py is common code\n",
            "nested/ignored.py": "z = 3\n",
            "__pycache__/result_keys.cpython-311.pyc": "stale",
        },
    )
    assert _names(_build(tmp_path)) == [
        "function_config.py",
        "handler.py",
        "lib/util.py",
        "result_keys.py",
    ]


def test_the_function_s_own_module_wins_over_a_common_one(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n", "result_keys.py": "OWN = True\n"})
    _common(tmp_path, {"result_keys.py": "OWN = False\n"})
    archive = _build(tmp_path)
    assert _names(archive) == ["handler.py", "result_keys.py"]
    assert _read(archive, "result_keys.py") == b"OWN = True\n"


def test_a_change_in_common_code_changes_every_archive_hash(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n"})
    _common(tmp_path, {"result_keys.py": "RESULT = 1\n"})
    before = _build(tmp_path).sha256_hex
    _common(tmp_path, {"result_keys.py": "RESULT = 2\n"})
    assert _build(tmp_path).sha256_hex != before


def test_common_is_shared_code_not_a_function(tmp_path: Path) -> None:
    _common(tmp_path, {"result_keys.py": "RESULT = 1\n"})
    with pytest.raises(PackagingError, match="not a function"):
        build_archive(
            packaging.COMMON_FOLDER,
            lambdas_dir=tmp_path / "lambdas",
            build_dir=tmp_path / "build",
            cache_dir=tmp_path / "cache",
        )


def test_functions_lists_every_deployable_function_folder_and_nothing_else() -> None:
    with_handler = {path.parent.name for path in packaging.LAMBDAS_DIR.glob("*/handler.py")}
    assert set(packaging.FUNCTIONS) == with_handler
    assert packaging.COMMON_FOLDER not in packaging.FUNCTIONS
    assert (packaging.LAMBDAS_DIR / packaging.COMMON_FOLDER / "result_keys.py").is_file()


# Bytecode

# A set constant is a frozenset in the bytecode, whose order follows string hashes: the build
# fixes the hash seed (and marshal sorts frozensets since 3.11), so two builds still agree.
_HANDLER_WITH_A_SET = (
    "import result_keys\n"
    "KINDS = 'kind'\n"
    "def known(name):\n"
    "    return name in {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'}\n"
)


def test_bytecode_is_compiled_for_the_target_version_reproducibly(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": _HANDLER_WITH_A_SET, "lib/util.py": "y = 2\n"})
    _common(tmp_path, {"result_keys.py": "RESULT = 1\n"})
    first = _build(tmp_path, python_version=THIS_VERSION)
    first_bytes = first.path.read_bytes()
    assert first.bytecode
    assert first.bytecode_status == f"yes (python{THIS_VERSION})"
    assert _names(first) == [
        f"__pycache__/handler.{PYC_TAG}.pyc",
        f"__pycache__/result_keys.{PYC_TAG}.pyc",
        "handler.py",
        f"lib/__pycache__/util.{PYC_TAG}.pyc",
        "lib/util.py",
        "result_keys.py",
    ]
    for path in (tmp_path / "lambdas").rglob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    # Another build folder too: no path of the build machine ends up in the bytecode.
    again = build_archive(
        "fn",
        python_version=THIS_VERSION,
        lambdas_dir=tmp_path / "lambdas",
        build_dir=tmp_path / "elsewhere",
        cache_dir=tmp_path / "cache",
    )
    assert again.path.read_bytes() == first_bytes
    assert again.sha256_hex == first.sha256_hex
    assert sorted(path.name for path in (tmp_path / "build").iterdir()) == ["fn.zip"]


def test_the_bytecode_is_hash_based_unchecked_and_used_as_is(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "ANSWER = 'from the archive'\n"})
    archive = _build(tmp_path, python_version=THIS_VERSION)
    pyc = _read(archive, f"__pycache__/handler.{PYC_TAG}.pyc")
    # PEP 552 flags: bit 0 hash-based, bit 1 check the source; no timestamp in the header.
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    extracted = tmp_path / "task"
    with zipfile.ZipFile(archive.path) as zipped:
        zipped.extractall(extracted)
    # Lambda's code directory is read-only; an edited source proves the .pyc is what runs.
    (extracted / "handler.py").write_text("ANSWER = 'recompiled'\n", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-B", "-c", "import handler; print(handler.ANSWER)"],
        cwd=extracted,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert completed.stdout.strip() == "from the archive"


def test_stale_caches_in_the_source_tree_are_replaced_by_fresh_bytecode(tmp_path: Path) -> None:
    _function(
        tmp_path,
        {
            "handler.py": "x = 1\n",
            f"__pycache__/handler.{PYC_TAG}.pyc": "stale bytes from another build",
            "__pycache__/gone.cpython-39.pyc": "a module that no longer exists",
        },
    )
    archive = _build(tmp_path, python_version=THIS_VERSION)
    assert _names(archive) == [f"__pycache__/handler.{PYC_TAG}.pyc", "handler.py"]
    assert b"stale" not in _read(archive, f"__pycache__/handler.{PYC_TAG}.pyc")


def test_without_an_interpreter_for_the_target_the_archive_has_no_bytecode_and_says_so(
    tmp_path: Path,
) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n"})
    archive = _build(tmp_path, python_version=ABSENT_VERSION)
    assert not archive.bytecode
    assert _names(archive) == ["handler.py"]
    assert archive.bytecode_status == f"NONE: no python{ABSENT_VERSION} here"


def test_a_launcher_that_cannot_run_the_version_counts_as_absent(
    tmp_path: Path, only_this_interpreter_on_path: Path
) -> None:
    # What pyenv leaves on PATH for a version that is installed but not selected.
    shim = only_this_interpreter_on_path / f"python{ABSENT_VERSION}"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.99: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    _function(tmp_path, {"handler.py": "x = 1\n"})
    assert packaging.bytecode_interpreter(ABSENT_VERSION) is None
    assert not _build(tmp_path, python_version=ABSENT_VERSION).bytecode


def test_code_that_does_not_compile_for_the_target_fails_the_build(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "def broken(:\n"})
    with pytest.raises(PackagingError, match="could not compile"):
        _build(tmp_path, python_version=THIS_VERSION)
    assert not list((tmp_path / "build").iterdir()), "a failed build leaves nothing behind"
