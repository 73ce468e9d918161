"""The pack's policies: one per control, mandatory, with the repository's suppressions."""

from __future__ import annotations

from pulumi_policy import Policy

from policy.controls import CONTROLS
from policy.model import to_policy
from policy.suppressions import load_suppressions

PACK_NAME = "serverless-security-baseline"


def build_policies() -> list[Policy]:
    """The policies of every control, honouring policy/suppressions.yaml."""
    suppressions = load_suppressions()
    return [to_policy(control, suppressions) for control in CONTROLS]
