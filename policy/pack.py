"""The pack's policies: one per control, mandatory, with the repository's suppressions."""

from __future__ import annotations

from pulumi_policy import Policy

from policy.controls import CONTROLS
from policy.model import SuppressionObserver, to_policy
from policy.suppressions import Suppressions, load_suppressions

PACK_NAME = "serverless-security-baseline"


def build_policies(
    suppressions: Suppressions | None = None,
    on_suppressed: SuppressionObserver | None = None,
) -> list[Policy]:
    """The policies of every control; suppressed findings go to `on_suppressed`."""
    chosen = suppressions if suppressions is not None else load_suppressions()
    if on_suppressed is None:
        return [to_policy(control, chosen) for control in CONTROLS]
    return [to_policy(control, chosen, on_suppressed) for control in CONTROLS]
