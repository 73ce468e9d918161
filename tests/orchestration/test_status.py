"""status (last update, stale consumers) and outputs (one table, secrets masked)."""

from __future__ import annotations

from shared.manifest import MANIFEST
from tests.orchestration.conftest import HarnessFactory
from tooling.orchestrator.engine import ConsumedValue
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import find_stale


def _change_output(engine: InMemoryEngine, layer: str, key: str, value: str) -> None:
    outputs = {k: v.value for k, v in engine.default_outputs(layer).items()}
    outputs[key] = value
    engine.set_program(layer, outputs)


def test_nothing_is_stale_right_after_deploy_all(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    rows = h.orchestrator.status().layers
    assert [row.layer for row in rows] == list(MANIFEST.order)
    assert all(row.deployed and row.stale == [] for row in rows)


def test_a_consumer_that_read_a_value_since_changed_is_stale(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    # The api team redeploys compute by hand with a renamed function.
    _change_output(h.engine, "compute", "api_handler_function_name", "renamed-handler")
    h.engine.deploy_directly("compute", commit="abcdef1")

    stale = find_stale(h.engine, MANIFEST)

    readers = {
        name
        for name, keys in MANIFEST.consumers_of("compute").items()
        if "api_handler_function_name" in keys
    }
    assert set(stale) == readers
    assert [str(key) for key in stale["api"]] == [
        "compute.api_handler_function_name changed since the last update"
    ]


def test_an_upstream_change_to_a_key_nobody_reads_makes_no_one_stale(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    unread = [
        key
        for key in MANIFEST.layer("storage").outputs
        if not any(key in keys for keys in MANIFEST.consumers_of("storage").values())
    ]
    assert unread, "the manifest has a storage output no layer reads"
    _change_output(h.engine, "storage", unread[0], "changed")
    h.orchestrator.deploy("storage")

    assert find_stale(h.engine, MANIFEST) == {}


def test_redeploying_the_consumer_clears_its_staleness(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    _change_output(h.engine, "compute", "api_handler_function_name", "renamed-handler")
    h.orchestrator.deploy("compute")
    assert "api" in find_stale(h.engine, MANIFEST)

    h.orchestrator.deploy("api")

    assert "api" not in find_stale(h.engine, MANIFEST)


def test_encrypted_and_missing_values_are_reported_not_hidden(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.stacks["storage"].consumed["security"]["kms_key_arn"] = ConsumedValue(None, False)
    del h.engine.stacks["observability"].consumed["storage"]

    stale = find_stale(h.engine, MANIFEST)

    assert [str(key) for key in stale["storage"]] == [
        "security.kms_key_arn cannot be compared (encrypted in state)"
    ]
    assert all("was not read" in str(key) for key in stale["observability"])


def test_status_shows_the_last_update_of_each_layer_whoever_ran_it(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    _change_output(h.engine, "compute", "api_handler_function_name", "renamed-handler")
    h.engine.deploy_directly("compute", commit="abcdef1234")

    view = h.orchestrator.status()
    h.orchestrator.renderer.status(view)
    rows = {row.layer: row for row in view.layers}

    last = rows["compute"].last
    assert last is not None
    assert (last.kind, last.result, last.commit) == ("update", "succeeded", "abcdef1234")
    assert rows["security"].last is not None
    assert rows["security"].last.commit == h.orchestrator.repo.head()
    out = h.output
    assert "abcdef1234" in out
    assert "stale: compute.api_handler_function_name changed since the last update" in out
    assert "redeploy them in order (nox -s deploy -- api)" in out


def test_status_of_an_empty_stack_shows_nothing_deployed(harness: HarnessFactory) -> None:
    h = harness()
    rows = h.orchestrator.status().layers
    assert all(not row.deployed and row.last is None and not row.stale for row in rows)


def test_outputs_masks_secrets_and_shows_who_reads_each_key(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all(["security"])
    outputs = {key: value.value for key, value in h.engine.default_outputs("security").items()}
    outputs["secret_name"] = "super-secret-value"
    h.engine.set_program("security", outputs, secret=("secret_name",))
    h.orchestrator.deploy("security")

    h.orchestrator.renderer.outputs(h.orchestrator.outputs())

    out = h.output
    assert "super-secret-value" not in out
    assert "[secret]" in out
    assert "local:security:kms_key_arn" in out
    assert "(not deployed)" in out  # storage and the rest
    kms_line = next(
        line for line in out.splitlines() if "kms_key_arn" in line and "security" in line
    )
    readers = [
        name for name, keys in MANIFEST.consumers_of("security").items() if "kms_key_arn" in keys
    ]
    assert readers
    assert ", ".join(readers) in kms_line
