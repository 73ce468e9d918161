"""Entry point the Pulumi CLI runs for `--policy-pack policy`: serve the pack, mandatory."""

import sys
from pathlib import Path

# The CLI runs this file with policy/ as sys.path[0]; the pack imports itself and shared/ as
# packages of the repository.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.pack import PACK_NAME, build_policies

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
    description="AWS FSBP, Serverless Lens and product rules for the five serverless layers",
)
