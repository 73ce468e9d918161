"""Physical names are deterministic, valid for AWS, and refuse environments that are not."""

from __future__ import annotations

import pytest

from shared.naming import RESULTS_PREFIX, UPLOAD_PREFIX, AwsLocation, NamingError, ResourceNames

LOCATION = AwsLocation(partition="aws", region="us-east-1", account_id="123456789012")


def test_names_and_arns_for_an_environment() -> None:
    names = ResourceNames("dev", LOCATION)
    assert names.upload_bucket == "serverless-dev-uploads-123456789012-us-east-1"
    assert names.bucket_objects_arn(UPLOAD_PREFIX) == (
        "arn:aws:s3:::serverless-dev-uploads-123456789012-us-east-1/uploads/*"
    )
    assert (
        names.table_arn()
        == "arn:aws:dynamodb:us-east-1:123456789012:table/serverless-dev-idempotency"
    )
    assert names.queue_arn() == "arn:aws:sqs:us-east-1:123456789012:serverless-dev-processor-dlq"
    assert names.log_streams_arn(names.function_log_group(names.s3_processor_function)) == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/serverless-dev-s3-processor:*"
    )


def test_partition_flows_into_every_arn() -> None:
    names = ResourceNames("prod", AwsLocation("aws-us-gov", "us-gov-west-1", "111122223333"))
    assert names.bucket_arn().startswith("arn:aws-us-gov:s3:::")
    assert names.table_arn().startswith("arn:aws-us-gov:dynamodb:us-gov-west-1:111122223333:")


def test_longest_environment_and_region_still_make_a_valid_bucket_name() -> None:
    names = ResourceNames("abcdefghijkl", AwsLocation("aws", "ap-southeast-4", "123456789012"))
    assert len(names.upload_bucket) <= 63


@pytest.mark.parametrize("environment", ["Dev", "1dev", "dev_1", "", "abcdefghijklm"])
def test_environment_names_aws_cannot_use_are_refused(environment: str) -> None:
    with pytest.raises(NamingError, match="pulumi stack init"):
        ResourceNames(environment, LOCATION)


def test_results_are_never_written_where_uploads_trigger() -> None:
    assert not RESULTS_PREFIX.startswith(UPLOAD_PREFIX)
    assert not UPLOAD_PREFIX.startswith(RESULTS_PREFIX)
