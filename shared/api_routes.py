"""The REST API's routes: declared once, read by the api layer (methods, integrations,
invoke permissions) and by whatever serves or tests the handler."""

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


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    validate_body: bool = False
    # Public routes answer anyone: only the health check, which reveals nothing.
    public: bool = False

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


ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", "Report that the API and its function are serving", public=True),
    Route(
        "POST", "/process", "Process a JSON object with the application secret", validate_body=True
    ),
    Route("GET", "/objects/{key+}", "Return the processing result of an uploaded object"),
)


def routes_fingerprint(routes: tuple[Route, ...] = ROUTES, authorization: str = "AWS_IAM") -> str:
    """Changes whenever a route changes, so the API deployment is replaced exactly then."""
    spec = {
        "routes": [asdict(route) for route in routes],
        "body_schema": PROCESS_BODY_SCHEMA,
        "authorization": authorization,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
