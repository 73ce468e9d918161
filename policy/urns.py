"""Read a resource's layer and logical name from its URN.

`urn:pulumi:<stack>::<project>::<parent types$type>::<name>`; the project of a layer is
`serverless-<layer>` (shared/manifest.py), so the layer is the project without that prefix.
"""

from __future__ import annotations

from shared.manifest import PROJECT_PREFIX


def _parts(urn: str) -> list[str]:
    return urn.split("::") if urn.startswith("urn:pulumi:") else []


def project_of(urn: str) -> str:
    parts = _parts(urn)
    return parts[1] if len(parts) >= 4 else ""


def layer_of(urn: str) -> str:
    """The layer name (`storage`) of a resource of this product; else its project name."""
    return project_of(urn).removeprefix(f"{PROJECT_PREFIX}-")


def name_of(urn: str) -> str:
    parts = _parts(urn)
    return parts[-1] if len(parts) >= 4 else urn


def type_of(urn: str) -> str:
    parts = _parts(urn)
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""
