"""The route table (lambdas/common/api_routes.py, read through shared.api_routes): how a route's
path matches request paths, and which entries it refuses."""

from __future__ import annotations

import pytest

from shared.api_routes import APPLICATION_ROUTES, ROUTE_TABLE_FILE, ROUTES, Route, route_for_path


def test_the_table_is_the_file_every_archive_carries() -> None:
    assert ROUTE_TABLE_FILE.parent.name == "common"
    assert ROUTE_TABLE_FILE.parent.parent.name == "lambdas"
    assert Route.__module__ == "shared.api_route_table"


@pytest.mark.parametrize(
    ("path", "request_path", "parameters"),
    [
        ("/health", "/health", {}),
        ("/health", "/health/", None),
        ("/health", "/healthz", None),
        ("/objects/{key+}", "/objects/uploads%2Fa%20b.csv", {"key": "uploads%2Fa%20b.csv"}),
        ("/objects/{key+}", "/objects/uploads/a/b.csv", {"key": "uploads/a/b.csv"}),
        ("/objects/{key+}", "/objects/", None),
        ("/objects/{key+}", "/objects", None),
        ("/items/{id}", "/items/7", {"id": "7"}),
        ("/items/{id}", "/items/7/8", None),
        ("/items/{id}/parts", "/items/7/parts", {"id": "7"}),
        ("/v1.0/x", "/v1x0/x", None),
    ],
)
def test_a_path_matches_as_api_gateway_matches_it(
    path: str, request_path: str, parameters: dict[str, str] | None
) -> None:
    # {name} is one segment, {name+} the rest of the path; values stay as the client encoded them.
    assert Route("GET", path, "s").match(request_path) == parameters


def test_an_unnamed_pattern_captures_nothing() -> None:
    route = Route("GET", "/items/{id}/parts/{rest+}", "s")
    assert route.path_regex(named=False) == r"/items/(?:[^/]+)/parts/(?:.+)"
    assert route.path_parameters == ("id", "rest")


def test_the_execute_api_path_makes_a_greedy_parameter_a_wildcard() -> None:
    assert Route("GET", "/objects/{key+}", "s").execute_api_path == "objects/*"
    assert Route("POST", "/process", "s").execute_api_path == "process"


def test_a_request_path_resolves_to_its_resource_whatever_the_method() -> None:
    found = route_for_path("/objects/uploads%2Fa.csv")
    assert found is not None and found.path == "/objects/{key+}"
    assert route_for_path("/nothing") is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/health"),
        ("FETCH", "/health"),
        ("GET", "health"),
        ("GET", "/health/"),
        ("GET", "/objects/{key+}/{x}/"),
        ("GET", "/objects/{key+}/x"),
        ("GET", "/a b"),
        ("GET", "/{key"),
        ("GET", "/a/{}"),
    ],
)
def test_an_entry_api_gateway_could_not_declare_is_refused(method: str, path: str) -> None:
    with pytest.raises(ValueError, match="route"):
        Route(method, path, "s")


def test_every_application_route_is_unique_and_has_its_preflight() -> None:
    keys = [route.key for route in APPLICATION_ROUTES]
    assert len(keys) == len(set(keys))
    paths = {route.path for route in APPLICATION_ROUTES}
    assert {route.path for route in ROUTES if route.is_preflight} == paths
