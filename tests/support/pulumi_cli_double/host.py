"""The double's language host: runs one Pulumi program under the SDK's mocks.

The CLI starts a language host process per update to run the program and serve its resource
registrations (pulumi-language-python); the double does the same with this module, so each
program gets a fresh interpreter with the environment the CLI call had (PYTHONPATH included,
which is how a rollback's program imports its own revision's `shared` package).

The request (JSON on stdin, never on disk, since it may hold secret config and upstream secret
outputs in plain text, as the CLI hands them to its language host) carries the program
directory, project, stack, organization, configuration, the resources of the previous
checkpoint and the outputs of the stacks the backend holds. The result (JSON on the original
stdout) lists what the program registered, read and exported; whatever the program prints goes
to stderr, which the double shows as the program's output.

Resources whose inputs did not change get the outputs already in state, as the engine hands
a `same` resource's old outputs to the program; a `namePrefix` is completed the way the AWS
provider completes it (terraform-plugin-sdk id.PrefixedUniqueId: the prefix, a UTC timestamp
and a counter), so a recreated resource gets a new name.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.pulumi_cli_double.secrets import SECRET_SIG, SECRET_SIG_KEY

# sdk/go/common/resource/sig/sig.go: how assets and archives are marked in state.
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
ACCOUNT_ID = "123456789012"


def _file_hash(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def to_json(value: Any) -> Any:
    """A registered input or output in the JSON form state keeps (assets and archives marked)."""
    import pulumi

    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, pulumi.FileArchive):
        return {SECRET_SIG_KEY: ARCHIVE_SIG, "hash": _file_hash(value.path), "path": value.path}
    if isinstance(value, pulumi.AssetArchive):
        return {SECRET_SIG_KEY: ARCHIVE_SIG, "assets": to_json(dict(value.assets))}
    if isinstance(value, pulumi.FileAsset):
        return {SECRET_SIG_KEY: ASSET_SIG, "hash": _file_hash(value.path), "path": value.path}
    if isinstance(value, pulumi.StringAsset):
        return {SECRET_SIG_KEY: ASSET_SIG, "text": value.text}
    if isinstance(value, pulumi.RemoteAsset):
        return {SECRET_SIG_KEY: ASSET_SIG, "uri": value.uri}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _mocks_class() -> Any:
    # Imported here: the module is imported by the CLI side too, which must not load pulumi.
    from tooling.mock_engine import SynthesizingMocks

    class DoubleMocks(SynthesizingMocks):
        """The repository's synthesizing mocks, remembering the previous checkpoint."""

        def __init__(
            self,
            location: Any,
            stack_outputs: Mapping[str, Any],
            previous: Mapping[tuple[str, str], Mapping[str, Any]],
        ) -> None:
            super().__init__(location, stack_outputs)
            self.previous = previous
            self._counter = 0

        def compute(
            self, typ: str, name: str, inputs: dict[str, Any]
        ) -> tuple[str, dict[str, Any]]:
            prior = self.previous.get((typ, name))
            if prior is not None and prior["inputs"] == to_json(inputs):
                return str(prior["id"]), dict(prior["outputs"])
            resource_id, outputs = super().compute(typ, name, inputs)
            return resource_id, outputs

        def physical_name(self, typ: str, name: str, inputs: Mapping[str, Any]) -> str:
            prior = self.previous.get((typ, name))
            prefix = inputs.get("namePrefix")
            if (
                prior is not None
                and prefix
                and prior["inputs"].get("namePrefix") == prefix
                and prior["outputs"].get("name")
            ):
                # An update in place keeps the name the prefix was completed with.
                return str(prior["outputs"]["name"])
            name_: str = super().physical_name(typ, name, inputs)
            return name_

        def unique_suffix(self, typ: str, name: str) -> str:
            self._counter += 1
            stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")[:18]
            return f"{stamp}{self._counter:08x}"

        def missing_stack_message(self, name: str) -> str:
            # backend.NewBackendClient's GetStackOutputs for a stack the backend does not hold.
            return f"unknown stack {name!r}"

    return DoubleMocks


def _resource_json(resource: Any) -> dict[str, Any]:
    return {
        "type": resource.type,
        "name": resource.name,
        "id": resource.id,
        "custom": resource.custom,
        "urn": resource.urn,
        "parent": resource.parent,
        "dependencies": list(resource.dependencies),
        "propertyDependencies": {k: list(v) for k, v in resource.property_dependencies.items()},
        "retainOnDelete": resource.retain_on_delete,
        "inputs": to_json(resource.inputs),
        "outputs": to_json({**resource.inputs, **resource.outputs}),
    }


def _read_json(read: Any) -> dict[str, Any]:
    """A StackReference read: the upstream's secret outputs stay secret in this stack's state
    (the engine marks the names `secretOutputNames` lists)."""
    entry = _resource_json(read)
    state = entry["outputs"]
    secret_names = set(state.get("secretOutputNames") or [])
    state["outputs"] = {
        key: {SECRET_SIG_KEY: SECRET_SIG, "value": value} if key in secret_names else value
        for key, value in (state.get("outputs") or {}).items()
    }
    return entry


def run(request: Mapping[str, Any]) -> dict[str, Any]:
    """Run the program the request names; the result as the CLI side reads it."""
    import pulumi

    from shared.naming import AwsLocation
    from tooling.mock_engine import ExportedValue, run_program

    stack_outputs = {
        name: {
            key: ExportedValue(item["value"], bool(item["secret"])) for key, item in values.items()
        }
        for name, values in request["stack_outputs"].items()
    }
    previous = {(item["type"], item["name"]): item for item in request["previous"]}
    location = AwsLocation(partition="aws", region=request["region"], account_id=ACCOUNT_ID)
    mocks = _mocks_class()(location, stack_outputs, previous)
    try:
        run = run_program(
            Path(request["program_dir"]),
            project=request["project"],
            stack=request["stack"],
            config=request["config"],
            secret_keys=request["secret_keys"],
            stack_outputs=stack_outputs,
            location=location,
            organization=request["organization"],
            mocks=mocks,
        )
    except pulumi.RunError as error:
        # The Python language host prints a RunError's message alone, no traceback.
        return {"ok": False, "error": str(error)}
    except Exception:
        return {
            "ok": False,
            "error": "Program failed with an unhandled exception:\n" + traceback.format_exc(),
        }
    return {
        "ok": True,
        "resources": [_resource_json(resource) for resource in run.resources],
        "reads": [_read_json(read) for read in run.reads],
        "exports": {
            key: {"value": to_json(exported.value), "secret": exported.secret}
            for key, exported in run.exports.items()
        },
    }


def main() -> int:
    request = json.loads(sys.stdin.read())
    # The program's prints go to stderr; the result alone is written to the real stdout.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.chdir(request["program_dir"])
    result = run(request)
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
