"""The Lambda concurrency check: the layers' reservations against what the account allows.

moto serves no GetAccountSettings (it answers "Not yet implemented"), so Lambda is played by
botocore's Stubber on a real client, answering with the response shapes of the Lambda API
reference (GetAccountSettings, ListFunctions, GetFunctionConcurrency). The numbers are those of
a new account (quota 10) and of a default one (quota 1000).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from shared.manifest import MANIFEST, Layer
from tooling.preflight.concurrency import (
    ConcurrencyRefusedError,
    Reservation,
    check_reservations,
    planned_reservations,
)

DEFAULTS = [
    Reservation("security", "rotation_reserved_concurrency", 1),
    Reservation("compute", "processor_reserved_concurrency", 10),
]


def account_settings(quota: int, unreserved: int) -> dict[str, Any]:
    """GetAccountSettings as the Lambda API reference shapes it."""
    return {
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": quota,
            "UnreservedConcurrentExecutions": unreserved,
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
    }


def stubbed_lambda() -> tuple[Any, Stubber]:
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("lambda")
    return client, Stubber(client)


@pytest.fixture
def lambda_stub() -> Iterator[tuple[Any, Stubber]]:
    client, stubber = stubbed_lambda()
    with stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def no_environment_functions(stubber: Stubber) -> None:
    stubber.add_response("list_functions", {"Functions": []}, {})


def test_the_layers_reserve_what_their_config_says() -> None:
    assert planned_reservations(MANIFEST.layers, "nosuchstack") == DEFAULTS

    def settings(layer: Layer, stack: str) -> Mapping[str, Any]:
        return {
            "serverless-compute:processor_reserved_concurrency": "25",
            "serverless-security:rotation_reserved_concurrency": -1,
        }

    assert planned_reservations(MANIFEST.layers, "dev", settings_of=settings) == [
        Reservation("compute", "processor_reserved_concurrency", 25)
    ]


def test_only_the_layers_being_deployed_count() -> None:
    assert planned_reservations([MANIFEST.layer("api")], "dev") == []
    assert planned_reservations([MANIFEST.layer("compute")], "dev") == DEFAULTS[1:]


def test_a_new_account_at_quota_10_is_refused_naming_the_quota_and_the_keys(
    lambda_stub: tuple[Any, Stubber],
) -> None:
    client, stubber = lambda_stub
    stubber.add_response("get_account_settings", account_settings(10, 10))
    no_environment_functions(stubber)
    with pytest.raises(ConcurrencyRefusedError) as refused:
        check_reservations(client, DEFAULTS, "dev", "us-east-1")
    message = " ".join(str(refused.value).split())
    assert "concurrent executions quota in us-east-1 is 10" in message
    assert "Lambda keeps min(100, 10) = 10 of them unreserved" in message
    assert "at most 0 can be reserved, but the layers reserve 11" in message
    assert "security:rotation_reserved_concurrency = 1" in message
    assert "compute:processor_reserved_concurrency = 10" in message
    assert "L-B99A9384" in message
    assert "pulumi config set <key> -1" in message


def test_a_default_account_has_room(lambda_stub: tuple[Any, Stubber]) -> None:
    client, stubber = lambda_stub
    stubber.add_response("get_account_settings", account_settings(1000, 1000))
    no_environment_functions(stubber)
    verdict = check_reservations(client, DEFAULTS, "dev", "us-east-1")
    assert verdict == (
        "Lambda concurrency in us-east-1: quota 1000, 11 to reserve, 889 more could be reserved"
    )


def test_a_redeploy_counts_what_this_environment_already_reserves(
    lambda_stub: tuple[Any, Stubber],
) -> None:
    client, stubber = lambda_stub
    # 889 reserved by other functions and 11 by this environment's own: 100 unreserved, the
    # floor. Counted naively nothing more fits, yet the redeploy only replaces its own 11.
    stubber.add_response("get_account_settings", account_settings(1000, 100))
    stubber.add_response(
        "list_functions",
        {
            "Functions": [
                {"FunctionName": "serverless-dev-s3-processor"},
                {"FunctionName": "other-team-function"},
            ],
            "NextMarker": "page-2",
        },
        {},
    )
    stubber.add_response(
        "get_function_concurrency",
        {"ReservedConcurrentExecutions": 10},
        {"FunctionName": "serverless-dev-s3-processor"},
    )
    stubber.add_response(
        "list_functions",
        {"Functions": [{"FunctionName": "serverless-dev-secret-rotation"}]},
        {"Marker": "page-2"},
    )
    stubber.add_response(
        "get_function_concurrency",
        {"ReservedConcurrentExecutions": 1},
        {"FunctionName": "serverless-dev-secret-rotation"},
    )
    assert "11 to reserve, 0 more could be reserved" in check_reservations(
        client, DEFAULTS, "dev", "us-east-1"
    )


def test_nothing_to_reserve_asks_nothing_beyond_the_settings(
    lambda_stub: tuple[Any, Stubber],
) -> None:
    client, stubber = lambda_stub
    stubber.add_response("get_account_settings", account_settings(10, 10))
    assert "0 to reserve" in check_reservations(client, [], "dev", "us-east-1")
