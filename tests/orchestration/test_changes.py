"""Which layers the CI workflow previews and deploys for a set of changed files."""

from __future__ import annotations

import pytest

from shared.manifest import MANIFEST
from tooling.orchestrator.changes import touched_layers


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([], ()),
        (["README.md", "tooling/docs.py", ".github/workflows/layers.yml"], ()),
        (["stacks/observability/__main__.py"], ("observability",)),
        (["stacks/api/Pulumi.yaml"], ("api", "observability")),
        (["stacks/storage/__main__.py"], ("storage", "compute", "api", "observability")),
        (["lambdas/api_handler/handler.py"], ("compute", "api", "observability")),
        # The rotation function is packaged by the security layer, not by compute.
        (["lambdas/secret_rotation/handler.py"], MANIFEST.order),
        # Every archive carries lambdas/common: both layers that package functions.
        (["lambdas/common/result_keys.py"], MANIFEST.order),
        (["lambdas/s3_processor/requirements.txt"], ("compute", "api", "observability")),
        # What every preview and update uses: the policy pack and the pins.
        (["policy/controls/s3.py"], MANIFEST.order),
        (["constraints.txt"], MANIFEST.order),
        (["stacks/api/__main__.py", "stacks/security/Pulumi.dev.yaml"], MANIFEST.order),
        (["shared/naming.py"], MANIFEST.order),
        (["pyproject.toml"], MANIFEST.order),
        # A directory merely named like a layer outside stacks/ touches nothing.
        (["docs/stacks/api.md", "stacks/README.md"], ()),
    ],
)
def test_touched_layers_include_everything_downstream(
    paths: list[str], expected: tuple[str, ...]
) -> None:
    assert touched_layers(paths) == expected


def test_the_result_follows_manifest_order_whatever_the_file_order() -> None:
    paths = ["stacks/observability/x.py", "stacks/compute/x.py"]
    result = touched_layers(paths)
    assert result == tuple(name for name in MANIFEST.order if name in result)
    assert result[0] == "compute"


def test_every_declared_path_exists_and_every_function_folder_is_declared() -> None:
    from shared.manifest import REPO_ROOT, SHARED_PATHS

    for path in {*SHARED_PATHS, *(p for layer in MANIFEST.layers for p in layer.code_paths)}:
        assert (REPO_ROOT / path).exists(), path
    folders = {p.parent.name for p in (REPO_ROOT / "lambdas").glob("*/handler.py")}
    assert folders == {function.name for function in MANIFEST.functions}
