"""Each stacks/<layer> is a complete Pulumi project: project file, example stack, ownership."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from shared.config import read_schema
from shared.manifest import MANIFEST, REPO_ROOT
from tooling import docs

TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


@pytest.mark.parametrize("layer", MANIFEST.layers, ids=lambda layer: layer.name)
def test_project_file_names_the_layer_and_uses_the_shared_environment(layer) -> None:  # type: ignore[no-untyped-def]
    project = yaml.safe_load((layer.directory / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["name"] == layer.project == f"serverless-{layer.name}"
    assert project["runtime"]["name"] == "python"
    venv = (layer.directory / project["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == REPO_ROOT / ".venv"


@pytest.mark.parametrize("layer", MANIFEST.layers, ids=lambda layer: layer.name)
def test_every_config_key_is_described_typed_and_defaulted_correctly(layer) -> None:  # type: ignore[no-untyped-def]
    for key in read_schema(layer.directory / "Pulumi.yaml").values():
        assert key.description.strip(), key.name
        assert key.type in TYPES, key.name
        assert isinstance(key.default, TYPES[key.type]), f"{layer.name}:{key.name} default type"


@pytest.mark.parametrize("layer", MANIFEST.layers, ids=lambda layer: layer.name)
def test_every_declared_key_is_read_by_the_program(layer) -> None:  # type: ignore[no-untyped-def]
    program = (layer.directory / "__main__.py").read_text(encoding="utf-8")
    for key in read_schema(layer.directory / "Pulumi.yaml"):
        assert f'"{key}"' in program, f"{layer.name} declares {key} but never reads it"


@pytest.mark.parametrize("layer", MANIFEST.layers, ids=lambda layer: layer.name)
def test_example_stack_sets_only_declared_keys(layer) -> None:  # type: ignore[no-untyped-def]
    example = yaml.safe_load((layer.directory / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    declared = read_schema(layer.directory / "Pulumi.yaml")
    for full_key in example["config"]:
        namespace, key = full_key.split(":", 1)
        if namespace == layer.project:
            assert key in declared, f"{layer.name} example sets undeclared {key}"
        else:
            assert namespace == "aws", full_key


def test_codeowners_is_generated_from_the_manifest() -> None:
    text = (REPO_ROOT / ".github" / "CODEOWNERS").read_text(encoding="utf-8")
    assert text == docs.codeowners(), "CODEOWNERS is stale: run `nox -s docs`"
    owners = dict(
        line.split(None, 1)
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )
    for layer in MANIFEST.layers:
        assert owners[f"/stacks/{layer.name}/"].strip() == layer.owner
        for function in layer.functions:
            assert owners[f"/lambdas/{function.name}/"].strip() == layer.owner
    # The rotation function is the security layer's, not the application team's.
    assert owners["/lambdas/secret_rotation/"].strip() == MANIFEST.layer("security").owner


def test_readme_generated_sections_are_current() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert docs.render(readme) == readme, "README is stale: run `nox -s docs`"


def test_readme_documents_every_layers_configuration() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for layer in MANIFEST.layers:
        for key in read_schema(layer.directory / "Pulumi.yaml"):
            assert re.search(rf"\|\s*`{key}`\s*\|", readme), f"README lacks {layer.name}:{key}"


def test_no_deprecated_v2_s3_classes_anywhere() -> None:
    for path in [*REPO_ROOT.glob("stacks/*/__main__.py"), *REPO_ROOT.glob("shared/**/*.py")]:
        assert not re.search(r"\bBucket\w*V2\b", path.read_text(encoding="utf-8")), Path(path).name
