"""constraints.txt agrees with pyproject.toml, and `nox -s lock` writes what is installed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from shared.manifest import REPO_ROOT
from tooling.lock import installed_pins, write_constraints


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        requirement = line.split(";")[0].strip()
        if "==" in requirement and not requirement.startswith("#"):
            name, version = requirement.split("==")
            pins[_normalise(name.split("[")[0])] = version.strip()
    return pins


def test_every_pyproject_pin_is_in_constraints_at_the_same_version() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _pins([*project["dependencies"], *project["optional-dependencies"]["dev"]])
    locked = _pins((REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines())
    assert declared, "pyproject.toml pins nothing"
    for name, version in declared.items():
        assert locked.get(name) == version, (
            f"{name}: pyproject {version}, constraints {locked.get(name)}"
        )


def test_write_constraints_pins_what_is_installed(tmp_path: Path) -> None:
    target = tmp_path / "constraints.txt"
    write_constraints(target)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#")
    pins = _pins(lines)
    assert pins["pulumi"] == "3.272.0"
    assert "serverless-platform" not in pins
    names = [line.split("==")[0].lower() for line in lines if "==" in line]
    assert names == sorted(names)
    assert len(pins) == len(installed_pins())
