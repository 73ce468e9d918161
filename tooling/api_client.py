"""Calls to the API as a real caller makes them: SigV4-signed (execute-api) where a route needs it.

Used against the deployed API (with the caller's own credentials) and the local one (with the
emulator's), by `nox -s verify`, the local smoke run and the tests.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tooling.local.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION

# The emulator accepts any credentials; the local API only checks that a caller signs.
EMULATOR_SIGNER = (
    Credentials(
        EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"], EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    ),
    EMULATOR_REGION,
)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call_api(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    sign: bool = True,
    signer: tuple[Credentials, str] = EMULATOR_SIGNER,
    timeout: float = 30.0,
) -> ApiResponse:
    """One HTTP request; signed for execute-api with `signer` (credentials, region) unless
    `sign` is False."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    request_headers = dict(headers or {})
    if sign:
        credentials, region = signer
        signed = AWSRequest(method=method, url=url, data=body or b"", headers=request_headers)
        SigV4Auth(credentials, "execute-api", region).add_auth(signed)
        request_headers = dict(signed.headers.items())
    # The scheme is checked above: only http(s) reaches urlopen.
    request = urllib.request.Request(url, data=body, method=method, headers=request_headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return ApiResponse(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return ApiResponse(error.code, dict(error.headers.items()), error.read())
