"""Which layers a change touches: what the CI workflow previews on a pull request and deploys
on main.

A file under stacks/<layer>/ touches that layer; shared/ and pyproject.toml are imported or
installed by every layer program, so they touch all of them; lambdas/ is packaged into the
compute layer's functions. Every layer downstream of a touched layer is included too, since
its preview reads the touched layer's outputs. The result is in manifest order.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.manifest import MANIFEST, Manifest

# Paths every layer program depends on: the shared package and the pinned dependencies.
ALL_LAYERS = ("shared/", "pyproject.toml")
# Paths outside stacks/ that one layer's program reads: compute zips each lambdas/<function>.
EXTRA_PATHS: dict[str, tuple[str, ...]] = {"lambdas/": ("compute",)}


def touched_layers(paths: Iterable[str], manifest: Manifest = MANIFEST) -> tuple[str, ...]:
    """The layers the changed `paths` touch, with everything downstream, in manifest order."""
    direct: set[str] = set()
    for path in paths:
        if path in ALL_LAYERS or any(path.startswith(p) for p in ALL_LAYERS if p.endswith("/")):
            return manifest.order
        parts = path.split("/")
        if len(parts) > 2 and parts[0] == "stacks" and parts[1] in manifest.by_name:
            direct.add(parts[1])
        for prefix, layers in EXTRA_PATHS.items():
            if path.startswith(prefix):
                direct.update(layers)
    affected = set(direct)
    for name in direct:
        affected.update(manifest.downstream_of(name))
    return tuple(name for name in manifest.order if name in affected)
