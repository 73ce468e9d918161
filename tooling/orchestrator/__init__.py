"""Deployment orchestration for the five layers: `python -m tooling.orchestrator <command>`.

Pulumi has no multi-stack command, so this package drives one stack per `stacks/<layer>`
directory in the order `shared/manifest.py` declares: ordered deploys with fail-fast and
resume, previews that wait on undeployed upstreams, reverse destroys, single-layer rollback
from an earlier git revision, a contract guard on promised output keys, run reports, the
layer graph, outputs and status.

The engine sits behind the `Engine` protocol (`engine.py`): `AutomationEngine` drives the
real Pulumi CLI through `pulumi.automation`; `InMemoryEngine` stands in for it in tests.
"""
