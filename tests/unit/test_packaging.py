"""Function archives are reproducible, contain the code and its pinned dependencies only."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shared import packaging
from shared.packaging import PackagingError, build_archive, dependency_cache_key


def _function(root: Path, files: dict[str, str]) -> Path:
    folder = root / "lambdas" / "fn"
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "lambdas"


def _build(root: Path, **kwargs: Any) -> packaging.FunctionArchive:
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
    installed = tmp_path / "cache" / dependency_cache_key(requirements, "3.13")
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
        _build(tmp_path)
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
