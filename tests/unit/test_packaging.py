"""Function archives: their bytes are a function of the tree alone, they hold the code,
lambdas/common and the pinned wheels' files only, and the layer programs deploy them as built,
refusing one that is missing or no longer matches the tree."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shared import packaging
from shared.manifest import MANIFEST, REPO_ROOT
from shared.packaging import (
    ArchiveMismatchError,
    PackagingError,
    build_archive,
    built_archive,
    source_digest,
)


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


def _build(root: Path, function: str = "fn") -> packaging.FunctionArchive:
    return build_archive(
        function,
        lambdas_dir=root / "lambdas",
        build_dir=root / "build",
        cache_dir=root / "cache",
    )


def _wheel(path: Path, files: dict[str, str]) -> Path:
    """A pure-Python wheel as pip downloads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def _cached_wheels(root: Path, requirements: Path, wheels: dict[str, dict[str, str]]) -> None:
    """What an earlier download left in the cache: no network is needed."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    for name, files in wheels.items():
        _wheel(root / "cache" / key / name, files)


def test_same_sources_give_the_same_bytes_whatever_the_timestamps(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n", "lib/util.py": "y = 2\n"})
    first = _build(tmp_path)
    first_bytes = first.path.read_bytes()
    for path in (tmp_path / "lambdas" / "fn").rglob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    again = _build(tmp_path)
    assert again.sha256_hex == first.sha256_hex
    assert again.path.read_bytes() == first_bytes
    assert _names(again) == ["handler.py", "lib/util.py"]


def test_two_clones_with_different_paths_and_interpreters_give_identical_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, a python3.13 on PATH changed the archive (it compiled bytecode): now nothing on
    # the machine does. Two "clones" in different folders, one with such an interpreter.
    archives = []
    for clone, path in (("one", "/usr/bin:/bin"), ("two", None)):
        root = tmp_path / clone
        _function(root, {"handler.py": "import result_keys\n"})
        _common(root, {"result_keys.py": "RESULT = 1\n"})
        if path is None:
            bin_dir = root / "bin"
            bin_dir.mkdir()
            (bin_dir / "python3.13").symlink_to(sys.executable)
            path = f"{bin_dir}:/usr/bin:/bin"
        monkeypatch.setenv("PATH", path)
        archives.append(_build(root))
    assert archives[0].path.read_bytes() == archives[1].path.read_bytes()
    assert not [name for name in _names(archives[1]) if name.endswith(".pyc")]


def test_a_code_change_changes_the_hash_and_the_recorded_sources(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n"})
    before = _build(tmp_path)
    _function(tmp_path, {"handler.py": "x = 2\n"})
    after = _build(tmp_path)
    assert after.sha256_hex != before.sha256_hex
    assert after.source_digest != before.source_digest
    with zipfile.ZipFile(after.path) as zipped:
        assert zipped.comment.decode() == f"{packaging.SOURCE_COMMENT_PREFIX}{after.source_digest}"


def test_caches_bytecode_and_the_requirements_file_stay_out(tmp_path: Path) -> None:
    _function(
        tmp_path,
        {
            "handler.py": "x = 1\n",
            "requirements.txt": "",
            "__pycache__/handler.cpython-311.pyc": "stale",
            "old.pyc": "stale",
        },
    )
    assert _names(_build(tmp_path)) == ["handler.py"]


def test_the_pinned_wheels_files_are_bundled_beside_the_code(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "import tinylib\n", "requirements.txt": "tinylib==1.0\n"})
    requirements = tmp_path / "lambdas" / "fn" / "requirements.txt"
    _cached_wheels(
        tmp_path,
        requirements,
        {
            "tinylib-1.0-py3-none-any.whl": {
                "tinylib/__init__.py": "VERSION = 1\n",
                "tinylib/__pycache__/x.cpython-313.pyc": "compiled",
                "tinylib-1.0.dist-info/METADATA": "Name: tinylib\n",
            }
        },
    )
    archive = _build(tmp_path)
    assert archive.dependency_count == 1
    assert _names(archive) == [
        "handler.py",
        "tinylib-1.0.dist-info/METADATA",
        "tinylib/__init__.py",
    ]
    # What the program reads back reports the same wheels.
    assert (
        built_archive(
            "fn", lambdas_dir=tmp_path / "lambdas", build_dir=tmp_path / "build"
        ).dependency_count
        == 1
    )


def test_a_wheel_for_one_platform_is_refused(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n", "requirements.txt": "fast==1.0\n"})
    requirements = tmp_path / "lambdas" / "fn" / "requirements.txt"
    _cached_wheels(
        tmp_path,
        requirements,
        {"fast-1.0-cp313-cp313-manylinux2014_aarch64.whl": {"fast/__init__.py": "x = 1\n"}},
    )
    with pytest.raises(PackagingError, match="is not pure-Python"):
        _build(tmp_path)


def test_a_failed_download_names_the_file_and_what_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n", "requirements.txt": "missing==9\n"})
    calls: list[list[str]] = []

    def failing_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(PackagingError, match="No matching distribution") as raised:
        _build(tmp_path)
    assert "requirements.txt" in str(raised.value)
    assert "PyPI is reachable" in str(raised.value)
    (command,) = calls
    assert command[2:4] == ["pip", "download"]
    assert command[command.index("--platform") + 1] == "manylinux2014_aarch64"
    for flag in ("--no-deps", "--require-hashes", "--only-binary=:all:"):
        assert flag in command, flag
    assert not list((tmp_path / "cache").iterdir()), "a failed download leaves no cache entry"


def test_the_real_requirements_pin_every_wheel_by_hash() -> None:
    for function in MANIFEST.functions:
        requirements = packaging.LAMBDAS_DIR / function.name / packaging.REQUIREMENTS_FILE
        if not requirements.exists():
            continue
        text = requirements.read_text(encoding="utf-8").replace("\\\n", " ")
        pins = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        assert pins, requirements
        for line in pins:
            assert "==" in line and "--hash=sha256:" in line, line
            assert "boto3" not in line and "botocore" not in line, "the runtime ships them"


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
        _build(tmp_path, packaging.COMMON_FOLDER)


def test_the_functions_are_the_manifests_and_each_is_a_folder_with_a_handler() -> None:
    with_handler = {path.parent.name for path in packaging.LAMBDAS_DIR.glob("*/handler.py")}
    assert set(packaging.FUNCTIONS) == with_handler == {f.name for f in MANIFEST.functions}
    assert packaging.COMMON_FOLDER not in packaging.FUNCTIONS


# What the programs deploy


def test_the_program_side_reads_the_archive_as_built(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n"})
    built = _build(tmp_path)
    read = built_archive("fn", lambdas_dir=tmp_path / "lambdas", build_dir=tmp_path / "build")
    assert (read.sha256_hex, read.sha256_base64, read.size_bytes) == (
        built.sha256_hex,
        built.sha256_base64,
        built.size_bytes,
    )


def test_a_missing_archive_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n"})
    with pytest.raises(ArchiveMismatchError, match="does not exist") as raised:
        built_archive("fn", lambdas_dir=tmp_path / "lambdas", build_dir=tmp_path / "build")
    assert "nox -s build" in str(raised.value)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda root: _function(root, {"handler.py": "x = 2\n"}), id="own code"),
        pytest.param(lambda root: _common(root, {"result_keys.py": "R = 2\n"}), id="common code"),
        pytest.param(
            lambda root: _function(root, {"requirements.txt": "tinylib==2.0\n"}), id="a pin"
        ),
    ],
)
def test_an_archive_that_no_longer_matches_the_tree_is_refused(tmp_path: Path, change: Any) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n", "requirements.txt": ""})
    _common(tmp_path, {"result_keys.py": "R = 1\n"})
    _build(tmp_path)
    change(tmp_path)
    with pytest.raises(ArchiveMismatchError, match="was not built from the current") as raised:
        built_archive("fn", lambdas_dir=tmp_path / "lambdas", build_dir=tmp_path / "build")
    assert "nox -s build" in str(raised.value)


def test_an_archive_built_by_anything_else_is_refused(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n"})
    (tmp_path / "build").mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("handler.py", "x = 1\n")
    (tmp_path / "build" / "fn.zip").write_bytes(buffer.getvalue())
    with pytest.raises(ArchiveMismatchError, match="was not built from the current"):
        built_archive("fn", lambdas_dir=tmp_path / "lambdas", build_dir=tmp_path / "build")


def test_source_digest_ignores_caches_and_timestamps(tmp_path: Path) -> None:
    _function(tmp_path, {"handler.py": "x = 1\n"})
    before = source_digest("fn", lambdas_dir=tmp_path / "lambdas")
    _function(tmp_path, {"__pycache__/handler.cpython-311.pyc": "stale"})
    os.utime(tmp_path / "lambdas" / "fn" / "handler.py", (1_700_000_000, 1_700_000_000))
    assert source_digest("fn", lambdas_dir=tmp_path / "lambdas") == before


def test_the_layer_programs_never_build_or_run_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The archives exist (the session fixture built them); running every program under the
    # SDK's mocks must start no process (no pip) and touch no package index.
    from tooling.mock_engine import run_all_layers

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a layer program started a process: {args[0]!r}")

    monkeypatch.setattr(subprocess, "run", no_process)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/unreachable")
    runs = run_all_layers()
    code = runs["compute"].named("api-handler").inputs["code"]
    assert Path(str(code.path)) == packaging.BUILD_DIR / "api_handler.zip"


def test_build_output_is_not_tracked() -> None:
    assert "build/" in (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
