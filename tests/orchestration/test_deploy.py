"""deploy_all and deploy over the in-memory engine: order, fail-fast, resume, retries, the
promised-keys check, the upstream refusal and the report."""

from __future__ import annotations

import json

import pytest

from shared.manifest import MANIFEST
from tests.orchestration.conftest import HarnessFactory
from tooling.orchestrator.engine import OutputValue, commit_in_message
from tooling.orchestrator.orchestrator import ExitCode
from tooling.orchestrator.report import Status, load_report
from tooling.orchestrator.targets import RefusedError


def test_deploy_all_runs_every_layer_once_in_manifest_order(harness: HarnessFactory) -> None:
    h = harness()
    report = h.orchestrator.deploy_all()

    assert [layer for _, layer in h.engine.operations("up")] == list(MANIFEST.order)
    assert report.exit_code == ExitCode.OK
    assert report.statuses() == dict.fromkeys(MANIFEST.order, "succeeded")
    # Each layer's update ran only after every layer it consumes from had outputs: the
    # values its update read (as a StackReference records them) are the upstream's outputs.
    for name in MANIFEST.order:
        read = h.engine.consumed_values(name)
        for upstream in MANIFEST.layer(name).depends_on:
            current = {key: value.value for key, value in h.engine.outputs(upstream).items()}
            assert current
            assert {key: value.value for key, value in read[upstream].items()} == current


