"""The REST API's routes for the layer programs and the tooling, taken from their one
declaration, lambdas/common/api_routes.py (see its docstring), plus what only a deployment
needs: the authorization modes and the fingerprint that redeploys the API when a route changes.

The table lives with the functions because the API handler's archive carries lambdas/common at
its root and cannot import this package. The layer programs, in turn, run where `lambdas` is no
importable package (only shared, tooling and policy are installed), so the file is loaded here
by its path, once per process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

ROUTE_TABLE_FILE = Path(__file__).resolve().parents[1] / "lambdas" / "common" / "api_routes.py"
# The name the table is loaded under here; inside an archive it is the top-level `api_routes`.
_MODULE_NAME = "shared.api_route_table"


def _load_route_table() -> ModuleType:
    if _MODULE_NAME in sys.modules:
        return sys.modules[_MODULE_NAME]
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, ROUTE_TABLE_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the route table from {ROUTE_TABLE_FILE}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import does: dataclasses look their module up there.
    sys.modules[_MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE_NAME]
        raise
    return module


if TYPE_CHECKING:
    # The same file, seen by the type checker under its path from the repository root.
    from lambdas.common.api_routes import (
        APPLICATION_ROUTES,
        PREFLIGHT_METHOD,
        PROCESS_BODY_SCHEMA,
        ROUTES,
        Route,
        preflight_routes,
        route_for_path,
    )
else:
    _table = _load_route_table()
    APPLICATION_ROUTES = _table.APPLICATION_ROUTES
    PREFLIGHT_METHOD = _table.PREFLIGHT_METHOD
    PROCESS_BODY_SCHEMA = _table.PROCESS_BODY_SCHEMA
    ROUTES = _table.ROUTES
    Route = _table.Route
    preflight_routes = _table.preflight_routes
    route_for_path = _table.route_for_path

__all__ = [
    "APPLICATION_ROUTES",
    "AUTHORIZATION_MODES",
    "PREFLIGHT_METHOD",
    "PROCESS_BODY_SCHEMA",
    "ROUTES",
    "ROUTE_TABLE_FILE",
    "Route",
    "preflight_routes",
    "route_for_path",
    "routes_fingerprint",
]

# How callers prove who they are on every route that is not public.
AUTHORIZATION_MODES = ("AWS_IAM", "API_KEY")


def routes_fingerprint(routes: tuple[Route, ...] = ROUTES, authorization: str = "AWS_IAM") -> str:
    """Changes whenever a route changes, so the API deployment is replaced exactly then."""
    spec = {
        "routes": [asdict(route) for route in routes],
        "body_schema": PROCESS_BODY_SCHEMA,
        "authorization": authorization,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
