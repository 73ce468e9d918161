"""Calls to the local API as a real caller makes them: SigV4-signed where the route needs it."""

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
    timeout: float = 30.0,
) -> ApiResponse:
    """One HTTP request to the local API; signed for execute-api unless `sign` is False."""
    request_headers = dict(headers or {})
    if sign:
        signed = AWSRequest(method=method, url=url, data=body or b"", headers=request_headers)
        credentials = Credentials(
            EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"], EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        )
        SigV4Auth(credentials, "execute-api", EMULATOR_REGION).add_auth(signed)
        request_headers = dict(signed.headers.items())
    request = urllib.request.Request(url, data=body, method=method, headers=request_headers)  # noqa: S310 (loopback URL built here)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return ApiResponse(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return ApiResponse(error.code, dict(error.headers.items()), error.read())
