"""Which layers a change touches: what the CI workflow previews on a pull request and deploys
on main.

Each layer declares in the manifest what it is made of (`Layer.code_paths`: its program under
stacks/<layer>/, the lambdas/ folders of the functions it packages, and lambdas/common/, which
every function archive carries); a changed file under one of those touches the layer. A change
under `SHARED_PATHS` (the shared package, the policy pack every preview and update runs, the
pins) touches every layer. Every layer downstream of a touched layer is included too, since its
preview reads the touched layer's outputs. The result is in manifest order.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.manifest import MANIFEST, SHARED_PATHS, Manifest


def _under(path: str, declared: str) -> bool:
    """`declared` is a folder (ending in /) or a single file."""
    return path.startswith(declared) if declared.endswith("/") else path == declared


def touching(paths: Iterable[str], manifest: Manifest = MANIFEST) -> dict[str, list[str]]:
    """Layer -> the changed files under its own code paths or the shared paths, sorted."""
    files: dict[str, list[str]] = {}
    for path in sorted(set(paths)):
        if any(_under(path, shared) for shared in SHARED_PATHS):
            reached = list(manifest.order)
        else:
            reached = [
                layer.name
                for layer in manifest.layers
                if any(_under(path, declared) for declared in layer.code_paths)
            ]
        for name in reached:
            files.setdefault(name, []).append(path)
    return files


def touched_layers(paths: Iterable[str], manifest: Manifest = MANIFEST) -> tuple[str, ...]:
    """The layers the changed `paths` touch, with everything downstream, in manifest order."""
    direct = set(touching(paths, manifest))
    affected = set(direct)
    for name in direct:
        affected.update(manifest.downstream_of(name))
    return tuple(name for name in manifest.order if name in affected)
