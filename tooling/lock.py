"""`nox -s lock`: pin every package the dev environment resolved to, for reproducible installs."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

HEADER = (
    "# Every package the dev environment resolves to, pinned: installs are reproducible.\n"
    "# Regenerate after changing pyproject.toml's pins: nox -s lock\n"
)
# The project itself is installed editable from the checkout; pip belongs to the venv.
EXCLUDED = {"serverless-platform", "pip"}


def installed_pins() -> list[str]:
    """`name==version` for every distribution in this environment, sorted by name."""
    pins = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name.lower() not in EXCLUDED:
            pins[name.lower()] = f"{name}=={distribution.version}"
    return [pins[key] for key in sorted(pins)]


def write_constraints(path: Path) -> None:
    path.write_text(HEADER + "\n".join(installed_pins()) + "\n", encoding="utf-8")
