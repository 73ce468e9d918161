"""The partition, region and account a stack deploys into, read once per program run."""

from __future__ import annotations

import pulumi_aws as aws

from shared.naming import AwsLocation


def current_location() -> AwsLocation:
    """Ask the AWS provider where this stack deploys (three read-only invokes)."""
    partition = aws.get_partition()
    region = aws.get_region()
    identity = aws.get_caller_identity()
    return AwsLocation(
        partition=partition.partition,
        region=region.region,
        account_id=identity.account_id,
    )
