"""Every control of the pack, in the order the report lists them."""

from __future__ import annotations

from policy.controls import apigateway, awslambda, cloudwatch, data, iam, kms, s3, serverless, tags
from policy.model import Control

CONTROLS: tuple[Control, ...] = (
    *s3.CONTROLS,
    *awslambda.CONTROLS,
    *apigateway.CONTROLS,
    *kms.CONTROLS,
    *iam.CONTROLS,
    *data.CONTROLS,
    *cloudwatch.CONTROLS,
    *serverless.CONTROLS,
    *tags.CONTROLS,
)


def control(control_id: str) -> Control:
    for candidate in CONTROLS:
        if candidate.control_id == control_id:
            return candidate
    raise KeyError(f"no control {control_id!r}; known: {[c.control_id for c in CONTROLS]}")
