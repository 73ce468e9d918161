"""The REST API's routes: declared once, read by the api layer (methods, integrations,
invoke permissions) and by whatever serves or tests the handler.

Every declared path also gets an OPTIONS route, derived here, so that a browser's CORS
preflight reaches the function: API Gateway answers a method it does not declare with 403
before any Lambda runs. Those routes are public because a preflight never carries credentials
(Fetch standard, CORS-preflight fetch: https://fetch.spec.whatwg.org/#cors-preflight-fetch),
so an OPTIONS method requiring a signature or an API key could never succeed. The function
decides what a preflight gets: CORS headers for the origins it is configured with, nothing
for any other origin.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

# The JSON Schema (draft-04, as API Gateway models use) a POST /process body must satisfy
# before API Gateway invokes the function: a JSON object.
PROCESS_BODY_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "ProcessRequest",
    "type": "object",
}


# How callers prove who they are on every route that is not public.
AUTHORIZATION_MODES = ("AWS_IAM", "API_KEY")

# The method of a CORS preflight request.
PREFLIGHT_METHOD = "OPTIONS"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    validate_body: bool = False
    # Public routes answer anyone: the health check, which reveals nothing, and the derived
    # CORS preflights, which never carry credentials.
    public: bool = False

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
        return tuple(name.rstrip("+") for name in re.findall(r"\{([^}]+)\}", self.path))

    @property
    def execute_api_path(self) -> str:
        """The path as it appears in an execute-api ARN: greedy parameters become `*`."""
        parts = ["*" if part.startswith("{") else part for part in self.path.strip("/").split("/")]
        return "/".join(parts)


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


def routes_fingerprint(routes: tuple[Route, ...] = ROUTES, authorization: str = "AWS_IAM") -> str:
    """Changes whenever a route changes, so the API deployment is replaced exactly then."""
    spec = {
        "routes": [asdict(route) for route in routes],
        "body_schema": PROCESS_BODY_SCHEMA,
        "authorization": authorization,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
