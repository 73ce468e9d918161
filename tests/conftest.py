"""Fixtures that run the real layer programs under the Pulumi SDK's mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.naming import AwsLocation, ResourceNames
from tooling.build import ensure_built
from tooling.mock_engine import PLACEHOLDER_LOCATION, LayerRun, MockResource, run_all_layers


@pytest.fixture(scope="session", autouse=True)
def function_archives() -> None:
    """What `nox -s build` makes before anything deploys: the layer programs read these
    archives and never build. (Downloads the pinned wheels once, into build/lambda-deps.)"""
    ensure_built()


@pytest.fixture(scope="session")
def chain() -> dict[str, LayerRun]:
    """All five layers, run once in manifest order with default configuration."""
    return run_all_layers()


@pytest.fixture(scope="session")
def names() -> ResourceNames:
    return ResourceNames("dev", PLACEHOLDER_LOCATION)


@pytest.fixture(scope="session")
def location() -> AwsLocation:
    return PLACEHOLDER_LOCATION


def policy_of(resource: MockResource, key: str = "policy") -> dict[str, Any]:
    """A policy document input, parsed; fails with the resource's name if it is not JSON."""
    raw = resource.inputs[key]
    assert isinstance(raw, str), f"{resource.name}.{key} is not a JSON string: {raw!r}"
    document: dict[str, Any] = json.loads(raw)
    return document


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
