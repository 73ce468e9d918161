"""destroy_all in reverse order, destroy's downstream refusal and --cascade, --yes off local."""

from __future__ import annotations

import pytest

from shared.manifest import MANIFEST
from tests.orchestration.conftest import HarnessFactory
from tooling.orchestrator.orchestrator import ExitCode
from tooling.orchestrator.report import Status
from tooling.orchestrator.targets import AwsTarget, RefusedError


def test_destroy_all_runs_in_reverse_manifest_order(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()

    report = h.orchestrator.destroy_all()

    assert [layer for _, layer in h.engine.operations("destroy")] == list(reversed(MANIFEST.order))
    assert report.statuses() == dict.fromkeys(reversed(MANIFEST.order), "destroyed")
    assert report.exit_code == ExitCode.OK
    assert all(h.engine.outputs(name) == {} for name in MANIFEST.order)
    api = report.result("api")
    assert api.resource_changes == {"delete": len(MANIFEST.layer("api").outputs)}


def test_destroy_all_skips_stacks_that_do_not_exist(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all(["security"])

    report = h.orchestrator.destroy_all()

    assert h.engine.operations("destroy") == [("destroy", "security")]
    assert report.result("observability").status is Status.ABSENT
    assert report.result("security").status is Status.DESTROYED


def test_destroy_all_stops_when_a_layer_fails_to_destroy(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.fail("compute", "error: deleting Lambda Function: ResourceInUse", operation="destroy")

    report = h.orchestrator.destroy_all()

    assert [layer for _, layer in h.engine.operations("destroy")] == [
        "observability",
        "api",
        "compute",
    ]
    assert report.result("compute").status is Status.FAILED
    assert report.result("storage").status is Status.SKIPPED
    assert "compute failed to destroy" in report.result("security").note
    assert report.exit_code == ExitCode.FAILED


def test_destroy_refuses_while_a_downstream_layer_is_deployed(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()

    report = h.orchestrator.destroy("compute")

    assert h.engine.operations("destroy") == []
    row = report.result("compute")
    assert row.status is Status.REFUSED
    assert "api, observability" in row.note
    assert "--cascade" in row.note
    assert report.exit_code == ExitCode.REFUSED


def test_destroy_with_cascade_destroys_the_downstream_layers_first(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()

    report = h.orchestrator.destroy("compute", cascade=True)

    assert [layer for _, layer in h.engine.operations("destroy")] == [
        "observability",
        "api",
        "compute",
    ]
    assert report.exit_code == ExitCode.OK
    assert h.engine.outputs("storage") != {}


def test_destroy_of_a_leaf_needs_no_cascade(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    report = h.orchestrator.destroy("observability")
    assert h.engine.operations("destroy") == [("destroy", "observability")]
    assert report.exit_code == ExitCode.OK


def test_a_destroyed_downstream_layer_no_longer_blocks(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.orchestrator.destroy("observability")
    h.orchestrator.destroy("api")

    report = h.orchestrator.destroy("compute")

    assert report.result("compute").status is Status.DESTROYED


@pytest.mark.parametrize("operation", ["destroy_all", "destroy", "rollback"])
def test_destructive_commands_need_yes_off_the_local_target(
    harness: HarnessFactory, aws_target: AwsTarget, operation: str
) -> None:
    h = harness(target=aws_target)
    with pytest.raises(RefusedError, match="--yes"):
        if operation == "destroy_all":
            h.orchestrator.destroy_all()
        elif operation == "destroy":
            h.orchestrator.destroy("observability")
        else:
            h.orchestrator.rollback("security")
    assert h.engine.operations("destroy", "up") == []


def test_yes_confirms_a_destroy_on_the_aws_target(
    harness: HarnessFactory, aws_target: AwsTarget
) -> None:
    h = harness(target=aws_target)
    for layer in MANIFEST.order:
        h.engine.init_stack(layer)  # the aws target deploys stacks their owners created
    h.orchestrator.deploy_all()
    report = h.orchestrator.destroy_all(yes=True)
    assert report.exit_code == ExitCode.OK
    assert len(h.engine.operations("destroy")) == len(MANIFEST.order)
