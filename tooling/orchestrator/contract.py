"""The contract guard: a layer may not stop exporting a key a downstream layer consumes.

Before a deploy or a rollback, the keys the layer's program promises (the manifest of the
revision being deployed) are compared with the keys every downstream layer consumes (the
current manifest: the consumers that are, or are about to be, deployed). After a deploy, the
stack's real outputs must contain every promised key before anything downstream runs.

A revision's manifest is `shared/manifest.py` as committed there, executed in a module of its
own, so an old manifest never replaces the imported one. Only the attributes every revision
has are used: `layers`, and each layer's `name`, `outputs` and `consumes`.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from shared.manifest import Manifest
from tooling.gitrepo import GitRepo

MANIFEST_PATH = "shared/manifest.py"


@dataclass(frozen=True)
class Violation:
    """`consumer` reads `key` from `layer`, and the program to be deployed does not promise it."""

    layer: str
    consumer: str
    key: str

    def __str__(self) -> str:
        return f"{self.consumer} consumes {self.layer}.{self.key}"


def manifest_at(repo: GitRepo, rev: str) -> Manifest:
    """The MANIFEST defined by shared/manifest.py at `rev`, loaded in an isolated module."""
    source = repo.show(rev, MANIFEST_PATH)
    module_name = f"_orchestrator_manifest_{rev[:12]}"
    module = types.ModuleType(module_name)
    module.__file__ = str(repo.root / MANIFEST_PATH)
    # dataclasses resolve the module's annotations through sys.modules while the classes are
    # created, so the module is registered for the duration of the exec only.
    sys.modules[module_name] = module
    try:
        exec(compile(source, f"{rev[:12]}:{MANIFEST_PATH}", "exec"), module.__dict__)  # noqa: S102 (our own committed file)
    finally:
        del sys.modules[module_name]
    manifest = module.__dict__.get("MANIFEST")
    if manifest is None:
        raise ValueError(f"{MANIFEST_PATH} at {rev[:12]} defines no MANIFEST")
    return cast(Manifest, manifest)


def promised(manifest: Manifest, layer: str) -> Mapping[str, object] | None:
    """The outputs `layer` promises in `manifest` (maybe a revision's), None when it has no
    such layer. Uses only `layers`, `name` and `outputs`, which every revision has."""
    for candidate in manifest.layers:
        if candidate.name == layer:
            return candidate.outputs
    return None


def guard(layer: str, *, promising: Manifest, consumers: Manifest) -> list[Violation]:
    """Every consumed key of `layer` that `promising` does not promise (empty: allowed).

    `consumers` is the current manifest, so its own methods are available."""
    keys_promised = promised(promising, layer) or {}
    return [
        Violation(layer, consumer, key)
        for consumer, keys in consumers.consumers_of(layer).items()
        for key in keys
        if key not in keys_promised
    ]


def refusal(layer: str, violations: list[Violation], revision: str) -> str:
    """The message a refused deploy or rollback prints: every consumer and key it would break."""
    broken = "; ".join(str(violation) for violation in violations)
    return (
        f"refusing to deploy {layer} at {revision}: its program would no longer export keys "
        f"that downstream layers consume ({broken}). Deploy a revision that still exports "
        "them, or first change those consumers (and shared/manifest.py) to stop reading them."
    )


def missing_outputs(promised: Mapping[str, object], outputs: Mapping[str, object]) -> list[str]:
    """Promised keys the deployed stack does not export, in manifest order."""
    return [key for key in promised if key not in outputs]
