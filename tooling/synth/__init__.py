"""Offline synthesis: what the five layers would deploy, and whether it meets the baseline.

`python -m tooling.synth` (or `nox -s synth`) runs every layer's real program under the SDK's
mocks in manifest order (tooling.mock_engine), writes each layer's resource inventory to
build/synth/<layer>.json, evaluates the policy pack (policy/) on the synthesized resources,
checks every IAM document with parliament, and exits non-zero on any violation or parliament
error. `--diff <git-ref>` adds what the working tree adds, removes and changes per layer
compared with that revision. No credentials, no Pulumi CLI, no network.

Every value synthesized here is a placeholder derived from the layer contracts; none of it is
usable for a real deployment.
"""

PLACEHOLDER_NOTE = (
    "Synthesized offline under the Pulumi SDK's mocks: account, ARNs, IDs, URLs and generated "
    "values are placeholders derived from the layer contracts, never usable for a real "
    "deployment."
)
