"""Per-layer resource inventories: what each layer declares, as JSON a reviewer can read.

Each resource is listed with its type, logical name, URN, parent and dependencies, and its
input properties (what the engine would send to the provider). Secret values are redacted;
archives are named by their path in the repository; numbers that are whole are written as
integers. Computed attributes (ARNs, IDs) are kept apart under `placeholders`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from shared.manifest import MANIFEST, REPO_ROOT
from tooling.mock_engine import LayerRun, MockResource, unwrap_secret
from tooling.synth import PLACEHOLDER_NOTE

FORMAT_VERSION = 1
REDACTED = "[secret]"
# Computed attributes the provider marks secret (the mocks cannot): redacted like secrets.
SECRET_OUTPUTS = {
    "random:index/randomPassword:RandomPassword": frozenset({"result", "bcryptHash"}),
    "random:index/randomString:RandomString": frozenset({"result"}),
}


def sanitize(value: Any, *, root: Path = REPO_ROOT) -> Any:
    """A JSON-ready copy of an input value: secrets redacted, assets named by path."""
    plain, secret = unwrap_secret(value)
    if secret:
        return REDACTED
    if isinstance(plain, pulumi.FileArchive | pulumi.FileAsset):
        return {"file": _relative(Path(str(plain.path)), root)}
    if isinstance(plain, pulumi.AssetArchive):
        return {"assets": {key: sanitize(v, root=root) for key, v in plain.assets.items()}}
    if isinstance(plain, pulumi.StringAsset):
        return {"text": plain.text}
    if isinstance(plain, pulumi.RemoteAsset | pulumi.RemoteArchive):
        return {"uri": plain.uri}
    if isinstance(plain, Mapping):
        return {str(k): sanitize(plain[k], root=root) for k in sorted(plain, key=str)}
    if isinstance(plain, list | tuple):
        return [sanitize(item, root=root) for item in plain]
    if isinstance(plain, float) and plain.is_integer():
        return int(plain)
    return plain


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def resource_entry(resource: MockResource) -> dict[str, Any]:
    return {
        "type": resource.type,
        "name": resource.name,
        "urn": resource.urn,
        "custom": resource.custom,
        "parent": resource.parent,
        "dependencies": sorted(set(resource.dependencies)),
        "properties": sanitize(resource.inputs),
        "placeholders": sanitize(
            {
                "id": resource.id,
                **{
                    key: REDACTED if key in SECRET_OUTPUTS.get(resource.type, ()) else value
                    for key, value in resource.outputs.items()
                },
            }
        ),
    }


def layer_inventory(run: LayerRun) -> dict[str, Any]:
    exports = {
        key: REDACTED if exported.secret else sanitize(exported.value)
        for key, exported in sorted(run.exports.items())
    }
    resources = sorted(
        (resource_entry(r) for r in run.resources), key=lambda e: (e["type"], e["name"])
    )
    return {
        "format": FORMAT_VERSION,
        "placeholder": True,
        "note": PLACEHOLDER_NOTE,
        "layer": run.layer.name,
        "project": run.layer.project,
        "stack": run.stack,
        "order": MANIFEST.order.index(run.layer.name)
        if run.layer.name in MANIFEST.order
        else len(MANIFEST.order),
        "resources": resources,
        "exports": exports,
    }


def write_inventories(inventories: Mapping[str, Mapping[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for layer, inventory in inventories.items():
        path = out_dir / f"{layer}.json"
        path.write_text(json.dumps(inventory, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def read_inventories(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The layer inventories in `out_dir`, by layer, in the order they were synthesized."""
    found: list[dict[str, Any]] = []
    for path in sorted(out_dir.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and "layer" in document and "resources" in document:
            found.append(document)
    found.sort(key=lambda inventory: (inventory.get("order", 0), inventory["layer"]))
    return {inventory["layer"]: inventory for inventory in found}