def test_a_second_deploy_all_reports_every_layer_unchanged(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    report = h.orchestrator.deploy_all()

    assert report.statuses() == dict.fromkeys(MANIFEST.order, "unchanged")
    assert all(row.outputs_changed == [] for row in report.layers)


def test_a_failure_stops_the_run_and_skips_everything_downstream(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("storage", "error: creating S3 Bucket: BucketAlreadyExists")

    report = h.orchestrator.deploy_all()

    assert [layer for _, layer in h.engine.operations("up")] == ["security", "storage"]
    assert report.exit_code == ExitCode.FAILED
    assert report.result("security").status is Status.SUCCEEDED
    failed = report.result("storage")
    assert failed.status is Status.FAILED
    assert "BucketAlreadyExists" in failed.note
    for name in ("compute", "api", "observability"):
        skipped = report.result(name)
        assert skipped.status is Status.SKIPPED
        assert skipped.note == "dependency storage failed"


def test_a_failure_in_the_first_layer_runs_nothing_else(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("security", "error: AccessDenied")

    report = h.orchestrator.deploy_all()

    assert h.engine.operations("up") == [("up", "security")]
    assert [row.status for row in report.layers[1:]] == [Status.SKIPPED] * 4


def test_resume_reruns_only_the_failed_and_skipped_layers(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("compute", "error: InvalidParameterValueException: role cannot be assumed")
    first = h.orchestrator.deploy_all()
    assert first.exit_code == ExitCode.FAILED
    h.engine.calls.clear()

    resumed = h.orchestrator.deploy_all(resume=True)

    assert [layer for _, layer in h.engine.operations("up")] == ["compute", "api", "observability"]
    assert resumed.exit_code == ExitCode.OK
    carried = {row.layer for row in resumed.layers if row.carried_over}
    assert carried == {"security", "storage"}
    assert resumed.statuses() == dict.fromkeys(MANIFEST.order, "succeeded")
    # The saved report is complete again, so a later --resume finds nothing to re-run.
    saved = load_report(h.build_dir, "deploy_all")
    assert saved is not None
    assert [row.layer for row in saved.layers] == list(MANIFEST.order)


def test_resume_after_a_clean_run_deploys_nothing(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.calls.clear()

    report = h.orchestrator.deploy_all(resume=True)

    assert h.engine.operations("up") == []
    assert report.exit_code == ExitCode.OK
    assert all(row.carried_over for row in report.layers)


def test_resume_without_a_previous_report_is_refused(harness: HarnessFactory) -> None:
    h = harness()
    with pytest.raises(RefusedError, match="no previous deploy report"):
        h.orchestrator.deploy_all(resume=True)


def test_resume_refuses_a_report_of_another_stack(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("api", "error: boom")
    h.orchestrator.deploy_all()
    other = harness(stack="dev")
    with pytest.raises(RefusedError, match="stack 'local'"):
        other.orchestrator.deploy_all(resume=True)


def test_a_transient_failure_is_retried_once_with_the_reason(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail(
        "compute",
        "error: updating Lambda Function: ThrottlingException: Rate exceeded (status 429)",
    )

    report = h.orchestrator.deploy_all()

    assert h.engine.operations("up").count(("up", "compute")) == 2
    compute = report.result("compute")
    assert compute.status is Status.SUCCEEDED
    assert compute.retried is not None
    assert "throttling" in compute.retried.lower()
    assert h.sleeps == [h.orchestrator.retry_delay_s]
    assert report.exit_code == ExitCode.OK


@pytest.mark.parametrize(
    "detail",
    [
        "error: ConcurrentModificationException: Another operation is in progress",
        "error: ConflictException: Unable to complete operation due to concurrent modification",
        "error: [409] Conflict: Another update is currently in progress.",
        "error: Rate exceeded",
    ],
)
def test_concurrency_and_rate_errors_count_as_transient(
    harness: HarnessFactory, detail: str
) -> None:
    h = harness()
    h.engine.fail("security", detail)
    report = h.orchestrator.deploy_all()
    assert report.result("security").status is Status.SUCCEEDED
    assert report.result("security").retried


def test_a_transient_failure_twice_fails_the_layer(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("security", "error: ThrottlingException: Rate exceeded", times=2)

    report = h.orchestrator.deploy_all()

    assert h.engine.operations("up") == [("up", "security"), ("up", "security")]
    assert report.result("security").status is Status.FAILED
    assert report.result("security").retried
    assert report.exit_code == ExitCode.FAILED


def test_a_permanent_failure_is_not_retried(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("security", "error: MalformedPolicyDocumentException: invalid principal")
    report = h.orchestrator.deploy_all()
    assert h.engine.operations("up") == [("up", "security")]
    assert report.result("security").retried is None
    assert h.sleeps == []


def test_missing_promised_outputs_fail_the_layer_before_downstream_runs(
    harness: HarnessFactory,
) -> None:
    h = harness()
    promised = dict(h.engine.default_outputs("security"))
    del promised["kms_key_arn"]
    h.engine.set_program("security", {key: value.value for key, value in promised.items()})

    report = h.orchestrator.deploy_all()

    security = report.result("security")
    assert security.status is Status.FAILED
    assert "kms_key_arn" in security.note
    assert h.engine.operations("up") == [("up", "security")]
    assert report.result("storage").status is Status.SKIPPED


def test_every_update_message_records_the_commit(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    head = h.orchestrator.repo.head()
    assert head is not None
    messages = [call.message for call in h.engine.calls if call.operation == "up"]
    assert messages
    assert all(commit_in_message(message) == head for message in messages)
    assert h.engine.history("api")[0].commit == head


def test_deploy_of_one_layer_refuses_when_an_upstream_was_never_deployed(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.orchestrator.deploy("security")

    report = h.orchestrator.deploy("compute")

    assert report.exit_code == ExitCode.REFUSED
    row = report.result("compute")
    assert row.status is Status.REFUSED
    assert "upstream layer storage has never been deployed" in row.note
    assert ("up", "compute") not in h.engine.operations("up")


def test_deploy_of_one_layer_runs_only_that_layer(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    h.engine.calls.clear()

    report = h.orchestrator.deploy("api", force=True)

    assert h.engine.operations("up") == [("up", "api")]
    assert report.statuses() == {"api": "unchanged"}
    assert report.exit_code == ExitCode.OK
    assert report.result("api").reason == "forced (--force)"


def test_deploy_all_with_a_selection_refuses_a_layer_whose_upstream_is_missing(
    harness: HarnessFactory,
) -> None:
    h = harness()
    report = h.orchestrator.deploy_all(["storage", "compute"])

    assert [row.layer for row in report.layers] == ["storage", "compute"]
    assert report.result("storage").status is Status.REFUSED
    assert "security" in report.result("storage").note
    assert report.result("compute").status is Status.SKIPPED
    assert report.exit_code == ExitCode.REFUSED


def test_the_report_is_saved_as_json_with_every_layer(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("api", "error: BadRequestException: invalid stage")
    report = h.orchestrator.deploy_all()

    saved = json.loads((h.build_dir / "deploy-report.json").read_text())

    assert saved["operation"] == "deploy_all"
    assert saved["stack"] == "local"
    assert saved["target"] == "local"
    assert saved["exit_code"] == ExitCode.FAILED == report.exit_code
    rows = {row["layer"]: row for row in saved["layers"]}
    assert list(rows) == list(MANIFEST.order)
    assert rows["security"]["status"] == "succeeded"
    assert rows["security"]["resource_changes"] == {
        "create": len(MANIFEST.layer("security").outputs)
    }
    assert rows["security"]["note"] == "first deployment"
    assert rows["api"]["status"] == "failed"
    assert "invalid stage" in rows["api"]["note"]
    assert rows["observability"]["status"] == "skipped"
    assert rows["observability"]["note"] == "dependency api failed"
    assert all(isinstance(row["duration_s"], float) for row in saved["layers"])


def test_the_printed_report_and_progress_name_every_layer(harness: HarnessFactory) -> None:
    h = harness()
    h.engine.fail("compute", "error: ThrottlingException: Rate exceeded")
    h.orchestrator.deploy_all()
    out = h.output

    assert "layer 1 of 5: deploy security" in out
    assert "layer 5 of 5: deploy observability" in out
    # The engine's own lines are prefixed with the layer they belong to.
    assert "compute │ Updating (local)" in out
    assert "retried once after AWS API throttling" in out
    assert "deploy-report.json (exit code 0)" in out


def test_changed_outputs_are_listed_after_a_redeploy(harness: HarnessFactory) -> None:
    h = harness()
    h.orchestrator.deploy_all()
    outputs = {key: value.value for key, value in h.engine.default_outputs("storage").items()}
    outputs["s3_bucket_name"] = "renamed-bucket"
    h.engine.set_program("storage", outputs)

    report = h.orchestrator.deploy("storage")

    row = report.result("storage")
    assert row.status is Status.SUCCEEDED
    assert row.outputs_changed == ["s3_bucket_name"]
    assert h.engine.outputs("storage")["s3_bucket_name"] == OutputValue("renamed-bucket")
