"""drift: every layer refreshed preview-only, concurrently; what differs from the cloud; nothing
written; exit 0 none, 4 drift, 1 error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.manifest import MANIFEST, REPO_ROOT
from tests.orchestration.conftest import HarnessFactory, console_text, make_console
from tests.orchestration.test_render import RecordingRenderer
from tooling.gitrepo import GitRepo
from tooling.orchestrator.drift import DEFAULT_CONCURRENCY, drift_row, refresh_layers
from tooling.orchestrator.engine import DriftedResource, DriftResult
from tooling.orchestrator.memory import RESOURCE_TYPE, InMemoryEngine
from tooling.orchestrator.orchestrator import ExitCode, Orchestrator
from tooling.orchestrator.render import report_table, row_note
from tooling.orchestrator.report import LayerResult, RunReport, Status, load_report
from tooling.orchestrator.targets import LocalTarget


def test_drift_found_is_reported_per_layer_with_its_resources_and_exit_4(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.change_out_of_band("storage", "dead_letter_queue_name", "messageRetentionSeconds")
    h.engine.delete_out_of_band("observability", "sns_topic_arn")

    report = h.orchestrator.drift()

    assert report.exit_code == ExitCode.CHANGES
    assert int(ExitCode.CHANGES) == 4
    assert report.statuses() == {
        "security": "in sync",
        "storage": "drifted",
        "compute": "in sync",
        "api": "in sync",
        "observability": "drifted",
    }
    assert report.result("storage").drift == [
        DriftedResource(
            urn=h.engine.resource_urn("storage", "dead_letter_queue_name"),
            type=RESOURCE_TYPE,
            change="update",
            properties=("messageRetentionSeconds",),
        )
    ]
    (gone,) = report.result("observability").drift
    assert (gone.name, gone.change, gone.properties) == ("sns_topic_arn", "delete", ())
    storage_outputs = len(MANIFEST.layer("storage").outputs)
    assert report.result("storage").resource_changes == {
        "same": storage_outputs - 1,
        "update": 1,
    }
    assert report.result("security").drift == []
    # The table says what differs, the saved report is the drift report.
    assert "messageRetentionSeconds differs from the cloud" in h.output
    assert "sns_topic_arn: deleted outside Pulumi" in h.output
    assert "Report: " in h.output and "drift-report.json (exit code 4)" in h.output


def test_no_drift_is_exit_0_and_nothing_is_written(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    histories = {name: h.engine.history(name) for name in MANIFEST.order}
    outputs = {name: h.engine.outputs(name) for name in MANIFEST.order}
    h.engine.calls.clear()

    report = h.orchestrator.drift()

    assert report.exit_code == ExitCode.OK
    assert set(report.statuses().values()) == {"in sync"}
    assert sorted(layer for _, layer in h.engine.operations("refresh_preview")) == sorted(
        MANIFEST.order
    )
    # A preview-only refresh updates nothing and adds no history entry.
    assert h.engine.operations("up", "destroy") == []
    assert {name: h.engine.history(name) for name in MANIFEST.order} == histories
    assert {name: h.engine.outputs(name) for name in MANIFEST.order} == outputs


def test_drift_writes_no_history_even_when_it_finds_drift(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.delete_out_of_band("api", "rest_api_id")
    before = h.engine.history("api")

    assert h.orchestrator.drift().exit_code == ExitCode.CHANGES
    assert h.engine.history("api") == before
    assert h.engine.operations("up")[-1] == ("up", "observability")  # deploy_all's, no more
    # And it stays drifted: only a deploy or a refresh that records it would change anything.
    assert h.orchestrator.drift().result("api").status is Status.DRIFTED


def test_layers_without_a_stack_are_absent_and_no_stack_is_created(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.engine.init_stack("security")  # created by hand, nothing deployed

    report = h.orchestrator.drift()

    assert set(report.statuses().values()) == {"absent"}
    assert report.result("security").note.startswith("the stack has no resources")
    assert report.result("storage").note.startswith("no stack 'local'")
    assert set(h.engine.stacks) == {"security"}
    assert report.exit_code == ExitCode.OK


def test_a_failed_refresh_is_exit_1_and_the_other_layers_are_still_checked(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.change_out_of_band("compute", "api_handler_function_name", "memorySize")
    h.engine.fail("api", "error: AccessDeniedException: not allowed", operation="refresh")

    report = h.orchestrator.drift()

    assert report.result("api").status is Status.FAILED
    assert "AccessDeniedException" in report.result("api").note
    assert report.result("compute").status is Status.DRIFTED
    assert report.result("observability").status is Status.IN_SYNC
    # An error wins over drift.
    assert report.exit_code == ExitCode.FAILED


@pytest.mark.parametrize("concurrency", [1, 2, DEFAULT_CONCURRENCY])
def test_at_most_concurrency_layers_are_refreshed_at_once(
    harness: HarnessFactory, concurrency: int
) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.refresh_seconds = 0.2

    report = h.orchestrator.drift(concurrency=concurrency)

    # The cap is reached (the layers do run together) and never exceeded.
    assert h.engine.most_refreshing == concurrency
    assert h.engine.refreshing == 0
    # Rows follow the manifest whatever order the refreshes finished in.
    assert [row.layer for row in report.layers] == list(MANIFEST.order)


def test_the_concurrency_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        refresh_layers(
            InMemoryEngine(),
            ["security"],
            stack="local",
            progress=RecordingRenderer(),
            clock=lambda: 0.0,
            concurrency=0,
        )


def test_the_drift_report_round_trips_through_its_json(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.change_out_of_band("security", "kms_key_arn", "policy", "description")
    h.engine.delete_out_of_band("security", "secret_name")

    report = h.orchestrator.drift()
    saved = load_report(h.build_dir, "drift")

    assert (h.build_dir / "drift-report.json").is_file()
    assert saved is not None
    assert saved.to_json() == report.to_json()
    assert saved.result("security").drift == report.result("security").drift
    document = json.loads((h.build_dir / "drift-report.json").read_text(encoding="utf-8"))
    (row,) = [row for row in document["layers"] if row["layer"] == "security"]
    assert row["status"] == "drifted"
    assert row["drift"][0] == {
        "urn": h.engine.resource_urn("security", "kms_key_arn"),
        "type": RESOURCE_TYPE,
        "change": "update",
        "properties": ["policy", "description"],
    }
    assert row["drift"][1]["change"] == "delete"


def test_a_row_without_drift_round_trips_too() -> None:
    row = LayerResult("api", Status.IN_SYNC, 1.5, {"same": 7})
    assert LayerResult.from_json(row.to_json()) == row
    assert row.to_json()["drift"] == []


def test_a_stack_reference_reading_newer_outputs_is_noted_not_counted() -> None:
    reference = DriftedResource(
        urn="urn:pulumi:dev::serverless-api::pulumi:pulumi:StackReference::organization/"
        "serverless-compute/dev",
        type="pulumi:pulumi:StackReference",
        change="update",
    )
    result = DriftResult({"same": 30, "update": 1}, drifted=(reference,))

    row = drift_row("api", result, 2.0, "dev")

    assert row.status is Status.IN_SYNC
    assert row.drift == []
    assert row.note.startswith(
        "not drift: StackReference organization/serverless-compute/dev would re-read other "
        "outputs than this layer's last update recorded"
    )
    assert row.resource_changes == {"same": 30, "update": 1}


def test_progress_is_reported_per_layer_from_the_worker_threads(tmp_path: Path) -> None:
    engine = InMemoryEngine()
    renderer = RecordingRenderer()
    orchestrator = Orchestrator(
        engine,
        stack="local",
        target=LocalTarget(repo_root=REPO_ROOT),
        repo=GitRepo(REPO_ROOT),
        renderer=renderer,
        build_dir=tmp_path,
        sources=engine.sources,
    )
    orchestrator.deploy_all()
    renderer.events.clear()

    orchestrator.drift(concurrency=2)

    assert renderer.events[0] == f"begin refresh {len(MANIFEST.order)}"
    assert renderer.events[-1] == "end refresh"
    for index, name in enumerate(MANIFEST.order, start=1):
        started = renderer.events.index(f"start {index} {name}")
        assert started < renderer.events.index(f"finish {name} in sync")
    assert renderer.lines.count("Previewing refresh (local)") == len(MANIFEST.order)


def test_the_report_table_lists_drifted_resources() -> None:
    report = RunReport("drift", "dev", "aws", "0123456789abcdef", "2026-11-30T10:00:00")
    report.layers = [
        LayerResult("security", Status.IN_SYNC, 2.0, {"same": 12}),
        LayerResult(
            "storage",
            Status.DRIFTED,
            3.0,
            {"same": 9, "update": 1, "delete": 1},
            drift=[
                DriftedResource(
                    "urn:pulumi:dev::serverless-storage::aws:sqs/queue:Queue::dead-letter-queue",
                    "aws:sqs/queue:Queue",
                    "update",
                    ("messageRetentionSeconds",),
                ),
                DriftedResource(
                    "urn:pulumi:dev::serverless-storage::aws:s3/bucketV2:BucketV2::logs",
                    "aws:s3/bucketV2:BucketV2",
                    "delete",
                ),
            ],
        ),
        LayerResult("api", Status.FAILED, 1.0, note="error: AccessDenied"),
        LayerResult("compute", Status.ABSENT, note="no stack 'dev'"),
    ]
    console = make_console()
    console.print(report_table(report))

    text = console_text(console)
    assert "drift · stack dev · target aws" in text
    assert "in sync" in text and "drifted" in text and "absent" in text
    assert "update 1, delete 1" in text
    assert "aws:sqs/queue:Queue dead-letter-queue: messageRetentionSeconds differs" in text
    assert row_note(report.layers[1]) == (
        "aws:sqs/queue:Queue dead-letter-queue: messageRetentionSeconds differs from the cloud; "
        "aws:s3/bucketV2:BucketV2 logs: deleted outside Pulumi"
    )
