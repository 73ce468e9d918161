"""Files generated from the manifest and the layers' Pulumi.yaml files.

The README holds each generated section between `<!-- BEGIN name -->` and `<!-- END name -->`
markers, and .github/CODEOWNERS is generated whole; `nox -s docs` rewrites both and a test fails
when they are out of date, so the diagram, the configuration reference and the owners never
drift from the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from shared.config import read_schema
from shared.manifest import (
    COMMON_FUNCTION_CODE,
    MANIFEST,
    PLATFORM_OWNER,
    REPO_ROOT,
    SHARED_PATHS,
    Manifest,
)

README = REPO_ROOT / "README.md"
CODEOWNERS = REPO_ROOT / ".github" / "CODEOWNERS"


def layer_diagram(manifest: Manifest = MANIFEST) -> str:
    """Mermaid flowchart: one node per layer, one edge per consumed key."""
    lines = ["```mermaid", "flowchart LR"]
    for layer in manifest.layers:
        lines.append(f'    {layer.name}["{layer.name}<br/><small>{layer.description}</small>"]')
    for layer in manifest.layers:
        for upstream, keys in layer.consumes.items():
            label = "<br/>".join(keys)
            lines.append(f'    {upstream} -->|"{label}"| {layer.name}')
    lines.append("```")
    return "\n".join(lines)


def _format_default(value: object) -> str:
    if value == "":
        return '`""`'
    return f"`{json.dumps(value)}`" if not isinstance(value, str) else f"`{value}`"


def config_reference(manifest: Manifest = MANIFEST) -> str:
    """One table per layer: every key its Pulumi.yaml declares."""
    parts: list[str] = []
    for layer in manifest.layers:
        parts.append(f"#### `stacks/{layer.name}` ({layer.project}, owner `{layer.owner}`)\n")
        parts.append("| key | type | default | description |")
        parts.append("| --- | --- | --- | --- |")
        for key in read_schema(layer.directory / "Pulumi.yaml").values():
            description = " ".join(key.description.split())
            parts.append(
                f"| `{key.name}` | {key.type} | {_format_default(key.default)} | {description} |"
            )
        parts.append("")
    return "\n".join(parts).rstrip()


def outputs_reference(manifest: Manifest = MANIFEST) -> str:
    """Every promised output with its producer and consumers."""
    rows = ["| output | layer | read by | meaning |", "| --- | --- | --- | --- |"]
    for layer in manifest.layers:
        for key, spec in layer.outputs.items():
            readers = [
                consumer.name
                for consumer in manifest.layers
                if key in consumer.consumes.get(layer.name, ())
            ]
            rows.append(
                f"| `{key}` | {layer.name} | {', '.join(readers) or '-'} | {spec.description} |"
            )
    return "\n".join(rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "layer-diagram": layer_diagram,
    "outputs": outputs_reference,
    "config-reference": config_reference,
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN {name} -->\n)(.*?)(<!-- END {name} -->)", re.DOTALL)


def _replacement(body: str) -> Callable[[re.Match[str]], str]:
    return lambda match: f"{match.group(1)}{body}\n{match.group(3)}"


def render(text: str) -> str:
    """`text` with every generated section replaced by its current content."""
    for name, build in SECTIONS.items():
        pattern = _pattern(name)
        if not pattern.search(text):
            raise ValueError(f"README has no <!-- BEGIN {name} --> ... <!-- END {name} --> section")
        text = pattern.sub(_replacement(build()), text)
    return text


def codeowners(manifest: Manifest = MANIFEST) -> str:
    """Each layer's declared paths to its owner; what every layer shares to the platform team,
    except the policy pack, which the security layer's owner keeps."""
    security_owner = manifest.layer("security").owner
    lines = [
        "# Generated from shared/manifest.py by `nox -s docs`; a test fails when it is stale.",
        "# Each layer's paths (its program, the functions it packages) belong to its team; what",
        "# every layer shares belongs to the platform team, the policy pack to security.",
        f"* {PLATFORM_OWNER}",
    ]
    for layer in manifest.layers:
        for path in layer.code_paths:
            if path != COMMON_FUNCTION_CODE:
                lines.append(f"/{path} {layer.owner}")
    shared = [path for path in (*SHARED_PATHS, COMMON_FUNCTION_CODE) if path != "policy/"]
    lines += [f"/{path} {PLATFORM_OWNER}" for path in shared]
    lines.append(f"/policy/ {security_owner}")
    return "\n".join(lines) + "\n"


def update_codeowners(path: Path = CODEOWNERS) -> bool:
    """Rewrite .github/CODEOWNERS; True when it changed."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = codeowners()
    if updated != current:
        path.write_text(updated, encoding="utf-8")
    return updated != current


def update_readme(path: Path = README) -> bool:
    """Rewrite the generated sections; True when the file changed."""
    current = path.read_text(encoding="utf-8")
    updated = render(current)
    if updated != current:
        path.write_text(updated, encoding="utf-8")
    return updated != current
