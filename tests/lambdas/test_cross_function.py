"""What the two functions must agree on although they are packaged separately: where results
live, and what each archive needs at run time."""

from __future__ import annotations

import ast
import json
import re
import sys
from types import ModuleType
from typing import Any

import pytest

from shared.packaging import COMMON_FOLDER, LAMBDAS_DIR
from shared.packaging import FUNCTIONS as PACKAGED_FUNCTIONS
from tests.lambdas.support import NAMES, api_event, object_path, s3_event, s3_record
from tooling.local.functions import LambdaContext

FUNCTIONS = ("s3_processor", "api_handler")

# Provided by the Lambda Python runtime, so deliberately not bundled.
RUNTIME_PROVIDED = {"boto3", "botocore"}

SAMPLE_KEYS = (
    "uploads/a b.csv",
    "uploads/a+b.csv",
    "uploads/ünïcødé/日本語 ファイル.txt",
    "uploads/nested/x%20y/z.bin",
    "uploads/trailing/",
)


def _common_modules() -> set[str]:
    return {path.stem for path in (LAMBDAS_DIR / COMMON_FOLDER).glob("*.py")}


def test_the_result_key_module_exists_once_and_no_function_shadows_common_code() -> None:
    assert "result_keys" in _common_modules()
    for function in PACKAGED_FUNCTIONS:
        own = {path.stem for path in (LAMBDAS_DIR / function).glob("*.py")}
        # A function's own file of the same name would silently win in its archive.
        assert not own & _common_modules(), f"{function} has its own copy of common code"


def test_common_code_needs_only_the_standard_library_and_the_runtime() -> None:
    # Every archive carries lambdas/common, the secret rotation function's too, which bundles
    # no dependency: common code may import nothing else.
    for path in (LAMBDAS_DIR / COMMON_FOLDER).glob("*.py"):
        unknown = (
            _imported_top_level_modules(path)
            - set(sys.stdlib_module_names)
            - _common_modules()
            - RUNTIME_PROVIDED
        )
        assert not unknown, f"common/{path.name} imports {sorted(unknown)}"


def test_both_functions_map_keys_to_the_same_result_key(
    processor: ModuleType, api: ModuleType
) -> None:
    for key in SAMPLE_KEYS:
        expected = f"results/{key}.json"
        assert processor.result_keys.result_key_for(key, "results/") == expected
        assert api.result_keys.result_key_for(key, "results/") == expected


# Keys the processor writes results for, each needing some escape in a notification (form
# encoding) or in a URL path (percent encoding), or both.
ROUND_TRIP_KEYS = (
    *SAMPLE_KEYS[:4],
    "uploads/100% done #1?.csv",
    "uploads/line\nbreak and\ttab.csv",
    "uploads/nul\x00byte.bin",
    "uploads/日本/😀 é+.txt",
)


@pytest.mark.parametrize("key", ROUND_TRIP_KEYS)
def test_a_result_the_processor_wrote_is_served_by_the_api(
    processor: ModuleType,
    api: ModuleType,
    processor_context: LambdaContext,
    api_context: LambdaContext,
    s3: Any,
    key: str,
) -> None:
    version = s3.put_object(
        Bucket=NAMES.upload_bucket, Key=key, Body=b"payload", ContentType="text/plain"
    )
    # S3 hands the key over form-encoded; a REST API hands the path over percent-encoded, as
    # the client sent it (object_path: quote(key, safe="")).
    processor.lambda_handler(
        s3_event(s3_record(key, version_id=version["VersionId"])), processor_context
    )
    response = api.lambda_handler(api_event("GET", object_path(key)), api_context)

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["key"] == key
    assert body["result"]["key"] == key
    assert body["result"]["size"] == len(b"payload")
    assert body["result"]["contentType"] == "text/plain"
    assert body["result"]["versionId"] == version["VersionId"]


def _imported_top_level_modules(path: Any) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _requirements(function: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    # A pin continues on the next lines (`\`) with its wheel's hash.
    text = (LAMBDAS_DIR / function / "requirements.txt").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(
                r"([A-Za-z0-9_.-]+)==([0-9][A-Za-z0-9.]*) +--hash=sha256:[0-9a-f]{64}", line
            )
            assert match, f"{function}/requirements.txt: {line!r} is not pinned with == and a hash"
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@pytest.mark.parametrize("function", FUNCTIONS)
def test_requirements_pin_powertools_and_leave_the_sdk_to_the_runtime(function: str) -> None:
    pins = _requirements(function)
    assert pins["aws-lambda-powertools"] == "3.37.0"
    assert not RUNTIME_PROVIDED & set(pins)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_import_is_stdlib_bundled_or_provided_by_the_runtime(function: str) -> None:
    folder = LAMBDAS_DIR / function
    own = {path.stem for path in folder.glob("*.py")} | _common_modules()
    bundled = {name.replace("-", "_") for name in _requirements(function)}
    for path in folder.glob("*.py"):
        unknown = (
            _imported_top_level_modules(path)
            - set(sys.stdlib_module_names)
            - own
            - bundled
            - RUNTIME_PROVIDED
            - {"__future__"}
        )
        assert not unknown, f"{path.name} imports {sorted(unknown)}, missing from requirements.txt"
