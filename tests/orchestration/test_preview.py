"""preview_all: order, "waiting on <layer>" instead of reference errors, and its exit codes."""

from __future__ import annotations

from shared.manifest import MANIFEST
from tests.orchestration.conftest import HarnessFactory
from tooling.orchestrator.orchestrator import ExitCode
from tooling.orchestrator.report import Status, load_report


def test_on_a_fresh_stack_nothing_is_created_and_the_rest_wait(harness: HarnessFactory) -> None:
    h = harness()

    report = h.orchestrator.preview_all()

    assert h.engine.operations("preview") == [("preview", "security")]
    # A preview is read-only: the stack that does not exist is reported, not created.
    assert h.engine.stacks == {}
    assert report.result("security").status is Status.NOT_DEPLOYED
    assert "an update would create it" in report.result("security").note
    assert report.result("storage").note == "waiting on security"
    assert report.result("compute").note == "waiting on security, storage"
    assert report.result("observability").status is Status.WAITING
    assert report.exit_code == ExitCode.CHANGES


def test_a_deployed_unchanged_stack_previews_every_layer_in_order_with_exit_0(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.orchestrator.deploy_all()

    report = h.orchestrator.preview_all()

    assert [layer for _, layer in h.engine.operations("preview")] == list(MANIFEST.order)
    assert report.statuses() == dict.fromkeys(MANIFEST.order, "unchanged")
    assert report.exit_code == ExitCode.OK
    assert h.engine.operations("up") == [("up", name) for name in MANIFEST.order]


def test_a_pending_change_gives_exit_4(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    outputs = {key: value.value for key, value in h.engine.default_outputs("api").items()}
    outputs["api_stage_name"] = "v2"
    h.engine.set_program("api", outputs)

    report = h.orchestrator.preview_all()

    assert report.result("api").status is Status.CHANGES
    assert report.result("api").resource_changes["update"] == 1
    assert report.result("compute").status is Status.UNCHANGED
    assert report.exit_code == ExitCode.CHANGES


def test_an_error_wins_over_changes_and_gives_exit_1(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("security", "error: failed to load plugin aws", operation="preview")

    report = h.orchestrator.preview_all()

    assert report.result("security").status is Status.FAILED
    assert "failed to load plugin" in report.result("security").note
    assert report.result("storage").status is Status.WAITING
    assert report.exit_code == ExitCode.FAILED


def test_preview_of_a_selection_previews_only_those_layers_and_saves_its_report(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.calls.clear()

    report = h.orchestrator.preview_all(["observability", "compute"])

    assert h.engine.operations("preview") == [("preview", "compute"), ("preview", "observability")]
    saved = load_report(h.build_dir, "preview_all")
    assert saved is not None
    assert (
        saved.statuses()
        == report.statuses()
        == {
            "compute": "unchanged",
            "observability": "unchanged",
        }
    )
