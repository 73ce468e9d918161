"""The REST API's routes, declared once.

Everything that deploys, serves, emulates, tests or measures the API reads this table: the api
layer declares a method, integration and invoke permission per route (through
shared/api_routes.py, which loads this file), the API handler registers one resolver route per
application route, the local API adapter routes requests with it, and the tests and the
benchmark build their events from it. It lives in lambdas/common/, which every function archive
carries at its root, because the handler's archive cannot import the `shared` package; so it is
standard library only, and cheap to import at cold start.

A new route is one entry in APPLICATION_ROUTES plus the function that serves it (registered
in the handler's ROUTE_FUNCTIONS); its CORS preflight route is derived here.

Every declared path also gets an OPTIONS route, so that a browser's CORS preflight reaches the
function: API Gateway answers a method it does not declare with 403 before any Lambda runs.
Those routes are public because a preflight never carries credentials (Fetch standard,
CORS-preflight fetch: https://fetch.spec.whatwg.org/#cors-preflight-fetch), so an OPTIONS
method requiring a signature or an API key could never succeed. The function decides what a
preflight gets: CORS headers for the origins it is configured with, nothing for any other
origin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The JSON Schema (draft-04, as API Gateway models use) a POST /process body must satisfy
# before API Gateway invokes the function: a JSON object.
PROCESS_BODY_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "ProcessRequest",
    "type": "object",
}

# The method of a CORS preflight request.
PREFLIGHT_METHOD = "OPTIONS"

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", PREFLIGHT_METHOD})

# An API Gateway resource path: segments of letters, digits, `-`, `_` or `.`, or a path
# parameter `{name}` (one segment) or, last, `{name+}` (greedy: the rest of the path, slashes
# included). Anything else could not be declared as API Gateway resources.
_PATH = re.compile(r"(/([A-Za-z0-9._-]+|\{[A-Za-z_][A-Za-z0-9_]*\+?\}))+")
_PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    validate_body: bool = False
    # Public routes answer anyone: the health check, which reveals nothing, and the derived
    # CORS preflights, which never carry credentials.
    public: bool = False

    def __post_init__(self) -> None:
        # A malformed entry fails wherever the table is first read (synthesis, a test, a cold
        # start), naming itself, rather than deploying a route nothing can match.
        if self.method not in METHODS:
            raise ValueError(f"route {self.key!r}: method must be one of {sorted(METHODS)}")
        if not _PATH.fullmatch(self.path) or "+}/" in self.path:
            raise ValueError(f"route {self.key!r}: not an API Gateway resource path")

    @property
    def key(self) -> str:
        """`METHOD /path`, as the route is written in the README: GET /objects/{key+}."""
        return f"{self.method} {self.path}"

    @property
    def is_preflight(self) -> bool:
        return self.method == PREFLIGHT_METHOD

    @property
    def slug(self) -> str:
        """Kebab-case logical-name fragment: GET /objects/{key+} -> get-objects-key."""
        words = re.findall(r"[a-z0-9]+", self.path.lower())
        return "-".join([self.method.lower(), *words])

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(name.rstrip("+") for name in _PARAMETER.findall(self.path))

    @property
    def execute_api_path(self) -> str:
        """The path as it appears in an execute-api ARN: greedy parameters become `*`."""
        parts = ["*" if part.startswith("{") else part for part in self.path.strip("/").split("/")]
        return "/".join(parts)

    def path_regex(self, *, named: bool = True) -> str:
        """A regular expression of the request paths this route serves, as a client sends them
        (still percent-encoded): `{name}` is one segment, `{name+}` the rest of the path,
        slashes included, as API Gateway matches them. Each parameter is a group named after
        it, or with `named=False` a group that captures nothing."""
        pattern = ""
        for segment in self.path.strip("/").split("/"):
            name = segment.strip("{}")
            group = f"?P<{name.rstrip('+')}>" if named else "?:"
            if name == segment:
                pattern += "/" + re.escape(segment)
            elif name.endswith("+"):
                pattern += f"/({group}.+)"
            else:
                pattern += f"/({group}[^/]+)"
        return pattern

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters (still encoded) when this route serves `path`, else None."""
        found = re.fullmatch(self.path_regex(), path)
        return found.groupdict() if found else None


# What the application serves; each route names its method, path and handling once.
APPLICATION_ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", "Report that the API and its function are serving", public=True),
    Route(
        "POST", "/process", "Process a JSON object with the application secret", validate_body=True
    ),
    Route("GET", "/objects/{key+}", "Return the processing result of an uploaded object"),
)


def preflight_routes(routes: tuple[Route, ...]) -> tuple[Route, ...]:
    """One public OPTIONS route per distinct path of `routes`, in declaration order."""
    paths = dict.fromkeys(route.path for route in routes if not route.is_preflight)
    return tuple(
        Route(PREFLIGHT_METHOD, path, f"Answer the CORS preflight of {path}", public=True)
        for path in paths
    )


# Everything API Gateway declares: the application's routes and their preflights.
ROUTES: tuple[Route, ...] = APPLICATION_ROUTES + preflight_routes(APPLICATION_ROUTES)


def route_for_path(path: str, routes: tuple[Route, ...] = ROUTES) -> Route | None:
    """The first route whose path serves the request path `path`, whatever its method: the
    resource API Gateway resolves the path to."""
    return next((route for route in routes if route.match(path) is not None), None)
