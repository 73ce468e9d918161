"""A deliberately broken layer, run under the same mocks as the real ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.manifest import Layer
from tooling.mock_engine import LayerRun, run_layer

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class FixtureLayer(Layer):
    """A layer whose program lives under tests/policy/fixtures/<name>/."""

    @property
    def directory(self) -> Path:
        return FIXTURES / self.name


@pytest.fixture(scope="session")
def broken_run() -> LayerRun:
    layer = FixtureLayer(name="broken_layer", owner="@nobody", description="broken", outputs={})
    return run_layer(layer)
